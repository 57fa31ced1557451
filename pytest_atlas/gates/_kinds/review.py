"""The ``review`` gate: no selected session is quarantined and, with ``max_pending_share``, at most
that share is still pending review.

Options: ``max_pending_share`` (0..1, optional). Query: counts per review status and learning key
(quarantined sessions are counted whatever the selection says about them). Verdict: any
quarantined session fails; a pending share above the bound fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pytest_atlas._arguments import check_probability
from pytest_atlas._outcome import Outcome
from pytest_atlas.gates._kind import Context, Evaluation, GateKind
from pytest_atlas.gates._result import KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import tally

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec

__all__ = ["KIND", "ReviewOptions", "fetch_review", "review_rows"]


@dataclass(frozen=True, kw_only=True)
class ReviewOptions:
    max_pending_share: float | None = None

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> ReviewOptions:
        share = options.get("max_pending_share")
        return cls(max_pending_share=None if share is None else check_probability("max_pending_share", share))

    def describe(self) -> dict[str, Any]:
        return {"max_pending_share": self.max_pending_share}


def evaluate(conn: psycopg.Connection[Any], spec: GateSpec, options: ReviewOptions, context: Context) -> Evaluation:
    return Evaluation(review_rows(fetch_review(conn, spec.selection, by_key=spec.by_key), spec))


def fetch_review(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, worst: int = 5
) -> dict[str, dict[str, Any]]:
    """Per key: ``total``, counts per review status, and up to ``worst`` quarantined / pending ids.

    Quarantined sessions are counted whatever the selection says about them.
    """
    seen = Selection(**{**selection.__dict__, "include_quarantined": True})
    return tally(conn, seen, sql.SQL("s.review_status"), by_key=by_key, worst=worst, name="statuses")


def review_rows(counts: Mapping[str, Mapping[str, Any]], spec: GateSpec) -> list[KeyResult]:
    options: ReviewOptions = spec.options
    rows = []
    for key in sorted(counts):
        entry = counts[key]
        total = int(entry["total"])
        statuses: Mapping[str, int] = entry["statuses"]
        ids: Mapping[str, list[int]] = entry["ids"]
        quarantined = statuses.get("quarantined", 0)
        pending = statuses.get("pending", 0)
        share = pending / total if total else 0.0
        bound = options.max_pending_share
        if quarantined:
            outcome, worst = Outcome.FAIL, tuple(ids.get("quarantined", []))
            reason = f"{quarantined} quarantined session(s)"
        elif bound is not None and share > bound:
            outcome, worst = Outcome.FAIL, tuple(ids.get("pending", []))
            reason = f"{pending} of {total} sessions pending review ({share:.1%} > {bound:.1%})"
        else:
            outcome, worst = Outcome.PASS, ()
            reason = f"no quarantined session; {pending} of {total} pending"
        rows.append(
            KeyResult(
                learning_key=key,
                n=total,
                statistic="pending",
                value=share,
                bound=f"{quarantined} quarantined",
                threshold="0 quarantined" + (f", pending <= {bound:.0%}" if bound is not None else ""),
                outcome=outcome,
                reason=reason,
                worst=worst,
                detail={k: v for k, v in statuses.items() if k},
            )
        )
    return rows


KIND = GateKind("review", ReviewOptions, ReviewOptions.build, evaluate)
