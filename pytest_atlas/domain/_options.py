"""What a caller pins of a session graph: :class:`GraphOptions`, and the validation of the public keyword
arguments that become them (shared by strategies and factories)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pytest_atlas._arguments import (
    call_bool,
    call_choice,
    call_count,
    call_error,
    call_interval,
    call_str,
)
from pytest_atlas.domain._common import Doc
from pytest_atlas.domain._events import minimum_events
from pytest_atlas.domain._vocabulary import RECORDED_EXECUTION_MODES, SESSION_STATUSES

__all__ = ["MAX_EVENTS", "MAX_STEPS", "GraphOptions", "graph_options"]

MAX_STEPS = 8
MAX_ATTEMPTS = 5
MAX_EVENTS = 2000


@dataclass(frozen=True)
class GraphOptions:
    """What a caller pinned; ``None`` everywhere means "let the builder choose"."""

    learning_key: str | None = None
    task: str | None = None
    status: str | None = None
    review_status: str | None = None
    execution_mode: str | None = None
    score: tuple[float, float] | None = None
    steps: tuple[int, int] | None = None
    events: tuple[int, int] | None = None
    attempts: tuple[int, int] | None = None
    drift_alert: bool | None = None
    legacy: bool | None = None
    created_at: datetime | None = None
    caller_metadata: Doc | None = None
    #: for the reward scenarios: the exact (score, uncertainty) of the single reward sample
    exact_reward: tuple[float, float] | None = None
    #: for the reward scenarios: the drift document to store (computed against real history)
    drift: Doc | None = None
    #: False skips the trajectory events (for strategies that only return the metadata)
    with_events: bool = True
    #: for the factories: the reward_stats of the key's earlier sessions, newest first; the drift
    #: document is then assessed against them (as Atlas would from the table), not a drawn history
    drift_history: tuple[Doc, ...] | None = None
    #: for the factories: where the key's scores usually lie, as a fraction of the score range; the
    #: reward samples are drawn near it (one key's rewards are alike), so a drifting session can
    #: stand out against the key's history; None: each session's own level, anywhere in the range
    reward_level: float | None = None


def _check_metadata(function: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise call_error(function, "metadata", value, "a dict with string keys (the caller's session_metadata)")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise call_error(
            function,
            "metadata",
            value,
            "a JSON-serialisable dict without NaN or Infinity",
            hint="convert datetimes and other objects to strings first (Atlas stores str() of them)",
        ) from None
    if "\\u0000" in text:
        raise call_error(function, "metadata", value, "a dict without NUL characters (PostgreSQL jsonb rejects them)")
    return dict(value)


def graph_options(
    function: str,
    *,
    learning_key: Any = None,
    task: Any = None,
    status: Any = None,
    review_status: Any = None,
    execution_mode: Any = None,
    score: Any = None,
    steps: Any = None,
    events: Any = None,
    attempts: Any = None,
    drift_alert: Any = None,
    legacy: Any = None,
    created_at: Any = None,
    metadata: Any = None,
) -> GraphOptions:
    """Validate every argument up front and cross-check the combinations Atlas cannot produce."""
    key = call_str(function, "learning_key", learning_key)
    task_text = call_str(function, "task", task)
    status_value = call_choice(function, "status", status, SESSION_STATUSES)
    review = call_str(function, "review_status", review_status)
    mode = call_choice(function, "execution_mode", execution_mode, RECORDED_EXECUTION_MODES)
    score_range = call_interval(function, "score", score, lo=0.0, hi=1.0)
    steps_range = call_count(function, "steps", steps, lo=1, hi=MAX_STEPS)
    events_range = call_count(function, "events", events, lo=0, hi=MAX_EVENTS)
    attempts_range = call_count(function, "attempts", attempts, lo=1, hi=MAX_ATTEMPTS)
    alert = call_bool(function, "drift_alert", drift_alert)
    legacy_flag = call_bool(function, "legacy", legacy)
    if created_at is not None and (not isinstance(created_at, datetime) or created_at.tzinfo is None):
        raise call_error(
            function,
            "created_at",
            created_at,
            "a timezone-aware datetime (sessions.created_at is TIMESTAMPTZ)",
            hint="use datetime(..., tzinfo=timezone.utc)",
        )
    caller = _check_metadata(function, metadata)

    # -- combinations ---------------------------------------------------------------------------
    rewarded = score_range is not None or alert is not None
    if rewarded and status_value in ("failed", "running"):
        pinned = "score" if score_range is not None else f"drift_alert={alert}"
        raise call_error(
            function,
            "status",
            status_value,
            f"'succeeded' (or None) when {pinned} is given",
            hint="only succeeded sessions have a reward; failed and running sessions never do",
        )
    for name, pinned_range in (("steps", steps_range), ("attempts", attempts_range)):
        if pinned_range is not None and status_value in ("failed", "running"):
            raise call_error(
                function,
                name,
                steps if name == "steps" else attempts,
                f"None for a {status_value} session",
                hint=f"Atlas writes step rows only for succeeded sessions: a {status_value} one has none, so "
                f"{name} would be ignored",
            )
    if mode is not None and status_value == "running":
        raise call_error(
            function,
            "execution_mode",
            mode,
            "None for a running session",
            hint="Atlas records the execution mode when the run ends (success or failure)",
        )
    if legacy_flag is False and steps_range is not None and steps_range[0] > 1:
        raise call_error(
            function,
            "steps",
            steps,
            "1 when legacy=False",
            hint="the current runtime writes one-step plans only; pass legacy=True for multi-step plans",
        )
    if legacy_flag is False and mode == "escalate":
        raise call_error(
            function,
            "execution_mode",
            mode,
            "'auto', 'paired' or 'coach' when legacy=False",
            hint="'escalate' was removed in Atlas v0.1.12; pass legacy=True for historical data",
        )
    if steps_range is not None and steps_range[1] > 1 and legacy_flag is None:
        legacy_flag = True
    if mode == "escalate" and legacy_flag is None:
        legacy_flag = True
    if events_range is not None:
        lo, hi = events_range
        if status_value == "running" and lo > 0:
            raise call_error(
                function,
                "events",
                events,
                "0 for a running session",
                hint="Atlas writes trajectory events at the end of a session",
            )
        steps_needed = steps_range[0] if steps_range else 1
        needed = minimum_events(
            attempts=steps_needed * (attempts_range[0] if attempts_range else 1), probe=False, coach=False
        )
        succeeded = status_value == "succeeded" or rewarded or steps_range is not None or attempts_range is not None
        if succeeded and hi < needed:
            raise call_error(
                function,
                "events",
                events,
                f"at least {needed} for a succeeded session with these steps",
                hint="a completed session has WORKFLOW_START/END, triage, adaptive_route and a TASK "
                "START/END pair per attempt; ask for failed sessions to get fewer",
            )
    return GraphOptions(
        learning_key=key,
        task=task_text,
        status=status_value,
        review_status=review,
        execution_mode=mode,
        score=score_range,
        steps=steps_range,
        events=events_range,
        attempts=attempts_range,
        drift_alert=alert,
        legacy=legacy_flag,
        created_at=created_at,
        caller_metadata=caller,
    )
