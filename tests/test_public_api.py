"""The public facade: every exported name resolves, type checkers and run time agree, and importing
the plugin stays light (it runs on every pytest start)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_atlas

INIT = Path(pytest_atlas.__file__)


def test_every_exported_name_resolves() -> None:
    for name in pytest_atlas.__all__:
        assert getattr(pytest_atlas, name) is not None, name


def test_type_checking_imports_match_runtime_exports() -> None:
    tree = ast.parse(INIT.read_text())
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"use 'import {alias.name} as {alias.name}'"
                    typed.add(alias.name)
                    exported_from = pytest_atlas._EXPORTS[alias.name]
                    assert stmt.module is not None
                    assert exported_from == stmt.module, (alias.name, stmt.module, exported_from)
    assert typed == set(pytest_atlas._EXPORTS)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        pytest_atlas.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_plugin_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, pytest_atlas.plugin\n"
        "heavy = ['scipy', 'numpy', 'jsonschema', 'jsonschema_rs', 'hypothesis', 'asyncpg']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing pytest_atlas.plugin imported: {out}"


def test_importing_the_plugin_leaves_its_plugin_modules_to_pytest() -> None:
    # pytest marks the modules named in ``pytest_plugins`` for assertion rewriting before importing
    # them; one that the entry-point module already imported makes pytest warn "Module already
    # imported so cannot be rewritten" in every user's run.
    code = "import sys, pytest_atlas.plugin as p\nprint(','.join(m for m in p.pytest_plugins if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing pytest_atlas.plugin already imported: {out}"


def test_a_plain_run_has_no_assertion_rewrite_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing_to_see():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestAssertRewriteWarning", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "PytestAssertRewriteWarning" not in result.stdout.str() + result.stderr.str()


def test_result_types_and_gate_declarations_load_without_the_statistics() -> None:
    """The reporter rebuilds results on every run: Outcome, GateResult, KeyResult and GateSpec are light."""
    code = (
        "import sys\n"
        "from pytest_atlas._outcome import Outcome, exit_status\n"
        "from pytest_atlas.gates import GateResult, GateSpec, KeyResult\n"
        "GateSpec.build('g', {'kind': 'threshold', 'threshold': 0.5})\n"
        "print(','.join(m for m in ('scipy', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the result types imported: {out}"


def test_atlas_vocabulary_is_what_the_schemas_and_the_relational_checks_say() -> None:
    """One vocabulary in the code; the JSON Schemas' enum of modes agrees with it."""
    from pytest_atlas import contracts
    from pytest_atlas.domain import (
        EXECUTION_MODES,
        LEGACY_EXECUTION_MODES,
        RECORDED_EXECUTION_MODES,
        REVIEW_STATUSES,
        SESSION_STATUSES,
    )
    from pytest_atlas.validation._schemas import document

    branches = document("common")["$defs"]["executionMode"]["anyOf"]
    assert tuple(branches[0]["enum"]) == EXECUTION_MODES
    assert (branches[1]["const"],) == LEGACY_EXECUTION_MODES
    assert set(RECORDED_EXECUTION_MODES) == set(EXECUTION_MODES + LEGACY_EXECUTION_MODES)
    assert contracts.SESSION_STATUSES is SESSION_STATUSES and contracts.REVIEW_STATUSES is REVIEW_STATUSES
