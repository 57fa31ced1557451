"""Reading a session's rows back, in the shape of ``SessionGraph.as_dict()``."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


def read_graph(conn: psycopg.Connection[Any], session_id: int) -> dict[str, Any]:
    """The rows of one session, read back in the shape of SessionGraph.as_dict()."""
    with conn.cursor(row_factory=dict_row) as cur:
        session = cur.execute("SELECT * FROM sessions WHERE id = %s", (session_id,)).fetchone()
        assert session is not None
        session.pop("id")
        plan = cur.execute("SELECT plan FROM plans WHERE session_id = %s", (session_id,)).fetchone()
        tables = {}
        for table, order in (
            ("step_results", "step_id"),
            ("step_attempts", "step_id, attempt"),
            ("guidance_notes", "step_id, sequence"),
            ("trajectory_events", "id"),
        ):
            query = sql.SQL("SELECT * FROM {} WHERE session_id = %s ORDER BY {}").format(
                sql.Identifier(table), sql.SQL(order)
            )
            rows = cur.execute(query, (session_id,))
            tables[table] = [{k: v for k, v in row.items() if k not in ("session_id", "id")} for row in rows]
    return {"session": session, "plan": plan["plan"] if plan else None, **tables}
