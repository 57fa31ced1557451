"""The domain layer (pytest_atlas.domain) says what Atlas says: its vocabulary agrees with the JSON
Schemas, its catalogue with the table structure written out by hand from Atlas in
tests/db/test_schema_catalog.py, and it stays light (no Hypothesis, psycopg, pytest or scipy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_atlas.domain import (
    ATLAS_COLUMNS,
    CATALOGUE,
    EVENT_TYPES,
    JSON_TABLES,
    QUIRKS,
    TABLE_COLUMNS,
    RandomSource,
    SessionGraph,
    build_graph,
    graph_options,
)
from tests.db.test_schema_catalog import EXPECTED_COLUMNS, EXPECTED_PRIMARY_KEYS

SCHEMAS = Path(__file__).resolve().parents[1] / "jsonschemas"


def _values(node: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a JSON document."""
    found: list[Any] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found.append(value)
            found.extend(_values(value, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(_values(item, key))
    return found


def test_importing_the_domain_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import pytest_atlas.domain\n"
        "print(','.join(m for m in ('hypothesis', 'psycopg', 'pytest', 'scipy', 'numpy', 'jsonschema')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing pytest_atlas.domain imported: {out}"


def test_the_quirks_are_the_ones_the_schemas_tolerate() -> None:
    named = {
        value
        for path in SCHEMAS.glob("*.schema.json")
        for value in _values(json.loads(path.read_text()), "x-atlas-quirk")
    }
    assert named == set(QUIRKS)
    assert all(description.strip() for description in QUIRKS.values())


def test_the_event_types_are_the_schemas_enum() -> None:
    schema = json.loads((SCHEMAS / "trajectory-event.schema.json").read_text())
    assert tuple(schema["$defs"]["payload"]["properties"]["event_type"]["enum"]) == EVENT_TYPES


def test_the_catalogue_matches_atlas_tables() -> None:
    assert set(CATALOGUE) == set(EXPECTED_COLUMNS)
    for name, table in CATALOGUE.items():
        columns = {column: (kind, nullable, default) for column, kind, nullable, default in EXPECTED_COLUMNS[name]}
        assert list(table.key) == EXPECTED_PRIMARY_KEYS[name], name
        assert table.json_columns == {c for c, (kind, _, _) in columns.items() if kind == "jsonb"}, name
        assert set(table.filled) <= set(columns) - {"id", "session_id"}, name
        # a None that COPY writes takes the column's default: every NOT NULL default is known here
        constant = {c: d for c, (_, nullable, d) in columns.items() if d and not nullable and d.endswith("::text")}
        assert {c: f"'{v}'::text" for c, v in table.defaults.items()} == constant, name
        assert table.now == {c for c, (_, _, d) in columns.items() if d == "now()"}, name
        if table.created is not None:
            assert columns[table.created][0] == "timestamp with time zone", name


def test_the_json_columns_name_existing_schemas() -> None:
    files = {path.name.removesuffix(".schema.json") for path in SCHEMAS.glob("*.schema.json")}
    assert set(ATLAS_COLUMNS.values()) <= files
    assert set(JSON_TABLES) == {key.partition(".")[0] for key in ATLAS_COLUMNS}


def test_a_built_graph_fills_exactly_the_catalogued_columns() -> None:
    for seed in range(40):
        graph = build_graph(RandomSource(seed), graph_options("build_graph", status="succeeded"))
        assert isinstance(graph, SessionGraph)
        for table, rows in graph.rows().items():
            for row in rows:
                assert tuple(row) == TABLE_COLUMNS[table], (seed, table)
