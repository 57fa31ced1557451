"""Reward scenarios: a learning key's reward history over time, with known drift behaviour.

Each scenario draws a sequence of (score, uncertainty) pairs from a seeded generator, one per
session, oldest first. Every session's drift document is computed the way Atlas computes it when
the session is persisted: against the last ``window`` sessions of the same learning key ordered
by ``created_at``, *including the session itself*. Where the scenario promises something about an
alert ("no alert before the change", "an alert at the change"), a draw that breaks the promise is
replaced by another draw from the same generator, so the promise holds for every seed and the
history is still repeatable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pytest_atlas._arguments import call_count, call_error, call_interval, call_str, check_integer
from pytest_atlas.domain._drift import drift_document, reward_baseline
from pytest_atlas.domain._graph import SessionGraph
from pytest_atlas.domain._options import GraphOptions
from pytest_atlas.domain._rewards import stats_from_samples
from pytest_atlas.domain._sessions import build_graph
from pytest_atlas.domain._source import RandomSource
from pytest_atlas.errors import AtlasError

__all__ = ["SCENARIOS", "RewardHistory", "reward_history"]

#: the scenario names, in the order the docs describe them
SCENARIOS: tuple[str, ...] = (
    "stable",
    "step_change",
    "gradual_decline",
    "higher_noise",
    "outliers",
    "growing_uncertainty",
)

Doc = dict[str, Any]
_MAX_REDRAWS = 500
#: the size of the change when ``shift`` is not given
_DEFAULT_SHIFT: dict[str, float] = {
    "stable": 0.0,
    "step_change": 0.3,
    "gradual_decline": 0.15,
    "higher_noise": 0.3,
    "outliers": 0.4,
    "growing_uncertainty": 0.2,
}


@dataclass(frozen=True)
class RewardHistory:
    """A learning key's sessions under one scenario, oldest first, and what Atlas's drift check says.

    ``graphs[i]`` is a complete succeeded :class:`SessionGraph` whose ``reward_stats`` has score
    ``scores[i]`` and uncertainty ``uncertainties[i]``; its ``metadata.drift`` is the assessment
    Atlas makes when that session is persisted after ``graphs[:i]`` (``alerts[i]``, ``reasons[i]``).
    ``change_at`` is the index of the first session after the change (``None`` for ``stable`` and
    ``outliers``); ``outlier_at`` lists the outlier sessions.
    """

    scenario: str
    seed: int
    learning_key: str
    graphs: tuple[SessionGraph, ...]
    scores: tuple[float, ...]
    uncertainties: tuple[float, ...]
    alerts: tuple[bool, ...]
    reasons: tuple[str | None, ...]
    change_at: int | None
    outlier_at: tuple[int, ...]
    window: int
    z_threshold: float
    min_baseline: int

    @property
    def alert_indices(self) -> tuple[int, ...]:
        """Indices of the sessions Atlas flags."""
        return tuple(i for i, alert in enumerate(self.alerts) if alert)

    @property
    def before(self) -> tuple[float, ...]:
        """Scores before the change (all scores when there is none)."""
        return self.scores if self.change_at is None else self.scores[: self.change_at]

    @property
    def after(self) -> tuple[float, ...]:
        """Scores from the change on (empty when there is none)."""
        return () if self.change_at is None else self.scores[self.change_at :]

    def __repr__(self) -> str:
        return (
            f"RewardHistory(scenario={self.scenario!r}, seed={self.seed}, sessions={len(self.graphs)}, "
            f"change_at={self.change_at}, outlier_at={self.outlier_at}, alerts at {list(self.alert_indices)})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this (the summary, not 30 kB of JSON)."""
        printer.text(repr(self))


# Expectations a draw must meet: "quiet" (no alert), "alert" (any), "alert_score", "alert_uncertainty",
# "no_score_alert" (an uncertainty alert is fine), "any".
def _meets(expectation: str, metrics: Doc) -> bool:
    alert = bool(metrics["alert"])
    reason = metrics["reason"] or ""
    return {
        "quiet": not alert,
        "alert": alert,
        "alert_score": alert and reason.startswith("score"),
        "alert_uncertainty": alert and reason.startswith("uncertainty"),
        "no_score_alert": not (alert and reason.startswith("score")),
        "any": True,
    }[expectation]


@dataclass(frozen=True)
class _Plan:
    expect: list[str]
    propose: Callable[[int, random.Random], tuple[float, float]]
    change_at: int | None
    outlier_at: tuple[int, ...]


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _plan(
    scenario: str,
    n: int,
    rng: random.Random,
    *,
    baseline: float,
    shift: float,
    change_at: int | None,
    min_baseline: int,
) -> _Plan:
    noise = 0.02
    unc0, unc_noise = 0.15, 0.01
    change = change_at if change_at is not None else max(min_baseline + 1, (n * 2) // 3)
    direction = -1.0 if baseline - shift >= 0.0 else 1.0

    def steady(i: int, r: random.Random) -> tuple[float, float]:
        return _clip(baseline + r.uniform(-noise, noise)), _clip(unc0 + r.uniform(-unc_noise, unc_noise))

    if scenario == "stable":
        return _Plan(["quiet"] * n, steady, None, ())
    if scenario == "step_change":

        def stepped(i: int, r: random.Random) -> tuple[float, float]:
            score, unc = steady(i, r)
            return (_clip(score + direction * shift) if i >= change else score), unc

        expect = ["quiet"] * change + ["alert_score"] + ["any"] * (n - change - 1)
        return _Plan(expect, stepped, change, ())
    if scenario == "gradual_decline":
        span = max(n - change, 1)
        wide = max(noise, 0.7 * shift)  # enough spread that no single session stands out

        def declining(i: int, r: random.Random) -> tuple[float, float]:
            done = min(max(i - change + 1, 0), span) / span
            score = _clip(baseline + r.uniform(-wide, wide) + direction * shift * done)
            return score, _clip(unc0 + r.uniform(-unc_noise, unc_noise))

        return _Plan(["quiet"] * n, declining, change, ())
    if scenario == "higher_noise":

        def noisy(i: int, r: random.Random) -> tuple[float, float]:
            score, unc = steady(i, r)
            if i >= change:
                score = _clip(baseline + r.gauss(0.0, max(shift, 0.05) / 2))
            return score, unc

        first = min(change + rng.randint(0, 3), n - 1)
        expect = ["quiet"] * change + ["any"] * (n - change)
        expect[first] = "alert_score"
        return _Plan(expect, noisy, change, ())
    if scenario == "outliers":
        count = max(1, min(3, (n - min_baseline - 1) // 10))
        spots = sorted(rng.sample(range(min_baseline + 5, n), count)) if n > min_baseline + 5 else [n - 1]

        def with_outliers(i: int, r: random.Random) -> tuple[float, float]:
            score, unc = steady(i, r)
            if i in spots:
                score = _clip(score + direction * max(shift, 0.25) * r.uniform(1.0, 1.5))
            return score, unc

        expect = ["alert_score" if i in spots else "quiet" for i in range(n)]
        return _Plan(expect, with_outliers, None, tuple(spots))
    # growing_uncertainty: scores stay put, uncertainty climbs after the change
    span = max(n - change, 1)

    def growing(i: int, r: random.Random) -> tuple[float, float]:
        score, unc = steady(i, r)
        if i >= change:
            done = (i - change + 1) / span
            unc = _clip(unc0 + max(shift, 0.1) * 2 * done**0.5 + r.uniform(-unc_noise, unc_noise))
        return score, unc

    expect = ["quiet"] * change + ["no_score_alert"] * (n - change)
    expect[change] = "alert_uncertainty"
    return _Plan(expect, growing, change, ())


def _validate(
    *,
    scenario: Any,
    sessions: Any,
    seed: Any,
    learning_key: Any,
    start: Any,
    change_at: Any,
    baseline: Any,
    shift: Any,
    window: Any,
    z_threshold: Any,
    min_baseline: Any,
) -> None:
    function = "reward_history"
    if scenario not in SCENARIOS:
        raise call_error(function, "scenario", scenario, "one of " + ", ".join(repr(s) for s in SCENARIOS))
    call_count(function, "sessions", sessions, lo=2, hi=2000)
    if not isinstance(sessions, int):
        raise call_error(function, "sessions", sessions, "an int (the number of sessions)")
    check_integer("seed", seed, expected="an int", function=function)
    call_str(function, "learning_key", learning_key)
    if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
        raise call_error(
            function, "start", start, "a timezone-aware datetime", hint="use datetime(..., tzinfo=timezone.utc)"
        )
    call_interval(function, "baseline", baseline, lo=0.0, hi=1.0)
    call_interval(function, "shift", shift, lo=0.0, hi=1.0)  # None: the scenario's default
    call_count(function, "window", window, lo=1, hi=10_000)
    call_count(function, "min_baseline", min_baseline, lo=0, hi=10_000)
    call_interval(function, "z_threshold", z_threshold, lo=0.5, hi=100.0)
    if not isinstance(window, int) or not isinstance(min_baseline, int):
        raise call_error(function, "window", window, "ints for window and min_baseline")
    if scenario != "stable" and sessions < min_baseline + 3:
        raise call_error(
            function,
            "sessions",
            sessions,
            f"at least min_baseline + 3 = {min_baseline + 3} for {scenario!r}",
            hint="a change can only be detected after the baseline has min_baseline sessions",
        )
    if change_at is not None:
        if isinstance(change_at, bool) or not isinstance(change_at, int) or not min_baseline < change_at < sessions:
            raise call_error(
                function,
                "change_at",
                change_at,
                f"an int with {min_baseline} < change_at < {sessions}",
                hint="the change must come after a full baseline and before the last session",
            )
        if scenario in ("stable", "outliers"):
            raise call_error(function, "change_at", change_at, f"None for {scenario!r} (it has no change point)")


def reward_history(
    scenario: str,
    *,
    sessions: int = 60,
    seed: int = 0,
    learning_key: str | None = None,
    start: datetime | None = None,
    change_at: int | None = None,
    baseline: float = 0.8,
    shift: float | None = None,
    window: int = 50,
    z_threshold: float = 3.0,
    min_baseline: int = 5,
) -> RewardHistory:
    """Build a learning key's reward history under ``scenario``; the same arguments give the same history.

    Scenarios and what Atlas's drift check (``window``, ``z_threshold``, ``min_baseline``, Atlas's
    defaults 50, 3.0 and 5) does on them:

    * ``"stable"``: scores ``baseline`` ± 0.02, uncertainty 0.15 ± 0.01; no session alerts.
    * ``"step_change"``: from ``change_at`` on, scores drop by ``shift`` (default 0.3; they rise
      instead if they cannot drop); no alert before, a score alert at ``change_at``; the alerts go
      on until the new level fills about half the window (the MAD z-score is robust).
    * ``"gradual_decline"``: from ``change_at`` on, scores decline linearly by ``shift`` (default
      0.15) over the remaining sessions, with noise ± 0.7·``shift``; Atlas's per-session check
      stays silent throughout, although the level moves by ``shift``: what a gate comparing
      windows must catch.
    * ``"higher_noise"``: same mean, noise with standard deviation ``shift / 2`` (default 0.15)
      from ``change_at`` on; no alert before, a score alert within four sessions of the change.
    * ``"outliers"``: a stable history with one to three sessions at least ``shift`` (default
      0.4) away from the baseline (``outlier_at``); alerts at exactly those sessions.
    * ``"growing_uncertainty"``: scores stable, uncertainty climbing by up to ``2 * shift``
      (default 0.2) after ``change_at``; no alert before, never a score alert, an uncertainty
      alert at ``change_at``.

    ``change_at`` defaults to two thirds of the way; ``start`` (default 2025-03-01 UTC) is the
    first ``created_at``, sessions an hour apart. Every graph is a complete succeeded session for
    ``learning_key`` (default: a digest derived from the seed).
    """
    _validate(
        scenario=scenario,
        sessions=sessions,
        seed=seed,
        learning_key=learning_key,
        start=start,
        change_at=change_at,
        baseline=baseline,
        shift=shift,
        window=window,
        z_threshold=z_threshold,
        min_baseline=min_baseline,
    )
    rng = random.Random(f"{scenario}:{seed}")
    key = learning_key or random.Random(f"key:{seed}").getrandbits(256).to_bytes(32, "big").hex()
    first = start or datetime(2025, 3, 1, tzinfo=timezone.utc)
    size = _DEFAULT_SHIFT[scenario] if shift is None else float(shift)
    plan = _plan(
        scenario, sessions, rng, baseline=float(baseline), shift=size, change_at=change_at, min_baseline=min_baseline
    )
    threshold = float(z_threshold)
    history: list[Doc] = []  # reward_stats, oldest first
    scores: list[float] = []
    uncertainties: list[float] = []
    documents: list[Doc] = []
    for index in range(sessions):
        moment = first + timedelta(hours=index, seconds=rng.randint(0, 900))
        for _ in range(_MAX_REDRAWS):
            score, uncertainty = plan.propose(index, rng)
            stats = stats_from_samples([(score, uncertainty)], moment.isoformat())
            rows = [stats, *reversed(history)][:window]
            document = drift_document(
                stats,
                reward_baseline(rows, window),
                threshold=threshold,
                window=window,
                min_baseline=min_baseline,
                learning_key=key,
            )
            if _meets(plan.expect[index], document):
                break
        else:  # pragma: no cover - the noise levels above leave a wide margin
            raise AtlasError(
                f"reward_history({scenario!r}, seed={seed}) could not meet its promise at session {index}",
                hint="use the default window/z_threshold/min_baseline or a larger shift",
            )
        history.append(stats)
        scores.append(stats["score"])
        uncertainties.append(stats["uncertainty_mean"])
        documents.append(document)

    filler = RandomSource(random.Random(f"graphs:{scenario}:{seed}"))
    graphs = []
    for stats, document in zip(history, documents, strict=True):
        alert = bool(document["alert"])
        options = GraphOptions(
            learning_key=key,
            status="succeeded",
            legacy=False,
            steps=(1, 1),
            # persisted one second into the run; the stats timestamp follows the evaluation
            created_at=datetime.fromisoformat(stats["timestamp"]) - timedelta(seconds=1),
            review_status="pending" if alert else "approved",
            exact_reward=(stats["score"], stats["uncertainty_mean"]),
            drift=document,
        )
        graph = build_graph(filler, options)
        graph.session["reward_stats"] = stats  # the very document the assessment used
        graph.session["metadata"]["reward_stats"] = stats
        graphs.append(graph)
    return RewardHistory(
        scenario=scenario,
        seed=seed,
        learning_key=key,
        graphs=tuple(graphs),
        scores=tuple(scores),
        uncertainties=tuple(uncertainties),
        alerts=tuple(bool(d["alert"]) for d in documents),
        reasons=tuple(d["reason"] for d in documents),
        change_at=plan.change_at,
        outlier_at=plan.outlier_at,
        window=window,
        z_threshold=threshold,
        min_baseline=min_baseline,
    )
