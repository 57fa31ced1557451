"""Which table and JSON column is checked against which schema (the domain's catalogue, overridable per check)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_atlas._arguments import unknown_names
from pytest_atlas.domain import ATLAS_COLUMNS, JSON_TABLES, Table
from pytest_atlas.errors import InvalidArgument

__all__ = ["ATLAS_COLUMNS", "TABLES", "Column", "Table", "resolve_targets"]


@dataclass(frozen=True)
class Column:
    """One JSON column and the schema its values must match."""

    table: Table
    column: str
    schema: str | Mapping[str, Any]

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    @property
    def schema_name(self) -> str:
        if isinstance(self.schema, str):
            return self.schema
        return str(self.schema.get("title") or self.schema.get("$id") or "custom schema")


#: the tables a contract checks (those with a JSON column), from the domain's catalogue
TABLES: dict[str, Table] = JSON_TABLES


def resolve_targets(
    tables: Iterable[str] | str | None,
    schemas: Mapping[str, str | Mapping[str, Any] | None] | None,
) -> list[Column]:
    """The columns to check, in a stable order.

    ``schemas`` maps ``table.column`` to a schema (name or mapping) and is merged over
    :data:`ATLAS_COLUMNS`; ``None`` drops a column. ``tables`` keeps only the named tables (or
    ``table.column`` entries).
    """
    from pytest_atlas.validation import validator_for

    mapping: dict[str, str | Mapping[str, Any]] = dict(ATLAS_COLUMNS)
    for key, value in (schemas or {}).items():
        table_name, _, column = key.partition(".")
        if not column:
            raise InvalidArgument(
                f"schemas key {key!r} must be 'table.column' with an Atlas table",
                hint=f"tables: {', '.join(TABLES)}; e.g. schemas={{'sessions.metadata': 'session-metadata'}}",
            )
        if table_name not in TABLES:
            error = unknown_names(
                "table", [table_name], TABLES, also="e.g. schemas={'sessions.metadata': 'session-metadata'}"
            )
            raise InvalidArgument(f"schemas key {key!r}: {error.problem}", hint=error.hint)
        if value is None:
            mapping.pop(key, None)
        else:
            validator_for(value)  # raises InvalidArgument for an unknown name or a broken schema
            mapping[key] = value
    wanted: set[str] | None = None
    if tables is not None:
        names = [tables] if isinstance(tables, str) else list(tables)
        wanted = set()
        for entry in names:
            if not isinstance(entry, str):
                raise InvalidArgument(
                    f"tables must hold table names, got {entry!r}", hint="e.g. tables=['sessions', 'plans.plan']"
                )
            table_name = entry.partition(".")[0]
            if entry == table_name and table_name not in TABLES:
                raise unknown_names("table", [entry], TABLES, also="or a JSON column: " + ", ".join(mapping))
            if entry != table_name and entry not in mapping:
                raise unknown_names("JSON column", [entry], mapping, also="or a table: " + ", ".join(TABLES))
            wanted.add(entry)
    out: list[Column] = []
    for key, schema in mapping.items():
        table_name, _, column = key.partition(".")
        if wanted is not None and table_name not in wanted and key not in wanted:
            continue
        out.append(Column(TABLES[table_name], column, schema))
    return out
