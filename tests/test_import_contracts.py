"""The architecture is checked by import-linter, with the contracts in pyproject.toml ([tool.importlinter]):
the layer order (written there and nowhere else), facades (no area imports another area's private
modules) and "only fixtures and plugin import pytest". Imports under ``if TYPE_CHECKING:`` count.

The first test runs the contracts on this checkout; the others plant one violation each in a copy
of the package and check that import-linter names it and fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` run in ``root`` on the ``pytest_atlas`` package found there."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def contract_names() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    section = text[text.index("[tool.importlinter]") :]
    return re.findall(r'^name = "(.+)"$', section, flags=re.MULTILINE)


def test_the_package_keeps_every_import_contract() -> None:
    names = contract_names()
    assert len(names) == 3, names
    result = lint(ROOT)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"Contracts: {len(names)} kept, 0 broken." in out


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package and its pyproject.toml, to plant violations in."""
    shutil.copytree(ROOT / "pytest_atlas", tmp_path / "pytest_atlas", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(root: Path, module: str, line: str) -> None:
    """Add ``line`` to ``module`` (a path under pytest_atlas/) right after its ``__future__`` import."""
    path = root / "pytest_atlas" / module
    text = path.read_text() if path.exists() else "from __future__ import annotations\n"
    marker = "from __future__ import annotations\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + line + "\n", 1))


PLANTED = {
    # the domain sits below the gates: it must not import them
    "upward": (
        "domain/_graph.py",
        "import pytest_atlas.gates",
        "Layers",
        "pytest_atlas.domain._graph -> pytest_atlas.gates",
    ),
    # an annotation-only import counts: errors.py must stay below validation for type checkers too
    "type-checking": (
        "errors.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytest_atlas.validation import PayloadCheck",
        "Layers",
        "pytest_atlas.errors -> pytest_atlas.validation",
    ),
    # factories and strategies are siblings: neither imports the other
    "sibling": (
        "factories/_build.py",
        "import pytest_atlas.strategies",
        "Layers",
        "pytest_atlas.factories._build -> pytest_atlas.strategies",
    ),
    # a facade: gates reach the statistics through pytest_atlas.stats, not its private modules
    "private": (
        "gates/_kind.py",
        "from pytest_atlas.stats._sample import Sample",
        "Facades",
        "pytest_atlas.gates._kind -> pytest_atlas.stats._sample",
    ),
    "pytest": (
        "domain/_catalogue.py",
        "import pytest",
        "Only fixtures and plugin",
        "pytest_atlas.domain._catalogue -> pytest",
    ),
    # a new area must be placed in the layer list (the contract is exhaustive)
    "unplaced": ("_newarea.py", "import json", "Layers", "pytest_atlas._newarea"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_planted_violation_is_caught(copy: Path, case: str) -> None:
    module, line, contract, named = PLANTED[case]
    assert lint(copy).returncode == 0  # the copy itself is clean
    plant(copy, module, line)
    result = lint(copy)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 broken" in out, out
    broken = out[out.index("Broken contracts") :]
    first = next(line for line in broken.splitlines()[1:] if line.strip() and set(line) != {"-"})
    assert first.startswith(contract), broken
    assert named in broken, broken
