"""Same inputs, same rows: two runs of the same sequence write the same rows, apart from ids and times."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg

from pytest_atlas.runtime import AtlasRuntime

from .helpers import TABLES, everything

_TIME_KEYS = {
    "created_at",
    "completed_at",
    "updated_at",
    "timestamp",
    "event_timestamp",
    "generated_at",
    "last_updated_at",
    "first_observed_at",
    "last_observed_at",
    "timings_ms",
    "student_ms",
    "validation_ms",
    "total_ms",
}
_ID_KEYS = {"UUID", "parent_id", "run_id", "checkpoint_id", "parent_run_id"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?")
_DATETIME_REPR = re.compile(r"datetime\.datetime\([^)]*\)")


def normalise(value: Any, key: str = "") -> Any:
    """Ids and times replaced by placeholders; everything else as it is."""
    if key in _TIME_KEYS:
        return "<time>"
    if key in _ID_KEYS and value not in (None, "root"):
        return "<id>"
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dt.datetime):
        return "<time>"
    if isinstance(value, str):
        value = _DATETIME_REPR.sub("<time>", value)
        return _ISO.sub("<time>", _UUID.sub("<id>", value))
    return value


def sequence(runtime: AtlasRuntime) -> None:
    """Runs along every path: learning, history and routing, escalation, retry, coach, failure, drift."""
    for score in (0.8, 0.82, 0.79, 0.81, 0.8):
        runtime.run("Summarise the release", score=score, metadata={"source": "atlas run", "tags": ["release"]})
    runtime.run("Summarise the release", score=0.2)  # a drop: drift alert
    runtime.run("Explain the outage", guidance="Cite the logs.", uncertainty=0.7)
    runtime.run("Explain the outage", mode="coach", escalate=True)
    runtime.run("Explain the outage", mode="auto")
    runtime.run("Crash", fail=True)


def test_two_runs_write_the_same_rows(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sequence(atlas_runtime)
    first = normalise(everything(atlas_db))
    atlas_db.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    atlas_db.commit()
    sequence(atlas_runtime)
    second = normalise(everything(atlas_db))
    assert sum(len(rows) for rows in first.values()) > 100
    for name in TABLES:
        assert first[name] == second[name], name
