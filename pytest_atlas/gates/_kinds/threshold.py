"""The ``threshold`` gate: is each learning key's mean reward at least ``threshold``, beyond noise?

Options: ``threshold`` (required, 0..1) and the statistical ones (``alpha``, ``power``, ``method``,
``seed``, ``n_resamples``). Query: the reward series of the selected sessions. Verdict: a one-sided
test per key against the threshold, Holm-corrected across keys; a key with sessions but no usable
score fails (no evidence is never a pass, nor inconclusive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_atlas import stats
from pytest_atlas._arguments import check_number
from pytest_atlas._outcome import Outcome
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._kind import Context, Evaluation, GateKind, Statistics, interval, missing_note
from pytest_atlas.gates._result import KeyResult
from pytest_atlas.gates._series import CHART_POINTS, Series, reward_chart, series_with_timeline

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec
    from pytest_atlas.stats import ThresholdCheck

__all__ = ["KIND", "ThresholdOptions", "threshold_rows"]


@dataclass(frozen=True, kw_only=True)
class ThresholdOptions(Statistics):
    threshold: float

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> ThresholdOptions:
        if "threshold" not in options:
            raise InvalidArgument("a threshold gate needs threshold", hint="for example threshold = 0.7")
        # rewards are scores from 0 to 1: a threshold outside that range fails (or passes) every key
        threshold = check_number("threshold", options["threshold"], low=0.0, high=1.0, example=0.7)
        return cls(threshold=threshold, **Statistics.check(options))

    def describe(self) -> dict[str, Any]:
        return {**self.statistics(), "threshold": self.threshold}


def evaluate(conn: psycopg.Connection[Any], spec: GateSpec, options: ThresholdOptions, context: Context) -> Evaluation:
    # no pairing: no per-task means; a chart's points from the same scan when a report draws them
    series, timeline = series_with_timeline(
        conn, spec.selection, by_key=spec.by_key, tasks=False, points=CHART_POINTS if context.charts else 0
    )
    rows = threshold_rows(series, spec)
    chart = (
        reward_chart(conn, spec.selection, series, by_key=spec.by_key, threshold=options.threshold, timeline=timeline)
        if rows and context.charts
        else {}
    )
    return Evaluation(rows, series=series, chart=chart)


def threshold_rows(series: Mapping[str, Series], spec: GateSpec) -> list[KeyResult]:
    """The verdict: is each key's mean reward at least the threshold? Holm across keys."""
    options: ThresholdOptions = spec.options
    keys = sorted(series)
    checks = stats.holm_adjust(
        [stats.check_threshold(series[key].sample, options.threshold, **options.test_options()) for key in keys]
    )
    return [_threshold_row(series[key], check) for key, check in zip(keys, checks, strict=True)]


def _threshold_row(series: Series, check: ThresholdCheck) -> KeyResult:
    reason = check.reason
    outcome = check.outcome
    if series.n == 0:  # sessions, but not one usable score: no evidence for the key, never inconclusive
        outcome = Outcome.FAIL
        reason = (
            "no usable scores: "
            + "; ".join(
                filter(
                    None,
                    (
                        f"{series.missing} session(s) have no score or a score that is not a number"
                        if series.missing
                        else "",
                        f"{series.uncertain} session(s) were judged with uncertainty above max_uncertainty"
                        if series.uncertain
                        else "",
                    ),
                )
            )
            or "no usable scores"
        )
    return KeyResult(
        learning_key=series.learning_key,
        n=check.n,
        statistic="mean",
        value=check.mean,
        bound=interval(check.lower, check.upper),
        threshold=f">= {check.threshold:g}",
        outcome=outcome,
        reason=reason + (missing_note(series) if series.n else ""),
        worst=tuple(session for session, _ in series.worst),
        missing=series.missing,
        p_value=check.p_value,
        p_adjusted=check.p_adjusted,
        detail={
            "method": check.method,
            "sd": check.sd,
            "lower": check.lower,
            "upper": check.upper,
            "alpha": check.alpha,
            "shortfall_detectable": check.shortfall_detectable,
            "uncertainty_mean": series.uncertainty_mean,
            "uncertain": series.uncertain,
        },
    )


KIND = GateKind("threshold", ThresholdOptions, ThresholdOptions.build, evaluate, scored=True)
