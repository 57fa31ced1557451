"""The one catalogue of Atlas's tables: their keys, columns, JSON columns and the schema of each.

Everything that needs to know a table's shape reads it here: the builders (which columns a
:class:`~pytest_atlas.domain.SessionGraph` fills), the factories (what COPY writes, which values are
JSON, which defaults a ``None`` takes), the contracts (which JSON column is checked against which
JSON Schema, how rows are keyed and dated). A change in Atlas's storage is one edit here (and in
``schema.sql``); tests check both against Atlas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ATLAS_COLUMNS", "CATALOGUE", "JSON_TABLES", "TABLE_COLUMNS", "Table"]


@dataclass(frozen=True)
class Table:
    """An Atlas table.

    ``key`` is its primary key; ``created`` its own timestamp column (rows are ordered newest first
    and filtered by date through it; tables without one are dated through their session,
    ``session_id`` → ``sessions.created_at``). ``filled`` are the columns a session graph fills, in
    insertion order (ids and ``session_id`` are added on insert; empty for tables outside a graph).
    ``json`` maps each JSONB column to the name of its JSON Schema. ``defaults`` are the values of NOT
    NULL columns with a constant default, and ``now`` the columns that default to ``NOW()``.
    """

    name: str
    key: tuple[str, ...]
    created: str | None
    filled: tuple[str, ...] = ()
    json: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    now: frozenset[str] = frozenset()

    @property
    def json_columns(self) -> frozenset[str]:
        return frozenset(self.json)


CATALOGUE: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "sessions",
            ("id",),
            "created_at",
            filled=(
                "task",
                "status",
                "metadata",
                "final_answer",
                "reward",
                "reward_stats",
                "reward_audit",
                "student_learning",
                "teacher_learning",
                "review_status",
                "review_notes",
                "created_at",
                "completed_at",
            ),
            json={
                "metadata": "session-metadata",
                "reward": "session-reward",
                "reward_stats": "reward-stats",
                "reward_audit": "reward-audit",
            },
            defaults={"status": "running", "review_status": "pending"},
            now=frozenset({"created_at"}),
        ),
        Table("plans", ("session_id",), None, filled=("plan",), json={"plan": "plan"}),
        Table(
            "step_results",
            ("session_id", "step_id"),
            None,
            filled=("step_id", "trace", "output", "evaluation", "attempts", "metadata"),
            json={"evaluation": "step-evaluation", "metadata": "step-metadata"},
        ),
        Table(
            "step_attempts",
            ("session_id", "step_id", "attempt"),
            None,
            filled=("step_id", "attempt", "evaluation"),
            json={"evaluation": "step-evaluation"},
        ),
        Table("guidance_notes", ("session_id", "step_id", "sequence"), None, filled=("step_id", "sequence", "note")),
        Table(
            "trajectory_events",
            ("id",),
            "created_at",
            filled=("event", "created_at"),
            json={"event": "trajectory-event"},
            now=frozenset({"created_at"}),
        ),
        Table(
            "discovery_runs",
            ("id",),
            "created_at",
            json={"payload": "discovery-payload", "metadata": "discovery-metadata"},
            defaults={"source": "discovery"},
            now=frozenset({"created_at"}),
        ),
        Table(
            "learning_registry",
            ("learning_key",),
            "updated_at",
            json={"metadata": "learning-registry-metadata"},
            now=frozenset({"updated_at"}),
        ),
    )
}

#: the columns each part of a session graph fills, in insertion order
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {name: table.filled for name, table in CATALOGUE.items() if table.filled}

#: the tables that hold JSON (the ones a contract checks)
JSON_TABLES: dict[str, Table] = {name: table for name, table in CATALOGUE.items() if table.json}

#: ``table.column`` → schema name: every JSONB column Atlas writes
ATLAS_COLUMNS: dict[str, str] = {
    f"{name}.{column}": schema for name, table in CATALOGUE.items() for column, schema in table.json.items()
}
