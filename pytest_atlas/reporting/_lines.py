"""What the terminal sections of every check kind share: a line and its colour, problems as lines,
the count line whose numbers are the items' outcomes, the section's colour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_atlas._outcome import OUTCOMES
from pytest_atlas._table import escape

__all__ = ["Line", "color", "counts", "problem_lines"]

#: a line of a terminal section and its colour (None, "red", "green", "yellow")
Line = tuple[str, str | None]


def problem_lines(prefix: str, problem: str) -> list[Line]:
    """A problem as terminal lines: the first after ``prefix``, its hint on the next (escaped)."""
    first, *rest = problem.splitlines() or [""]
    return [(escape(prefix + first), "red"), *((escape(line), None) for line in rest)]


def counts(payloads: Sequence[Mapping[str, Any]], noun: str) -> str:
    """``3 gates: 1 passed, 1 failed, 1 inconclusive``: the items' outcomes, every one counted."""
    words = {
        "pass": "passed",
        "fail": "failed",
        "inconclusive": "inconclusive",
        "error": "error",
        "not-run": "not run",
        "deselected": "deselected",
    }
    tally = {outcome: 0 for outcome in OUTCOMES}
    for payload in payloads:
        tally[str(payload.get("outcome", "error"))] = tally.get(str(payload.get("outcome", "error")), 0) + 1
    parts = [
        f"{count} {words.get(outcome, outcome)}" + ("s" if outcome == "error" and count != 1 else "")
        for outcome, count in tally.items()
        if count
    ]
    total = len(payloads)
    return f"{total} {noun}{'' if total == 1 else 's'}: " + (", ".join(parts) or "none")


def color(payloads: Sequence[Mapping[str, Any]]) -> str:
    outcomes = {str(p.get("outcome")) for p in payloads if p.get("blocking")}
    if outcomes & {"fail", "error", "not-run"}:
        return "red"
    # a gate the run left out: not every declared gate passed
    left_out = any(p.get("outcome") == "deselected" for p in payloads)
    return "yellow" if "inconclusive" in outcomes or left_out else "green"
