"""Reading what a run wrote: every row of every Atlas table, as plain data."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

#: every Atlas table and the columns that identify a row in a stable order
TABLES: dict[str, str] = {
    "sessions": "id",
    "plans": "session_id",
    "step_results": "session_id, step_id",
    "step_attempts": "session_id, step_id, attempt",
    "guidance_notes": "session_id, step_id, sequence",
    "trajectory_events": "session_id, id",
    "learning_registry": "learning_key",
    "discovery_runs": "id",
}


def session(conn: psycopg.Connection[Any], sid: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM sessions WHERE id = %s", [sid]).fetchone()
    conn.rollback()
    assert row is not None, f"no session {sid}"
    return row


def table(
    conn: psycopg.Connection[Any], name: str, where: str = "", params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT * FROM {name} {where} ORDER BY {TABLES[name]}", params).fetchall()
    conn.rollback()
    return rows


def events(conn: psycopg.Connection[Any], sid: int) -> list[str]:
    """``EVENT_TYPE:name`` of a session's trajectory events, in order."""
    rows = table(conn, "trajectory_events", "WHERE session_id = %s", (sid,))
    return [f"{r['event']['payload']['event_type']}:{r['event']['payload']['name']}" for r in rows]


def everything(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    return {name: table(conn, name) for name in TABLES}
