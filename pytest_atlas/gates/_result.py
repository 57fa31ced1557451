"""Gate results: one row per learning key, and the gate's overall outcome. Plain data, JSON-ready.

Light on purpose (no numpy, no scipy): the plugin's reporter rebuilds results from JSON with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_atlas._outcome import Outcome, worst_outcome

__all__ = ["NEW_KEY", "NO_SESSIONS", "OVERLAP", "UNACCEPTABLE", "GateResult", "KeyResult"]

#: the statistic of a row for a learning key that has no baseline of its own
NEW_KEY = "new key"
#: the statistic of a row for a learning key or task the gate names but read no usable session of
NO_SESSIONS = "no sessions"
#: the statistic of a row whose candidate and baseline share sessions (a window compared with itself)
OVERLAP = "overlap"
#: rows that are no evidence at all: an allow-list entry never accepts them (it accepts regressions
#: the data showed, not a selection that could show none)
UNACCEPTABLE = frozenset({NO_SESSIONS, OVERLAP})


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class KeyResult:
    """One learning key's row of a gate.

    ``statistic`` names what ``value`` is (``mean``, ``diff``, ``alerts``, ``pending``, a mode share);
    ``bound`` is the confidence bound or interval as text, ``threshold`` what it was held to;
    ``worst`` the ids of the sessions to look at first (lowest scores, alerts, quarantined...);
    ``accepted`` the allow-list note when a failure was accepted.
    """

    learning_key: str
    n: int
    statistic: str
    value: float | None
    bound: str
    threshold: str
    outcome: Outcome
    reason: str
    worst: tuple[int, ...] = ()
    missing: int = 0
    p_value: float | None = None
    p_adjusted: float | None = None
    accepted: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective(self) -> Outcome:
        """The outcome that counts: an accepted failure counts as a pass."""
        return Outcome.PASS if self.accepted and self.outcome is not Outcome.ERROR else self.outcome

    def accept(self, note: str) -> KeyResult:
        return replace(self, accepted=note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "learning_key": self.learning_key,
            "n": self.n,
            "missing": self.missing,
            "statistic": self.statistic,
            "value": _number(self.value),
            "bound": self.bound,
            "threshold": self.threshold,
            "outcome": self.outcome.value,
            "accepted": self.accepted,
            "reason": self.reason,
            "p_value": _number(self.p_value),
            "p_adjusted": _number(self.p_adjusted),
            "worst_sessions": list(self.worst),
            "detail": {key: _number(value) for key, value in self.detail.items()},
        }


@dataclass(frozen=True)
class GateResult:
    """The result of one gate. ``outcome`` is the worst row's (accepted failures count as passes);
    a gate whose selection matched no session fails; ``error`` means it could not be evaluated."""

    name: str
    kind: str
    rows: tuple[KeyResult, ...] = ()
    message: str = ""
    selection: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    allow_inconclusive: bool = False
    notes: tuple[str, ...] = ()
    #: the series the gate read, by learning key (saved by --atlas-save-baseline; not in to_dict)
    series: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: what a chart of this gate draws, JSON-ready: ``{"rewards": {key: {"points": [[time, score, id]...],
    #: "band": [low, high] | None, "threshold": float | None, "mean": float | None}}}`` (reward gates)
    chart: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: a fields gate's census of its selection (saved by --atlas-save-baseline; not in to_dict)
    census: Any = field(default=None, repr=False)
    #: accepted regressions of this gate whose date has passed: the gate fails until they are removed
    expired: tuple[str, ...] = ()
    #: why a declared gate did not run (the run stopped before it, or deselected it); None when it ran
    not_run: str | None = None
    #: with ``not_run``: the run's selection left it out (-k, -m, --deselect), rather than stopped
    deselected: bool = False

    @classmethod
    def did_not_run(cls, name: str, kind: str, reason: str, *, deselected: bool = False, **fields: Any) -> GateResult:
        """A declared gate that never ran: ``not-run`` (blocking), or ``deselected``."""
        return cls(name, kind, message=reason, not_run=reason, deselected=deselected, **fields)

    @property
    def outcome(self) -> Outcome:
        if self.not_run is not None:
            return Outcome.DESELECTED if self.deselected else Outcome.NOT_RUN
        if self.error is not None:
            return Outcome.ERROR
        if not self.rows or self.expired:
            return Outcome.FAIL
        return worst_outcome([row.effective for row in self.rows])

    @property
    def blocking(self) -> bool:
        """True when this result should stop a release: fail, error, or inconclusive unless allowed."""
        outcome = self.outcome
        return outcome in (Outcome.FAIL, Outcome.ERROR, Outcome.NOT_RUN) or (
            outcome is Outcome.INCONCLUSIVE and not self.allow_inconclusive
        )

    @property
    def summary(self) -> str:
        """One line: the outcome and why."""
        if self.not_run is not None:
            return f"{'deselected' if self.deselected else 'not run'}: {self.not_run}"
        if self.error is not None:
            return f"error: {(self.error.splitlines() or [''])[0]}"
        if not self.rows:
            return f"fail: {self.message or 'matched no sessions'}"
        if self.expired:
            return f"fail: {len(self.expired)} accepted regression(s) expired"
        counts: dict[str, int] = {}
        for row in self.rows:
            label = (
                f"{row.outcome.value} (accepted)"
                if row.accepted and row.outcome is not Outcome.PASS
                else row.outcome.value
            )
            counts[label] = counts.get(label, 0) + 1
        parts = ", ".join(f"{count} {label}" for label, count in sorted(counts.items()))
        noun = ("path" if self.kind == "fields" else "key") + ("" if len(self.rows) == 1 else "s")
        return f"{self.outcome.value}: {len(self.rows)} {noun} ({parts})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "gate",
            "name": self.name,
            "gate_kind": self.kind,
            "outcome": self.outcome.value,
            "blocking": self.blocking,
            "summary": self.summary,
            "message": self.message,
            "error": self.error,
            "allow_inconclusive": self.allow_inconclusive,
            "notes": list(self.notes),
            "expired": list(self.expired),
            "not_run": self.not_run,
            "deselected": self.deselected,
            "selection": dict(self.selection),
            "rows": [row.to_dict() for row in self.rows],
            "chart": dict(self.chart),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Rebuild a result from :meth:`to_dict` output (how results travel from xdist workers)."""
        rows = tuple(
            KeyResult(
                learning_key=row["learning_key"],
                n=row["n"],
                statistic=row["statistic"],
                value=row["value"],
                bound=row["bound"],
                threshold=row["threshold"],
                outcome=Outcome(row["outcome"]),
                reason=row["reason"],
                worst=tuple(row["worst_sessions"]),
                missing=row["missing"],
                p_value=row["p_value"],
                p_adjusted=row["p_adjusted"],
                accepted=row["accepted"],
                detail=dict(row.get("detail", {})),
            )
            for row in data.get("rows", [])
        )
        return cls(
            name=data["name"],
            kind=data["gate_kind"],
            rows=rows,
            message=data.get("message", ""),
            selection=dict(data.get("selection", {})),
            error=data.get("error"),
            allow_inconclusive=bool(data.get("allow_inconclusive", False)),
            notes=tuple(data.get("notes", ())),
            expired=tuple(data.get("expired", ())),
            not_run=data.get("not_run"),
            deselected=bool(data.get("deselected", False)),
            chart=dict(data.get("chart") or {}),
        )
