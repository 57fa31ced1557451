"""Noise-aware statistics for reward gates: bounds, one-sided tests, Holm, detectable effects.

Every check here ends in one of three outcomes:

* ``fail`` -- the data show a problem beyond reasonable noise (a one-sided test rejects at ``alpha``,
  after Holm's correction when several learning keys are tested together);
* ``pass`` -- the data show no problem *and* they could have shown one: for a threshold, the lower
  confidence bound of the mean reaches the threshold; for a regression, no significant drop was
  found and the test had ``power`` to find a drop of ``min_effect``;
* ``inconclusive`` -- neither: too few sessions, or too much noise, to tell. The result says what
  drop (or shortfall) the window at hand could have detected.

The distributions and tests come from :mod:`scipy.stats`; the bootstrap resamples frequency
tables with NumPy so that it costs the same for a million sessions as for a thousand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from scipy import stats as sps

from pytest_atlas._arguments import check_number, check_probability
from pytest_atlas._outcome import Outcome
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.stats._options import METHODS, check_alpha, check_power, check_resamples, check_seed
from pytest_atlas.stats._options import canonical_method as _method
from pytest_atlas.stats._sample import FloatArray, Sample, as_sample, finite_floats

__all__ = [
    "METHODS",
    "Comparison",
    "MeanBound",
    "Outcome",
    "ThresholdCheck",
    "check_threshold",
    "compare",
    "compare_paired",
    "holm",
    "holm_adjust",
    "mean_bound",
    "minimum_detectable_effect",
]

#: asymptotic relative efficiency of rank tests against t under normal data is 3/pi: a rank test
#: needs pi/3 times as many observations, so its detectable effect is sqrt(pi/3) times larger
_RANK_MDE_FACTOR = math.sqrt(math.pi / 3.0)


# ------------------------------------------------------------------------------------------------
# argument checks (one error type, one message shape)
# ------------------------------------------------------------------------------------------------


def _finite(name: str, value: object, *, minimum: float | None = None) -> float:
    return check_number(name, value, low=-math.inf if minimum is None else minimum)


# ------------------------------------------------------------------------------------------------
# bootstrap on frequency tables
# ------------------------------------------------------------------------------------------------


def _bootstrap_means(sample: Sample, rng: np.random.Generator, n_resamples: int) -> FloatArray:
    """Means of ``n_resamples`` resamples (with replacement, size n) of the sample."""
    n = sample.n
    weights = sample.counts / n
    out = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, min(n_resamples, 4_000_000 // max(len(sample.values), 1)))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        draws = rng.multinomial(n, weights, size=stop - start)
        out[start:stop] = draws @ sample.values / n
    return out


def _plus_one_p(extreme: int, total: int) -> float:
    return (extreme + 1) / (total + 1)


# ------------------------------------------------------------------------------------------------
# a confidence bound on a mean, and a threshold check
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanBound:
    """One-sided confidence bounds on a mean: ``lower`` and ``upper`` each hold with ``1 - alpha``."""

    n: int
    mean: float
    sd: float
    lower: float
    upper: float
    alpha: float
    method: str


def mean_bound(
    scores: Sample | Iterable[object],
    *,
    alpha: float = 0.05,
    method: str = "welch",
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> MeanBound:
    """Lower and upper one-sided ``1 - alpha`` confidence bounds on the mean of ``scores``.

    ``method="welch"`` (Student t, the default) or ``"bootstrap"`` (percentile bounds of
    ``n_resamples`` resampled means, reproducible with ``seed``). ``"mann-whitney"`` is accepted and
    uses t, as rank tests give no bound on a mean. With fewer than two scores the bounds are NaN;
    with zero variance they equal the mean.
    """
    sample = as_sample(scores, "scores")
    alpha = check_alpha(alpha)
    kind = _method(method)
    n_resamples = check_resamples(n_resamples)
    n, mean = sample.n, sample.mean
    if n < 2:
        return MeanBound(n, mean, math.nan, math.nan, math.nan, alpha, kind)
    sd = sample.sd
    if sd == 0:
        return MeanBound(n, mean, 0.0, mean, mean, alpha, kind)
    if kind == "bootstrap":
        means = _bootstrap_means(sample, np.random.default_rng(check_seed(seed)), n_resamples)
        lower, upper = np.quantile(means, [alpha, 1 - alpha])
        return MeanBound(n, mean, sd, float(lower), float(upper), alpha, kind)
    half = float(sps.t.ppf(1 - alpha, n - 1)) * sd / math.sqrt(n)
    return MeanBound(n, mean, sd, mean - half, mean + half, alpha, kind)


@dataclass(frozen=True)
class ThresholdCheck:
    """Is the mean reward at least ``threshold``? One-sided test of H1: mean < threshold.

    ``p_value`` is the raw one-sided p-value (None when there are fewer than two scores),
    ``p_adjusted`` the Holm-adjusted one when several keys were checked together (else equal).
    ``shortfall_detectable`` is how far below the threshold the true mean would have to be for this
    check to fail with probability ``power``.
    """

    method: str
    n: int
    mean: float
    sd: float
    lower: float
    upper: float
    threshold: float
    alpha: float
    power: float
    p_value: float | None
    p_adjusted: float | None
    shortfall_detectable: float
    outcome: Outcome
    reason: str

    kind = "threshold"

    @property
    def statistic(self) -> float:
        return self.mean

    def with_p_adjusted(self, p_adjusted: float | None) -> ThresholdCheck:
        outcome, reason = _threshold_outcome(
            self.n, self.mean, self.lower, self.upper, self.threshold, self.alpha, p_adjusted, self.shortfall_detectable
        )
        return replace(self, p_adjusted=p_adjusted, outcome=outcome, reason=reason)


def _threshold_outcome(
    n: int,
    mean: float,
    lower: float,
    upper: float,
    threshold: float,
    alpha: float,
    p: float | None,
    detectable: float,
) -> tuple[Outcome, str]:
    if n == 0:
        return Outcome.INCONCLUSIVE, "no scores"
    if p is None:
        return Outcome.INCONCLUSIVE, f"{n} score: at least 2 are needed to bound the mean"
    if p < alpha:
        return Outcome.FAIL, (
            f"mean {mean:.4f} is below the threshold {threshold:g} beyond noise (p={_p(p)} < alpha={alpha:g})"
        )
    if lower >= threshold:
        return Outcome.PASS, f"lower bound {lower:.4f} >= threshold {threshold:g}"
    return Outcome.INCONCLUSIVE, (
        f"the bounds [{lower:.4f}, {upper:.4f}] straddle the threshold {threshold:g}; with n={n} this "
        f"window can only detect a shortfall of {detectable:.3f}"
    )


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def check_threshold(
    scores: Sample | Iterable[object],
    threshold: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: str = "welch",
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> ThresholdCheck:
    """Check that the mean of ``scores`` is at least ``threshold``, three ways.

    ``fail`` when the mean is below the threshold beyond noise (one-sided test at ``alpha``);
    ``pass`` when the lower ``1 - alpha`` confidence bound reaches the threshold; ``inconclusive``
    otherwise (and with fewer than two scores). Methods: ``"welch"`` (one-sample t),
    ``"mann-whitney"`` (Wilcoxon signed-rank test of the scores against the threshold; bounds from
    t) and ``"bootstrap"`` (percentile bounds; p-value is the share of resampled means at or above
    the threshold).
    """
    sample = as_sample(scores, "scores")
    threshold = _finite("threshold", threshold)
    alpha = check_alpha(alpha)
    power = check_power(power)
    kind = _method(method)
    bound = mean_bound(sample, alpha=alpha, method=kind, n_resamples=n_resamples, seed=seed)
    n, mean, sd = bound.n, bound.mean, bound.sd
    p: float | None
    detectable = math.nan
    if n < 2:
        p = None
    elif sd == 0:
        p, detectable = (0.0 if mean < threshold else 1.0), 0.0
    else:
        se = sd / math.sqrt(n)
        detectable = (float(sps.t.ppf(1 - alpha, n - 1)) + float(sps.t.ppf(power, n - 1))) * se
        if kind == "welch":
            p = float(sps.t.cdf((mean - threshold) / se, n - 1))
        elif kind == "mann-whitney":
            detectable *= _RANK_MDE_FACTOR
            differences = np.round(sample.expand() - threshold, 12)
            p = 1.0 if not differences.any() else float(sps.wilcoxon(differences, alternative="less").pvalue)
        else:
            means = _bootstrap_means(sample, np.random.default_rng(check_seed(seed)), check_resamples(n_resamples))
            p = _plus_one_p(int((means >= threshold).sum()), len(means))
            detectable = (float(sps.norm.ppf(1 - alpha)) + float(sps.norm.ppf(power))) * float(means.std())
    outcome, reason = _threshold_outcome(n, mean, bound.lower, bound.upper, threshold, alpha, p, detectable)
    return ThresholdCheck(
        kind, n, mean, sd, bound.lower, bound.upper, threshold, alpha, power, p, p, detectable, outcome, reason
    )


# ------------------------------------------------------------------------------------------------
# candidate against baseline
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A one-sided test of H1: the candidate's mean reward dropped by more than ``tolerance``.

    ``difference`` is candidate mean minus baseline mean (negative = a drop); ``lower`` / ``upper``
    are one-sided ``1 - alpha`` bounds on it (Welch or paired-t bounds, percentile bounds for the
    bootstrap). ``drop_detectable`` is the true drop this test finds with probability ``power``
    (``tolerance`` plus the minimum detectable effect at these sample sizes and spreads).
    """

    method: str
    paired: bool
    n_baseline: int
    n_candidate: int
    baseline_mean: float
    candidate_mean: float
    baseline_sd: float
    candidate_sd: float
    difference: float
    lower: float
    upper: float
    tolerance: float
    min_effect: float | None
    alpha: float
    power: float
    p_value: float | None
    p_adjusted: float | None
    drop_detectable: float
    outcome: Outcome
    reason: str

    kind = "regression"

    @property
    def statistic(self) -> float:
        return self.difference

    @property
    def n(self) -> int:
        return self.n_candidate

    def with_p_adjusted(self, p_adjusted: float | None) -> Comparison:
        outcome, reason = _comparison_outcome(
            self.n_baseline,
            self.n_candidate,
            self.difference,
            self.tolerance,
            self.min_effect,
            self.alpha,
            p_adjusted,
            self.drop_detectable,
            self.paired,
        )
        return replace(self, p_adjusted=p_adjusted, outcome=outcome, reason=reason)


def _comparison_outcome(
    n_baseline: int,
    n_candidate: int,
    difference: float,
    tolerance: float,
    min_effect: float | None,
    alpha: float,
    p: float | None,
    detectable: float,
    paired: bool,
) -> tuple[Outcome, str]:
    if n_baseline == 0 or n_candidate == 0:
        empty = "baseline" if n_baseline == 0 else "candidate"
        return Outcome.INCONCLUSIVE, f"no {empty} scores"
    if p is None:
        what = "pairs" if paired else "scores in each window"
        return Outcome.INCONCLUSIVE, (
            f"too few sessions (baseline {n_baseline}, candidate {n_candidate}): at least 2 {what} are needed"
        )
    drop = -difference
    if p < alpha:
        beyond = f" (tolerated {tolerance:g})" if tolerance else ""
        return Outcome.FAIL, f"mean dropped by {drop:.4f}{beyond}, beyond noise (p={_p(p)} < alpha={alpha:g})"
    if min_effect is None or detectable <= min_effect:
        return Outcome.PASS, f"no drop beyond noise (p={_p(p)}); a drop of {detectable:.3f} would be caught"
    return Outcome.INCONCLUSIVE, (
        f"no drop beyond noise (p={_p(p)}), but this window can only detect a drop of {detectable:.3f} "
        f"(wanted {min_effect:g}): add sessions or lower the noise"
    )


def _check_effects(tolerance: float, min_effect: float | None) -> tuple[float, float | None]:
    tolerance = _finite("tolerance", tolerance, minimum=0.0)
    if min_effect is not None:
        min_effect = _finite("min_effect", min_effect)
        if min_effect <= tolerance:
            raise InvalidArgument(
                f"min_effect ({min_effect:g}) must be larger than tolerance ({tolerance:g})",
                hint="min_effect is the drop that must be detectable; tolerance the drop that is accepted",
            )
    return tolerance, min_effect


def minimum_detectable_effect(
    n_baseline: int,
    n_candidate: int,
    sd_baseline: float,
    sd_candidate: float | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: str = "welch",
) -> float:
    """The smallest true drop in the mean that a one-sided test at ``alpha`` detects with ``power``.

    Welch: ``(t(1-alpha, df) + t(power, df)) * se`` with the Welch-Satterthwaite ``df`` and
    ``se = sqrt(sd_b**2/n_b + sd_c**2/n_c)``. Mann-Whitney: that times ``sqrt(pi/3)`` (its efficiency
    relative to t on normal data). Bootstrap: normal quantiles instead of t. NaN below two
    observations per window.
    """
    alpha = check_alpha(alpha)
    power = check_power(power)
    kind = _method(method)
    sd_c = sd_baseline if sd_candidate is None else sd_candidate
    if n_baseline < 2 or n_candidate < 2:
        return math.nan
    var_b, var_c = sd_baseline**2 / n_baseline, sd_c**2 / n_candidate
    se = math.sqrt(var_b + var_c)
    if se == 0:
        return 0.0
    df = (var_b + var_c) ** 2 / (var_b**2 / (n_baseline - 1) + var_c**2 / (n_candidate - 1))
    return _mde(se, df, alpha, power, kind)


def _mde(se: float, df: float, alpha: float, power: float, kind: str) -> float:
    if kind == "bootstrap":
        return (float(sps.norm.ppf(1 - alpha)) + float(sps.norm.ppf(power))) * se
    effect = (float(sps.t.ppf(1 - alpha, df)) + float(sps.t.ppf(power, df))) * se
    return effect * _RANK_MDE_FACTOR if kind == "mann-whitney" else effect


def compare(
    baseline: Sample | Iterable[object],
    candidate: Sample | Iterable[object],
    *,
    method: str = "welch",
    alpha: float = 0.05,
    tolerance: float = 0.0,
    min_effect: float | None = 0.05,
    power: float = 0.8,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> Comparison:
    """Did the candidate window's mean reward drop below the baseline's by more than ``tolerance``?

    Independent windows (use :func:`compare_paired` when both ran the same tasks). Methods:
    ``"welch"`` (Welch's unequal-variance t-test), ``"mann-whitney"`` (rank test of the candidate
    shifted up by ``tolerance``), ``"bootstrap"`` (independent resampling of both windows; the
    p-value is the share of resampled drops at or below ``tolerance``). Outcome: ``fail`` when
    the one-sided p-value is below ``alpha``; else ``pass`` when a drop of ``min_effect`` would have
    been detected with ``power`` (always, when ``min_effect`` is None); else ``inconclusive``.
    """
    base = as_sample(baseline, "baseline")
    cand = as_sample(candidate, "candidate")
    kind = _method(method)
    alpha = check_alpha(alpha)
    power = check_power(power)
    tolerance, min_effect = _check_effects(tolerance, min_effect)
    n_resamples = check_resamples(n_resamples)
    seed = check_seed(seed)

    n_b, n_c = base.n, cand.n
    mean_b, mean_c = base.mean, cand.mean
    sd_b, sd_c = base.sd, cand.sd
    difference = mean_c - mean_b
    p: float | None = None
    lower = upper = detectable = math.nan
    if n_b >= 2 and n_c >= 2:
        var_b, var_c = base.variance / n_b, cand.variance / n_c
        se = math.sqrt(var_b + var_c)
        if se == 0:
            p = 0.0 if -difference > tolerance else 1.0
            lower = upper = difference
            detectable = tolerance
        else:
            df = (var_b + var_c) ** 2 / (var_b**2 / (n_b - 1) + var_c**2 / (n_c - 1))
            half = float(sps.t.ppf(1 - alpha, df)) * se
            lower, upper = difference - half, difference + half
            if kind == "welch":  # H1: the candidate's mean, plus the tolerated drop, is below the baseline's
                p = float(
                    sps.ttest_ind_from_stats(
                        mean_c + tolerance, sd_c, n_c, mean_b, sd_b, n_b, equal_var=False, alternative="less"
                    ).pvalue
                )
                detectable = tolerance + _mde(se, df, alpha, power, kind)
            elif kind == "mann-whitney":
                shifted = cand.expand() + tolerance
                p = float(sps.mannwhitneyu(shifted, base.expand(), alternative="less").pvalue)
                detectable = tolerance + _mde(se, df, alpha, power, kind)
            else:
                rng = np.random.default_rng(seed)
                drops = _bootstrap_means(base, rng, n_resamples) - _bootstrap_means(cand, rng, n_resamples)
                p = _plus_one_p(int((drops <= tolerance).sum()), n_resamples)
                low_q, high_q = np.quantile(-drops, [alpha, 1 - alpha])
                lower, upper = float(low_q), float(high_q)
                detectable = tolerance + _mde(float(drops.std()), math.inf, alpha, power, kind)
    outcome, reason = _comparison_outcome(n_b, n_c, difference, tolerance, min_effect, alpha, p, detectable, False)
    return Comparison(
        kind,
        False,
        n_b,
        n_c,
        mean_b,
        mean_c,
        sd_b,
        sd_c,
        difference,
        lower,
        upper,
        tolerance,
        min_effect,
        alpha,
        power,
        p,
        p,
        detectable,
        outcome,
        reason,
    )


def compare_paired(
    baseline: Sequence[object],
    candidate: Sequence[object],
    *,
    method: str = "welch",
    alpha: float = 0.05,
    tolerance: float = 0.0,
    min_effect: float | None = 0.05,
    power: float = 0.8,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> Comparison:
    """Like :func:`compare` for two runs over the same tasks: ``baseline[i]`` and ``candidate[i]``
    are the (mean) rewards of task ``i``.

    Pairing removes the task-to-task spread, which usually makes the test far more sensitive.
    Methods: ``"welch"`` (paired t-test), ``"mann-whitney"`` (Wilcoxon signed-rank test),
    ``"bootstrap"`` (resampling tasks).
    """
    if isinstance(baseline, Sample) or isinstance(candidate, Sample):
        raise InvalidArgument(
            "compare_paired needs aligned lists, not Sample objects",
            hint="pass per-task rewards in the same task order",
        )
    base_array = finite_floats(baseline, "baseline")
    cand_array = finite_floats(candidate, "candidate")
    if len(base_array) != len(cand_array):
        raise InvalidArgument(
            f"paired comparison needs one baseline reward per candidate reward, got {len(base_array)} "
            f"and {len(cand_array)}",
            hint="pair the runs by task first (pytest_atlas.gates pairs them by sessions.task)",
        )
    kind = _method(method)
    alpha = check_alpha(alpha)
    power = check_power(power)
    tolerance, min_effect = _check_effects(tolerance, min_effect)
    n_resamples = check_resamples(n_resamples)
    seed = check_seed(seed)

    n = len(base_array)
    mean_b = float(base_array.mean()) if n else math.nan
    mean_c = float(cand_array.mean()) if n else math.nan
    sd_b = float(base_array.std(ddof=1)) if n >= 2 else math.nan
    sd_c = float(cand_array.std(ddof=1)) if n >= 2 else math.nan
    differences = cand_array - base_array
    difference = mean_c - mean_b
    p: float | None = None
    lower = upper = detectable = math.nan
    if n >= 2:
        se = float(differences.std(ddof=1)) / math.sqrt(n)
        if se == 0:
            p = 0.0 if -difference > tolerance else 1.0
            lower = upper = difference
            detectable = tolerance
        else:
            df = float(n - 1)
            half = float(sps.t.ppf(1 - alpha, df)) * se
            lower, upper = difference - half, difference + half
            if kind == "welch":  # H1: the mean difference is below minus the tolerated drop
                p = float(sps.ttest_1samp(differences, -tolerance, alternative="less").pvalue)
            elif kind == "mann-whitney":
                shifted = np.round(differences + tolerance, 12)
                p = 1.0 if not shifted.any() else float(sps.wilcoxon(shifted, alternative="less").pvalue)
            else:
                means = _bootstrap_means(Sample.of(differences), np.random.default_rng(seed), n_resamples)
                p = _plus_one_p(int((-means <= tolerance).sum()), n_resamples)
                low_q, high_q = np.quantile(means, [alpha, 1 - alpha])
                lower, upper = float(low_q), float(high_q)
                se, df = float(means.std()), math.inf
            detectable = tolerance + _mde(se, df, alpha, power, kind)
    outcome, reason = _comparison_outcome(n, n, difference, tolerance, min_effect, alpha, p, detectable, True)
    return Comparison(
        kind,
        True,
        n,
        n,
        mean_b,
        mean_c,
        sd_b,
        sd_c,
        difference,
        lower,
        upper,
        tolerance,
        min_effect,
        alpha,
        power,
        p,
        p,
        detectable,
        outcome,
        reason,
    )


# ------------------------------------------------------------------------------------------------
# Holm's step-down correction
# ------------------------------------------------------------------------------------------------


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order. None entries (untested) stay None and do not count.

    Reject every hypothesis whose adjusted p-value is below alpha: the chance of any false rejection
    in the family stays at most alpha.
    """
    for position, value in enumerate(p_values):
        if value is not None:
            try:
                check_probability(f"p_values[{position}]", value)
            except InvalidArgument as exc:
                raise InvalidArgument(exc.problem, hint="use None for an untested hypothesis") from None
    tested = sorted((float(p), i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


_Checked = TypeVar("_Checked", ThresholdCheck, Comparison)


def holm_adjust(results: Sequence[_Checked]) -> list[_Checked]:
    """The same checks with Holm-adjusted p-values and outcomes decided on them."""
    adjusted = holm([result.p_value for result in results])
    return [result.with_p_adjusted(p) for result, p in zip(results, adjusted, strict=True)]
