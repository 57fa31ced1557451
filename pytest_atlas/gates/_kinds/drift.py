"""The ``drift`` gate: does Atlas's own drift detector alert on the newest sessions?

Options: ``window``, ``z_threshold``, ``min_baseline`` (Atlas's settings: 50, 3.0, 5) and
``stored`` (also fail on alerts Atlas stored in ``metadata.drift`` / ``metadata.drift_alert``).
Query: the newest selected sessions per key with the baseline rows Atlas would have read for each.
Verdict: Atlas's assessment recomputed exactly; a key fails on any alert and is inconclusive when
no session had enough baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pytest_atlas._arguments import check_bool, check_integer, check_number
from pytest_atlas._outcome import Outcome
from pytest_atlas.domain import assess_drift, reward_baseline
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._kind import Context, Evaluation, GateKind
from pytest_atlas.gates._result import KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import ALL_KEYS, filters, run, snapshot

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec

__all__ = [
    "KIND",
    "DriftInput",
    "DriftOptions",
    "drift_rows",
    "fetch_drift_inputs",
    "fetch_without_stats",
    "read_drift",
]


@dataclass(frozen=True, kw_only=True)
class DriftOptions:
    window: int = 50
    z_threshold: float = 3.0
    min_baseline: int = 5
    stored: bool = True

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> DriftOptions:
        values: dict[str, Any] = {}
        if "window" in options:
            values["window"] = check_integer("window", options["window"], low=1, high=100_000)
        if "z_threshold" in options:
            values["z_threshold"] = check_number(
                "z_threshold", options["z_threshold"], low=0.0, low_open=True, example=3
            )
        if "min_baseline" in options:
            values["min_baseline"] = check_integer("min_baseline", options["min_baseline"], low=0, example=5)
        window = values.get("window", 50)
        if values.get("min_baseline", 5) > window:
            raise InvalidArgument(
                f"min_baseline ({values.get('min_baseline', 5)}) is larger than window ({window}): "
                "every session would have an insufficient baseline",
                hint="keep min_baseline at most window (Atlas uses 5 and 50)",
            )
        if "stored" in options:
            values["stored"] = check_bool("stored", options["stored"])
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "z_threshold": self.z_threshold,
            "min_baseline": self.min_baseline,
            "stored": self.stored,
        }


def evaluate(conn: psycopg.Connection[Any], spec: GateSpec, options: DriftOptions, context: Context) -> Evaluation:
    inputs, without = read_drift(conn, spec.selection, window=options.window)
    return Evaluation(drift_rows(inputs, spec, without_stats=without))


def read_drift(
    conn: psycopg.Connection[Any], selection: Selection, *, window: int = 50, last: int = 50
) -> tuple[list[DriftInput], dict[str, int]]:
    """What :func:`drift_rows` reads, from one snapshot: :func:`fetch_drift_inputs` and
    :func:`fetch_without_stats`."""
    with snapshot(conn):
        return (
            fetch_drift_inputs(conn, selection, window=window, last=last),
            fetch_without_stats(conn, selection, last=last),
        )


@dataclass(frozen=True)
class DriftInput:
    """One assessed session: its stats, what Atlas stored, and its baseline rows, newest first."""

    session_id: int
    learning_key: str
    reward_stats: Any
    stored_drift: Any
    stored_alert: Any
    history: tuple[Any, ...]


def fetch_drift_inputs(
    conn: psycopg.Connection[Any], selection: Selection, *, window: int = 50, last: int = 50
) -> list[DriftInput]:
    """The newest ``last`` selected sessions per key that have reward_stats, each with the rows Atlas's
    baseline would have held when it was assessed: the newest ``window`` sessions of the same
    learning key (of every key when it has none) with reward_stats, created no later than it."""
    limited = Selection(**{**selection.__dict__, "last": selection.last or last})
    params: dict[str, Any] = {"window": max(window, 1), "last": limited.last}
    where = filters(limited, params)
    query = sql.SQL(
        "WITH assessed AS (SELECT * FROM (SELECT s.id, s.created_at, s.reward_stats, "
        "NULLIF(s.metadata ->> 'learning_key', '') AS lk, s.metadata -> 'drift' AS drift, "
        "s.metadata -> 'drift_alert' AS drift_alert, row_number() OVER (PARTITION BY "
        "s.metadata ->> 'learning_key' ORDER BY s.created_at DESC, s.id DESC) AS recency "
        "FROM sessions AS s WHERE s.reward_stats IS NOT NULL AND {where}) AS r "
        "WHERE recency <= %(last)s) "
        "SELECT a.id, COALESCE(a.lk, ''), a.reward_stats, a.drift, a.drift_alert, "
        "ARRAY(SELECT h.reward_stats FROM sessions AS h WHERE h.reward_stats IS NOT NULL "
        "AND (a.lk IS NULL OR h.metadata ->> 'learning_key' = a.lk) "
        "AND (h.created_at, h.id) <= (a.created_at, a.id) "
        "ORDER BY h.created_at DESC, h.id DESC LIMIT %(window)s) "
        "FROM assessed AS a ORDER BY a.created_at, a.id"
    ).format(where=where)
    return [DriftInput(int(row[0]), row[1], row[2], row[3], row[4], tuple(row[5])) for row in run(conn, query, params)]


def fetch_without_stats(conn: psycopg.Connection[Any], selection: Selection, *, last: int = 50) -> dict[str, int]:
    """By learning key, the selected sessions without reward_stats in the window
    :func:`fetch_drift_inputs` reads: every one, or, for a key that has more than ``last`` sessions
    with reward_stats, those newer than the oldest one it reads. Atlas never assesses them; a
    drift row counts them as missing."""
    limit = selection.last or last
    params: dict[str, Any] = {"last": limit}
    where = filters(selection, params)
    query = sql.SQL(
        "WITH chosen AS (SELECT s.id, s.created_at, COALESCE(NULLIF(s.metadata ->> 'learning_key', ''), '') AS lk, "
        "s.reward_stats IS NOT NULL AS has_stats FROM sessions AS s WHERE {where}), "
        "cut AS (SELECT lk, created_at, id FROM (SELECT lk, created_at, id, row_number() OVER (PARTITION BY lk "
        "ORDER BY created_at DESC, id DESC) AS recency FROM chosen WHERE has_stats) AS r WHERE recency = %(last)s) "
        "SELECT c.lk, count(*) FROM chosen AS c LEFT JOIN cut ON cut.lk = c.lk WHERE NOT c.has_stats "
        "AND (cut.lk IS NULL OR (c.created_at, c.id) > (cut.created_at, cut.id)) GROUP BY c.lk"
    ).format(where=where)
    return {str(key): int(count) for key, count in run(conn, query, params)}


def _other_scores(history: Sequence[Any], window: int) -> int:
    """How many sessions of a baseline besides the assessed one (its first entry, newest first)
    give Atlas's baseline a score: what the assessed session's score is compared with."""
    others = [entry for entry in history if entry is not None][1 : max(window, 1)]
    return len(reward_baseline(others, window=max(len(others), 1))["scores"]) if others else 0


def _stored_alert(item: DriftInput) -> bool:
    if item.stored_alert is True:
        return True
    return isinstance(item.stored_drift, Mapping) and (
        item.stored_drift.get("alert") is True or item.stored_drift.get("drift_alert") is True
    )


def _has_usable_score(stats: Any) -> bool:
    """Whether Atlas's drift check reads a finite score from these reward_stats (``score``, else
    ``score_mean``, through ``float()``)."""
    if not isinstance(stats, Mapping):
        return False
    for name in ("score", "score_mean"):
        try:
            value = None if stats.get(name) is None else float(stats[name])
        except (TypeError, ValueError, OverflowError):
            value = None
        if value is not None:
            return math.isfinite(value)
    return False


def _non_finite(history: Sequence[Any], window: int) -> bool:
    """Whether a value Atlas's baseline summarises is not finite (a "NaN" string ``float()`` reads):
    its standard deviation then raises (statistics.pstdev, Python 3.11), in Atlas as in our copy."""
    for entry in [entry for entry in history if entry is not None][: max(window, 1)]:
        if not isinstance(entry, Mapping):
            continue
        score = entry["score_mean"] if "score_mean" in entry else entry.get("score")
        least = entry["best_uncertainty"] if "best_uncertainty" in entry else entry.get("min_uncertainty")
        for value in (score, entry.get("uncertainty_mean"), least):
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                continue
            if not math.isfinite(number):
                return True
    return False


def drift_rows(
    inputs: Sequence[DriftInput], spec: GateSpec, *, without_stats: Mapping[str, int] | None = None
) -> list[KeyResult]:
    """Recompute Atlas's drift assessment of every assessed session and read the alerts Atlas
    stored; a key fails on any alert and when none of its sessions has a usable score (those
    ``without_stats``, selected sessions without reward_stats by learning key, included), is
    inconclusive when no session had enough baseline or none was compared with another score.
    A row's ``n`` is its sessions with a usable score, ``missing`` the others."""
    options: DriftOptions = spec.options
    by_key: dict[str, list[DriftInput]] = {}
    for item in inputs:
        by_key.setdefault(item.learning_key if spec.by_key else ALL_KEYS, []).append(item)
    unassessed: dict[str, int] = {}
    for lk, count in (without_stats or {}).items():
        if count:
            key = lk if spec.by_key else ALL_KEYS
            unassessed[key] = unassessed.get(key, 0) + count
            by_key.setdefault(key, [])
    rows = []
    for key in sorted(by_key):
        items = by_key[key]
        no_stats = unassessed.get(key, 0)
        recomputed: list[int] = []
        stored: list[int] = []
        insufficient = 0
        #: sessions compared with nothing: Atlas's insufficient_baseline, or a baseline of the session alone
        thin = 0
        #: sessions Atlas assesses: reward_stats that are a JSON object (a JSON null, a string, an
        #: array or a number is never assessed, so it is neither compared nor insufficient)
        assessed = 0
        usable = 0
        reasons: dict[str, int] = {}
        largest = 0.0
        for item in items:
            scored = _has_usable_score(item.reward_stats)
            usable += scored
            if _non_finite(item.history, options.window):  # Atlas's own baseline raises on it: not recomputed
                assessed += 1
                thin += 1
                continue
            baseline = reward_baseline(list(item.history), window=options.window)
            assessment = assess_drift(
                item.reward_stats,
                baseline,
                threshold=options.z_threshold,
                min_baseline=options.min_baseline,
                window=options.window,
                learning_key=item.learning_key or None,
            )
            if assessment is None:
                continue
            assessed += 1
            if assessment["reason"] == "insufficient_baseline":
                insufficient += 1
            # compared with nothing: no score of its own, or no other score in its baseline (rows
            # without one count in Atlas's sample_count, so it is not insufficient)
            if (
                assessment["reason"] == "insufficient_baseline"
                or not scored
                or _other_scores(item.history, options.window) < 1
            ):
                thin += 1
            if assessment["alert"]:
                recomputed.append(item.session_id)
                reasons[assessment["reason"]] = reasons.get(assessment["reason"], 0) + 1
            for metric in ("score_z", "score_mad_z"):
                value = assessment[metric]
                if value is not None and math.isfinite(value):
                    largest = max(largest, abs(value))
            if options.stored and _stored_alert(item):
                stored.append(item.session_id)
        alerts = sorted(set(recomputed) | set(stored))
        missing = len(items) - usable + no_stats
        left_out = f"; {missing} session(s) without a usable score left out" if missing else ""
        if alerts:
            parts = []
            if recomputed:
                parts.append(
                    f"{len(recomputed)} recomputed alert(s) ("
                    + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                    + ")"
                )
            if stored:
                parts.append(f"{len(stored)} alert(s) stored by Atlas in metadata.drift")
            outcome, reason = Outcome.FAIL, "drift: " + "; ".join(parts) + left_out
        elif not usable:
            outcome = Outcome.FAIL
            reason = f"no usable scores: none of the {len(items) + no_stats} session(s) has " + (
                "a score Atlas's drift check can compare (null, missing, or not a finite number)"
                if items
                else "reward_stats: Atlas's drift check assesses none of them"
            )
            if items and no_stats:
                reason += f"; {no_stats} of them have no reward_stats"
        elif insufficient == assessed:
            outcome = Outcome.INCONCLUSIVE
            reason = (
                f"insufficient_baseline: every assessed session had fewer than {options.min_baseline} baseline sessions"
                + left_out
            )
        elif thin == assessed:
            outcome = Outcome.INCONCLUSIVE
            reason = (
                "no assessed session had another scored session in its baseline "
                f"(min_baseline = {options.min_baseline}): nothing was compared{left_out}"
            )
        else:
            outcome = Outcome.PASS
            reason = (
                f"no drift alert in {usable} session(s)"
                + (f" ({insufficient} with insufficient_baseline)" if insufficient else "")
                + left_out
            )
        rows.append(
            KeyResult(
                learning_key=key,
                n=usable,
                statistic="alerts",
                value=float(len(alerts)),
                bound=f"max |z| {largest:.2f}",
                threshold=f"|z| < {options.z_threshold:g}",
                outcome=outcome,
                reason=reason,
                worst=tuple(alerts[:5]),
                missing=missing,
                detail={
                    "recomputed_alerts": len(recomputed),
                    "stored_alerts": len(stored),
                    "insufficient_baseline": insufficient,
                    "max_abs_z": largest,
                    "window": options.window,
                },
            )
        )
    return rows


KIND = GateKind("drift", DriftOptions, DriftOptions.build, evaluate)
