"""pytest loads the plugin on every start: a run that uses no database, no schema and no gate must not
pay for psycopg, numpy, scipy, jsonschema or Hypothesis (benchmarks/bench_startup.py measures the cost).

Each check runs in a fresh interpreter (an import already done by this test process would hide one)
and reads ``sys.modules`` there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("psycopg", "numpy", "scipy", "jsonschema", "jsonschema_rs", "hypothesis", "referencing")

_REPORT = "import json, sys; print('HEAVY=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%r))))"


def _heavy_after(code: str, cwd: Path) -> list[str]:
    """The heavy top-level packages imported once ``code`` has run in a new interpreter."""
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # only the plugin we name is loaded
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-c", code + "\n" + _REPORT % (HEAVY,)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith("HEAVY=")), None)
    assert line is not None, done.stdout + done.stderr
    heavy: list[str] = json.loads(line.removeprefix("HEAVY="))
    return heavy


def _collect_only(*args: str) -> str:
    return (
        "import pytest\n"
        f"code = pytest.main(['--co', '-q', '-p', 'no:cacheprovider', '-p', 'pytest_atlas.plugin', *{list(args)!r}])\n"
        "assert code == 0, code\n"
    )


@pytest.fixture
def empty_project(tmp_path: Path) -> Path:
    (tmp_path / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    return tmp_path


def test_importing_the_plugin_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _heavy_after("import pytest_atlas.plugin", tmp_path) == []


def test_importing_the_package_facade_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _heavy_after("import pytest_atlas", tmp_path) == []


def test_collecting_an_empty_project_imports_nothing_heavy(empty_project: Path) -> None:
    assert _heavy_after(_collect_only(), empty_project) == []


def test_settings_without_a_dsn_import_nothing_heavy(empty_project: Path) -> None:
    # options that are parsed and checked at start-up, but need no database before a test asks for one
    args = ("--atlas-keep-db", "--atlas-isolation=clone", "--atlas-no-cache")
    assert _heavy_after(_collect_only(*args), empty_project) == []


def test_the_check_sees_a_heavy_import(empty_project: Path) -> None:
    # the same harness reports psycopg as soon as something in the run imports it
    (empty_project / "conftest.py").write_text("import psycopg\n")
    assert _heavy_after(_collect_only(), empty_project) == ["psycopg"]
