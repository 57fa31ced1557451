"""Which sessions a gate looks at: learning key, time window, last N, status, review status, metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_atlas._arguments import (
    check_bool,
    check_moment,
    check_positive_int,
    check_probability,
    check_strings,
    unknown_names,
)
from pytest_atlas.domain import REVIEW_STATUSES, SESSION_STATUSES
from pytest_atlas.errors import InvalidArgument

__all__ = ["Selection"]


def _strings(name: str, value: object, choices: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """One string or a non-empty list of non-empty strings; with ``choices``, each one of them."""
    if value is None:
        return None
    return check_strings(name, value, choices, what="a value Atlas writes")


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
    return None if value is None else check_moment(name, value)


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
            raise unknown_names("selection option", unknown, cls.__dataclass_fields__)
        last = options.get("last")
        if last is not None:
            check_positive_int("last", last, high=2**62, example=200)
        metadata = _json_object("metadata", options.get("metadata"))
        include = check_bool("include_quarantined", options.get("include_quarantined", False))
        bound = options.get("max_uncertainty")
        if bound is not None:
            try:
                check_probability("max_uncertainty", bound)
            except InvalidArgument as exc:
                raise InvalidArgument(
                    exc.problem, hint="for example max_uncertainty = 0.3 (judges report uncertainty in 0..1)"
                ) from None
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

    def filters(self) -> tuple[Any, ...]:
        """What this selection selects, in a form two selections compare by: lists as sets (their
        order and repeats select nothing else), an empty ``metadata`` as none (``@> {}`` holds for
        every session), the quarantine rule as the one the WHERE clause applies."""
        sets = tuple(
            None if getattr(self, name) is None else frozenset(getattr(self, name))
            for name in ("learning_key", "status", "review_status", "task")
        )
        metadata = json.dumps(dict(self.metadata), sort_keys=True) if self.metadata else None
        return (*sets, self.since, self.until, self.last, self.excludes_quarantined(), metadata, self.max_uncertainty)

    def selects_every_session(self) -> bool:
        """True when no filter picks which sessions this selection reads: no learning key, time,
        ``last``, status, review status, metadata or task (``include_quarantined`` and
        ``max_uncertainty`` pick no run)."""
        narrowing = ("learning_key", "since", "until", "last", "status", "review_status", "task")
        return all(getattr(self, name) is None for name in narrowing) and not self.metadata

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
