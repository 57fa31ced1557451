"""Small building blocks shared by the payload builders: time formats, keys, names, open objects."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pytest_atlas.domain._source import Source

__all__ = [
    "EPOCH",
    "Doc",
    "epoch_seconds",
    "iso",
    "json_scalar",
    "learning_key",
    "model_name",
    "open_value",
    "principles",
    "spaced",
    "timestamp_text",
    "uuid4",
]

Doc = dict[str, Any]

#: the earliest time generated data uses (Atlas v0.1.0 is from 2025)
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    """ISO 8601 with ``T`` and ``+00:00``: reward_stats, playbook, learning_history, export."""
    return moment.isoformat()


def spaced(moment: datetime) -> str:
    """Python's ``str(datetime)`` (a space, not ``T``): learning_state.updated_at, caller datetimes."""
    return str(moment)


def epoch_seconds(moment: datetime) -> float:
    """Epoch seconds as a float: event_timestamp, discovery telemetry."""
    return moment.timestamp()


def timestamp_text(src: Source, moment: datetime) -> str:
    """A caller-supplied timestamp string in one of the two text formats Atlas ends up storing."""
    return iso(moment) if src.flag(0.5) else spaced(moment)


def moment_after(src: Source, start: datetime, lo_seconds: float, hi_seconds: float) -> datetime:
    """A time ``lo``..``hi`` seconds after ``start`` (microsecond resolution)."""
    return start + timedelta(microseconds=src.integer(int(lo_seconds * 1e6), int(hi_seconds * 1e6)))


def uuid4(src: Source) -> str:
    """A version-4 UUID string (the orchestrator's event ids)."""
    digits = src.hexdigits(32)
    variant = "89ab"[int(digits[16], 16) % 4]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:32]}"


def learning_key(src: Source) -> str:
    """A learning key: a sha256 hex digest, or (less often) a caller's ``learning_key_override``."""
    if src.flag(0.85):
        return src.hexdigits(64)
    return src.pick(("team-alpha/triage", "support::billing", "sre:checkout-latency", "override")) + (
        f"-{src.integer(1, 999)}"
    )


MODELS: tuple[str, ...] = (
    "gpt-4.1-mini",
    "gemini/gemini-2.5-flash",
    "claude-sonnet-4-5",
    "gpt-5",
    "anthropic/claude-haiku-4-5",
    "ollama/llama3.1:8b",
)


def model_name(src: Source) -> str:
    return src.pick(MODELS)


PRINCIPLE_NAMES: tuple[str, ...] = (
    "correctness",
    "completeness",
    "safety",
    "grounding",
    "actionability",
    "concision",
    "tool_use",
)


def principles(src: Source, lo: int = 0, hi: int = 3) -> list[Doc]:
    """Judge principles ``{name, weight, description}`` (weights prompted in 0..1, not enforced)."""
    return [
        {
            "name": src.pick(PRINCIPLE_NAMES),
            "weight": round(src.real(0.0, 1.0), 3),
            "description": src.sentence(3, 10),
        }
        for _ in range(src.integer(lo, hi))
    ]


def json_scalar(src: Source) -> Any:
    """A JSON scalar: null, bool, int, finite float or string."""
    kind = src.integer(0, 4)
    if kind == 0:
        return None
    if kind == 1:
        return src.flag()
    if kind == 2:
        return src.integer(-1000, 10**6)
    if kind == 3:
        return src.real(-1e6, 1e6)
    return src.sentence(1, 4)


def open_value(src: Source, depth: int = 2) -> Any:
    """Any JSON value, nested at most ``depth`` levels (for open, caller-owned objects)."""
    if depth <= 0:
        return json_scalar(src)
    kind = src.integer(0, 3)
    if kind <= 1:
        return json_scalar(src)
    if kind == 2:
        return [open_value(src, depth - 1) for _ in range(src.integer(0, 3))]
    return {src.words(1, 2).replace(" ", "_") or "k": open_value(src, depth - 1) for _ in range(src.integer(0, 3))}
