"""Seeding helpers for gate tests: plain INSERTs of sessions with the reward fields gates read.

A module with a unique name (not conftest.py): test directories here have no __init__.py, so
basenames must not clash across directories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

START = datetime(2025, 6, 1, tzinfo=timezone.utc)


def session_row(
    score: Any = 0.8,
    *,
    key: str = "k1",
    task: str = "task",
    status: str = "succeeded",
    review: str = "approved",
    minute: int = 0,
    mode: str | None = "auto",
    reward_stats: Any = "from-score",
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    stats = (
        {"score": score, "score_mean": score, "uncertainty_mean": 0.1, "best_uncertainty": 0.05}
        if reward_stats == "from-score"
        else reward_stats
    )
    meta: dict[str, Any] = {"learning_key": key}
    if mode is not None:
        meta["execution_mode"] = mode
    meta.update(metadata or {})
    return {
        "task": task,
        "status": status,
        "review_status": review,
        "reward_stats": stats,
        "metadata": meta,
        "created_at": START + timedelta(minutes=minute),
    }


def insert(conn: psycopg.Connection[Any], rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Insert sessions; returns their ids in order."""
    ids = []
    with conn.cursor() as cursor:
        for row in rows:
            cursor.execute(
                "INSERT INTO sessions (task, status, review_status, reward_stats, metadata, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    row["task"],
                    row["status"],
                    row["review_status"],
                    None if row["reward_stats"] is None else Jsonb(row["reward_stats"]),
                    Jsonb(row["metadata"]),
                    row["created_at"],
                ),
            )
            fetched = cursor.fetchone()
            assert fetched is not None
            ids.append(int(fetched[0]))
    return ids
