"""Relational checks: values of the status columns, timestamps, and step ids against the session's plan.

Each runs as SQL on the server (counts plus a few sample rows), so its memory does not depend on
the table size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pytest_atlas.contracts._result import RelationReport
from pytest_atlas.db import query_problem
from pytest_atlas.domain import REVIEW_STATUSES, SESSION_STATUSES

__all__ = ["CHECKS", "REVIEW_STATUSES", "SESSION_STATUSES", "check_relations", "relation_names"]


@dataclass(frozen=True)
class _Check:
    table: str
    name: str
    description: str
    severity: str
    bad: sql.Composable  # condition over the scoped rows (alias t)
    shown: sql.Composable  # an expression describing a bad row (text)
    key: tuple[str, ...]


def _literals(values: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Literal(value) for value in values)


_STEP_IN_PLAN = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM plans p, jsonb_array_elements(CASE WHEN jsonb_typeof(p.plan -> 'steps') = 'array' "
    "THEN p.plan -> 'steps' ELSE '[]'::jsonb END) AS s(step) WHERE p.session_id = t.session_id "
    "AND jsonb_typeof(s.step) = 'object' AND s.step ->> 'id' = t.step_id::text)"
)
_PLAN_IDS = sql.SQL(
    "'step ' || t.step_id || ' of session ' || t.session_id || ' is not in its plan (plan step ids: ' || "
    "coalesce((SELECT string_agg(s.step ->> 'id', ', ') FROM plans p, jsonb_array_elements(CASE WHEN "
    "jsonb_typeof(p.plan -> 'steps') = 'array' THEN p.plan -> 'steps' ELSE '[]'::jsonb END) AS s(step) "
    "WHERE p.session_id = t.session_id), 'no plan row') || ')'"
)

CHECKS: tuple[_Check, ...] = (
    _Check(
        "sessions",
        "status",
        f"status is one of {', '.join(SESSION_STATUSES)}",
        "error",
        sql.SQL("t.status IS NULL OR t.status NOT IN ({})").format(_literals(SESSION_STATUSES)),
        sql.SQL("'status ' || coalesce(quote_literal(t.status), 'NULL')"),
        ("id",),
    ),
    _Check(
        "sessions",
        "review_status",
        f"review_status is one of {', '.join(REVIEW_STATUSES)}",
        "error",
        sql.SQL("t.review_status IS NULL OR t.review_status NOT IN ({})").format(_literals(REVIEW_STATUSES)),
        sql.SQL("'review_status ' || coalesce(quote_literal(t.review_status), 'NULL')"),
        ("id",),
    ),
    _Check(
        "sessions",
        "completed_at",
        "completed_at is not before created_at",
        "error",
        sql.SQL("t.completed_at < t.created_at"),
        sql.SQL("'completed_at ' || t.completed_at || ' < created_at ' || t.created_at"),
        ("id",),
    ),
    _Check(
        "sessions",
        "metadata_review_status",
        "metadata.review_status agrees with the review_status column (a stale copy is an Atlas quirk)",
        "warning",
        sql.SQL(
            "jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'review_status' "
            "AND t.metadata ->> 'review_status' IS DISTINCT FROM t.review_status"
        ),
        sql.SQL(
            "'metadata says ' || coalesce(quote_literal(t.metadata ->> 'review_status'), 'null') || "
            "', column says ' || coalesce(quote_literal(t.review_status), 'NULL')"
        ),
        ("id",),
    ),
    _Check(
        "step_results",
        "step_in_plan",
        "every step_results.step_id is a step id of its session's plan",
        "error",
        _STEP_IN_PLAN,
        _PLAN_IDS,
        ("session_id", "step_id"),
    ),
)


def _scope(table: str, since: date | None, limit: int | None) -> tuple[sql.Composable, list[Any]]:
    """The rows a check looks at: the same rows the column checks read (since / newest ``limit``)."""
    params: list[Any] = []
    query: sql.Composable = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
    if since is not None:
        if table == "sessions":
            query = sql.SQL("{} WHERE created_at >= %s").format(query)
        else:
            query = sql.SQL("{} WHERE session_id IN (SELECT id FROM sessions WHERE created_at >= %s)").format(query)
        params.append(since)
    if limit is not None:
        order = "created_at DESC, id DESC" if table == "sessions" else "session_id DESC, step_id DESC"
        query = sql.SQL("{} ORDER BY {} LIMIT %s").format(query, sql.SQL(order))
        params.append(limit)
    return query, params


def relation_names(tables: set[str]) -> list[str]:
    """The relational checks of these tables, as ``table[check]``."""
    return [f"{check.table}[{check.name}]" for check in CHECKS if check.table in tables]


def check_relations(
    conn: psycopg.Connection[Any], names: set[str], since: date | None, limit: int | None, samples: int
) -> list[RelationReport]:
    reports = []
    for check in CHECKS:
        if f"{check.table}[{check.name}]" not in names:
            continue
        report = RelationReport(
            table=check.table, check=check.name, description=check.description, severity=check.severity
        )
        try:
            with conn.transaction():
                _run(conn, check, report, since, limit, samples)
        except psycopg.Error as exc:
            found = query_problem(exc, conn)
            report.problem = f"the query failed: {found.problem} ({found.hint})"
            report.transient = found.transient
        reports.append(report)
    return reports


def _run(
    conn: psycopg.Connection[Any],
    check: _Check,
    report: RelationReport,
    since: date | None,
    limit: int | None,
    samples: int,
) -> None:
    scope, params = _scope(check.table, since, limit)
    cursor = conn.cursor(row_factory=tuple_row)  # whatever row factory the caller's connection uses
    counts = cursor.execute(
        sql.SQL("SELECT count(*), count(*) FILTER (WHERE {bad}) FROM ({scope}) AS t").format(
            bad=check.bad, scope=scope
        ),
        params,
    ).fetchone()
    assert counts is not None
    report.rows_checked, report.count = int(counts[0]), int(counts[1])
    if not report.count or not samples:
        return
    keys = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(name)) for name in check.key)
    rows = cursor.execute(
        sql.SQL("SELECT {keys}, {shown} FROM ({scope}) AS t WHERE {bad} ORDER BY {keys} LIMIT %s").format(
            keys=keys, shown=check.shown, scope=scope, bad=check.bad
        ),
        [*params, samples],
    ).fetchall()
    width = len(check.key)
    for row in rows:
        key = dict(zip(check.key, row[:width], strict=True))
        report.sample_keys.append(key)
        report.examples.append(", ".join(f"{k}={v}" for k, v in key.items()) + f": {row[width]}")
