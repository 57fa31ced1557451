"""Filling a test database with Atlas rows (realistic ones, and broken ones on request)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import contract_documents as D


def session(
    conn: psycopg.Connection[Any],
    metadata: Any = None,
    *,
    status: str = "succeeded",
    review_status: str = "approved",
    reward: Any = None,
    stats: Any = None,
    audit: Any = None,
    created_at: str = "2025-11-03 14:00:00+00",
    completed: bool = True,
) -> int:
    row = conn.execute(
        "INSERT INTO sessions (task, status, metadata, final_answer, reward, reward_stats, reward_audit, "
        "review_status, created_at, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "CASE WHEN %s THEN %s::timestamptz + interval '90 seconds' END) RETURNING id",
        [
            "Investigate the checkout latency spike.",
            status,
            _json(metadata),
            "Roll back deploy 4471.",
            _json(reward),
            _json(stats),
            _json(audit),
            review_status,
            created_at,
            completed,
            created_at,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)


def full_session(
    conn: psycopg.Connection[Any],
    *,
    created_at: str = "2025-11-03 14:00:00+00",
    metadata: Any = None,
    plan: Any = None,
    steps: int = 1,
) -> int:
    """A successful paired session with its plan, step result, attempts, guidance and events."""
    sid = session(
        conn,
        D.session_metadata() if metadata is None else metadata,
        reward=D.session_reward(),
        stats=D.reward_stats(),
        audit=D.reward_audit(),
        created_at=created_at,
    )
    conn.execute("INSERT INTO plans (session_id, plan) VALUES (%s, %s)", [sid, Jsonb(plan or D.plan())])
    for step in range(1, steps + 1):
        conn.execute(
            "INSERT INTO step_results (session_id, step_id, trace, output, evaluation, attempts, metadata) "
            "VALUES (%s, %s, %s, %s, %s, 2, %s)",
            [
                sid,
                step,
                "HUMAN: ...\nAI: ...",
                "Roll back deploy 4471.",
                Jsonb(D.step_evaluation_passthrough()),
                Jsonb(D.step_metadata()),
            ],
        )
        conn.execute(
            "INSERT INTO step_attempts (session_id, step_id, attempt, evaluation) VALUES (%s, %s, 1, %s), "
            "(%s, %s, 2, %s)",
            [sid, step, Jsonb(D.step_evaluation_teacher()), sid, step, Jsonb(D.step_evaluation_passthrough())],
        )
        conn.execute(
            "INSERT INTO guidance_notes (session_id, step_id, sequence, note) VALUES (%s, %s, 1, %s)",
            [sid, step, "Pull the p99 histogram first."],
        )
    for event in D.trajectory_events():
        conn.execute(
            "INSERT INTO trajectory_events (session_id, event, created_at) VALUES (%s, %s, %s)",
            [sid, Jsonb(event), created_at],
        )
    return sid


def discovery(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO discovery_runs (project_root, task, source, payload, metadata) VALUES "
        "(%s, %s, 'discovery', %s, %s), (%s, %s, 'runtime', %s, %s)",
        [
            "/srv/support-bot",
            "Refund order 1182",
            Jsonb(D.discovery_payload()),
            Jsonb(D.discovery_metadata()),
            "/srv/support-bot",
            "Refund order 1182",
            Jsonb(D.empty_discovery_payload()),
            Jsonb(D.runtime_discovery_metadata()),
        ],
    )
    conn.execute(
        "INSERT INTO learning_registry (learning_key, student_learning, teacher_learning, metadata) "
        "VALUES (%s, %s, NULL, %s)",
        [D.LEARNING_KEY, "Pull latency histograms before proposing fixes.", Jsonb(D.registry_metadata())],
    )


def clean_database(conn: psycopg.Connection[Any]) -> None:
    """Three realistic sessions (one running), discovery runs and a registry row: no error, no warning."""
    full_session(conn, created_at="2025-11-01 09:00:00+00")
    full_session(
        conn,
        created_at="2025-11-02 09:00:00+00",
        metadata=D.drift_alert_session_metadata() | {"review_status": "approved"},
    )
    session(
        conn,
        D.running_session_metadata(),
        status="running",
        review_status="pending",
        created_at="2025-11-03 09:00:00+00",
        completed=False,
    )
    discovery(conn)
    conn.commit()
