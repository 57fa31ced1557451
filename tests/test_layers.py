"""Imports flow one way: errors/config (and the light vocabulary, outcome and table modules) -> db, schema, validation, stats, strategies -> contracts,
factories, gates -> assertions, _report -> fixtures -> plugin. Only fixtures and plugin import pytest."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_atlas"

LAYERS = {
    "errors": 0,
    "_config": 0,
    "_resources": 0,
    "_lazy": 0,
    "_properties": 0,
    "_dsn": 0,
    "_outcome": 0,
    "_table": 0,
    "_arguments": 0,
    "domain": 0,
    "_violation": 0,
    "db": 1,
    "schema": 1,
    "validation": 1,
    "stats": 1,
    "strategies": 1,
    "contracts": 2,
    "factories": 2,
    "gates": 2,
    "runtime": 2,
    "assertions": 3,
    "_report": 3,
    "fixtures": 4,
    "plugin": 5,
}


def area(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every pytest_atlas / pytest import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_every_area_has_a_layer() -> None:
    areas = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert areas == set(LAYERS)


def test_imports_flow_one_way() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = relative.parts
        if parts == ("pytest_atlas", "__init__"):
            continue  # the facade re-exports every area lazily
        here = LAYERS[parts[1]]
        for line, module in runtime_imports(path):
            if module.startswith("pytest_atlas."):
                target = area(module)
                if target != parts[1] and LAYERS[target] > here:
                    wrong.append(f"{relative}:{line} imports {module}")
            elif module.split(".")[0] in ("pytest", "_pytest") and here < LAYERS["fixtures"]:
                wrong.append(f"{relative}:{line} imports {module} (only fixtures and plugin may)")
    assert wrong == []
