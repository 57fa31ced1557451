"""Which sessions a gate looks at: learning key, time window, last N, status, review status, metadata."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

from pytest_atlas.domain import REVIEW_STATUSES, SESSION_STATUSES
from pytest_atlas.errors import InvalidArgument

__all__ = ["Selection"]


def _strings(name: str, value: object, choices: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """One string or a non-empty list of non-empty strings; with ``choices``, each one of them."""
    if value is None:
        return None
    example = f'["{choices[0]}", "{choices[1]}"]' if choices else '["a", "b"]'
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise InvalidArgument(
            f"{name} must be a string or a list of strings, got {value!r}", hint=f"for example {name}={example}"
        )
    if not value:
        raise InvalidArgument(f"{name} is an empty list", hint=f"leave {name} out to select every value")
    for item in value:
        if not item.strip() or "\x00" in item:
            raise InvalidArgument(
                f"{name} holds an empty or unusable string {item!r}", hint=f"for example {name}={example}"
            )
        if choices is not None and item not in choices:
            close = difflib.get_close_matches(item, choices, n=1)
            raise InvalidArgument(
                f"{name} {item!r} is not a value Atlas writes" + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint=f"{name} is one of {', '.join(choices)}",
            )
    return tuple(value)


def _json_object(name: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidArgument(
            f"{name} must be a JSON object, got {value!r}", hint='for example metadata={"source": "nightly-eval"}'
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{name} must hold JSON values only (strings, numbers, booleans, null, lists, objects): {exc}",
            hint="write dates as ISO strings; NaN and Infinity cannot be stored in jsonb",
        ) from None
    return dict(value)


def _moment(name: str, value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(
                f"{name} is {value!r}, not an ISO date or date-time",
                hint=f'write {name} as "2025-01-31" or "2025-01-31T12:00:00+00:00"',
            ) from None
    else:
        raise InvalidArgument(
            f"{name} must be a date, a datetime or an ISO string, got {value!r}", hint=f'write {name} as "2025-01-31"'
        )
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Selection:
    """A filter over ``sessions``; every field is optional and they combine with AND.

    * ``learning_key``: one key or several (``metadata->>'learning_key'``);
    * ``since`` / ``until``: ``created_at >= since`` and ``< until`` (dates mean midnight UTC);
    * ``last``: only the newest N scored sessions (per learning key when the gate groups by key);
    * ``status``: ``sessions.status`` values (Atlas writes running, succeeded, failed; nothing else
      is accepted);
    * ``review_status``: ``sessions.review_status`` values (pending, approved, quarantined); by default every value but
      ``quarantined`` -- quarantined sessions are left out as Atlas's export leaves them out, unless
      ``include_quarantined`` is true or ``review_status`` names ``quarantined`` explicitly;
    * ``metadata``: a JSON object the session metadata must contain (``metadata @> ...``, which the
      GIN index serves), e.g. ``{"source": "nightly-eval"}``;
    * ``task``: one task text or several (``sessions.task``);
    * ``max_uncertainty``: leave out of reward statistics the sessions whose judges were less sure
      than this (``reward_stats.uncertainty_mean`` above it; sessions without one stay in). They are
      counted as ``uncertain`` and named in the result, so a noisy judge cannot pass or fail a gate.
    """

    learning_key: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    last: int | None = None
    status: tuple[str, ...] | None = None
    review_status: tuple[str, ...] | None = None
    include_quarantined: bool = False
    metadata: Mapping[str, Any] | None = field(default=None, hash=False)
    task: tuple[str, ...] | None = None
    max_uncertainty: float | None = None

    @classmethod
    def build(cls, **options: Any) -> Selection:
        """Checked construction from loose values (strings, lists, ISO dates); unknown names are refused."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidArgument(
                "unknown selection option" + ("s " if len(unknown) > 1 else " ") + ", ".join(map(repr, unknown)),
                hint="use learning_key, since, until, last, status, review_status, include_quarantined, "
                "metadata, task, max_uncertainty",
            )
        last = options.get("last")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= 2**62):
            raise InvalidArgument(f"last must be a positive integer, got {last!r}", hint="for example last=200")
        metadata = _json_object("metadata", options.get("metadata"))
        include = options.get("include_quarantined", False)
        if not isinstance(include, bool):
            raise InvalidArgument(
                f"include_quarantined must be true or false, got {include!r}", hint="include_quarantined=true"
            )
        bound = options.get("max_uncertainty")
        if bound is not None and (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
            or not 0 <= bound <= 1
        ):
            raise InvalidArgument(
                f"max_uncertainty must be a number from 0 to 1, got {bound!r}",
                hint="for example max_uncertainty = 0.3 (judges report uncertainty in 0..1)",
            )
        selection = cls(
            learning_key=_strings("learning_key", options.get("learning_key")),
            since=_moment("since", options.get("since")),
            until=_moment("until", options.get("until")),
            last=last,
            status=_strings("status", options.get("status"), SESSION_STATUSES),
            review_status=_strings("review_status", options.get("review_status"), REVIEW_STATUSES),
            include_quarantined=include,
            metadata=metadata,
            task=_strings("task", options.get("task")),
            max_uncertainty=None if bound is None else float(bound),
        )
        if selection.since and selection.until and selection.since >= selection.until:
            raise InvalidArgument(
                f"since ({selection.since.isoformat()}) is not before until ({selection.until.isoformat()})",
                hint="swap them or widen the window",
            )
        return selection

    def excludes_quarantined(self) -> bool:
        if self.include_quarantined:
            return False
        return self.review_status is None or "quarantined" not in self.review_status

    def describe(self) -> dict[str, Any]:
        """The non-default fields, JSON-ready (for reports and baseline files)."""
        out: dict[str, Any] = {}
        for name in ("learning_key", "status", "review_status", "task"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.last is not None:
            out["last"] = self.last
        if self.include_quarantined:
            out["include_quarantined"] = True
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        if self.max_uncertainty is not None:
            out["max_uncertainty"] = self.max_uncertainty
        return out
