"""The allow-list of accepted regressions (``[[tool.pytest-atlas.accept]]``): a failure of one gate
(for one learning key, or all) accepted until a date, with a reason. Applying it is pure: the
plugin passes today's date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from pytest_atlas._outcome import Outcome
from pytest_atlas.gates._result import UNACCEPTABLE, GateResult

__all__ = ["EXPIRED_HINT", "Acceptance", "accept"]

#: what the text of a gate with an expired acceptance says to do
EXPIRED_HINT = (
    "  how to fix: fix the regression, or extend 'until' in [[tool.pytest-atlas.accept]] "
    "with a new reason; remove the entry once the gate passes"
)


@dataclass(frozen=True)
class Acceptance:
    """An accepted failure of ``gate`` (for one learning key, or all), valid through ``until``."""

    gate: str
    until: date
    reason: str
    learning_key: str | None = None

    def expired(self, today: date) -> bool:
        return today > self.until

    def matches(self, gate: str, learning_key: str) -> bool:
        return self.gate == gate and (self.learning_key is None or self.learning_key == learning_key)

    def note(self) -> str:
        return f"until {self.until.isoformat()}: {self.reason}"

    def describe_expired(self) -> str:
        key = f", learning key {self.learning_key}" if self.learning_key else ""
        return f"accepted regression expired on {self.until.isoformat()}: gate {self.gate}{key} ({self.reason})"


def accept(result: GateResult, acceptances: Sequence[Acceptance], today: date) -> GateResult:
    """``result`` with the failed rows an unexpired acceptance covers marked accepted, and every
    expired acceptance of the gate listed (the gate fails until the entry is removed or extended).
    Rows that are no evidence (a named key or task the gate read nothing of, a baseline sharing
    sessions with the candidate) are never accepted."""
    entries = [a for a in acceptances if a.gate == result.name]
    if not entries:
        return result
    rows = []
    for row in result.rows:
        match = next((a for a in entries if a.matches(result.name, row.learning_key) and not a.expired(today)), None)
        acceptable = row.outcome is Outcome.FAIL and row.statistic not in UNACCEPTABLE
        rows.append(row.accept(match.note()) if match and acceptable else row)
    expired = tuple(a.describe_expired() for a in entries if a.expired(today))
    return replace(result, rows=tuple(rows), expired=expired)
