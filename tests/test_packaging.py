"""What the package declares is what it imports: every third-party module pytest_atlas imports is
a declared dependency (core, or the extra of the feature that imports it), every core dependency is
imported, and the version is written in one place."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import pytest_atlas

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_atlas"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: the extras that are features of the package (``test`` is the maintainers' environment)
FEATURE_EXTRAS = ("binary", "embedded", "async", "atlas")


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in pytest_atlas (``import``, ``from ... import``,
    and the names probed with ``importlib.util.find_spec``), with the files that import them."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "find_spec"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("pytest_atlas", "_pytest"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def imported() -> dict[str, set[str]]:
    return imported_modules()


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide the top-level module (``yaml`` -> PyYAML); a module
    not installed here (``tomli`` on Python 3.11+) is taken to be its own distribution."""
    names = _packages().get(module, [])
    return {_name(name) for name in names} or {_name(module)}


def _applies(requirement: str) -> bool:
    """Whether a requirement's environment marker holds here (``tomli; python_version < '3.11'``)."""
    parsed = Requirement(requirement)
    return parsed.marker is None or parsed.marker.evaluate()


def test_every_imported_module_is_declared() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    extras = {_name(r) for extra in FEATURE_EXTRAS for r in PROJECT["optional-dependencies"][extra]}
    undeclared = {}
    for module, files in imported().items():
        if not distributions_of(module) & (core | extras):
            undeclared[module] = sorted(files)
    assert undeclared == {}


def test_every_core_dependency_is_imported() -> None:
    provided = {dist for module in imported() for dist in distributions_of(module)}
    unused = sorted({_name(r) for r in PROJECT["dependencies"] if _applies(r)} - provided)
    assert unused == [], f"declared but never imported by pytest_atlas: {unused}"


def test_pytest_postgresql_is_for_the_benchmarks_only() -> None:
    assert "pytest-postgresql" not in {_name(r) for r in PROJECT["dependencies"]}
    assert "pytest-postgresql" in {_name(r) for r in PROJECT["optional-dependencies"]["test"]}
    assert "pytest_postgresql" not in imported()


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert importlib.metadata.version("pytest-atlas") == pytest_atlas.__version__


@pytest.mark.parametrize("module", ["numpy", "referencing", "scipy"])
def test_the_modules_the_issue_found_undeclared_are_declared(module: str) -> None:
    assert module in imported()
    assert distributions_of(module) & {_name(r) for r in PROJECT["dependencies"]}
