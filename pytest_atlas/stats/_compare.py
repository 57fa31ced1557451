"""Noise-aware statistics for reward gates: bounds, one-sided tests, Holm, detectable effects.

Every check here ends in one of three outcomes:

* ``fail`` -- the data show a problem beyond reasonable noise (a one-sided test rejects at ``alpha``,
  after Holm's correction when several learning keys are tested together);
* ``pass`` -- the data show no problem *and* they could have shown one: for a threshold, the lower
  confidence bound of the mean reaches the threshold; for a regression, no significant drop was
  found and the test had ``power`` to find a drop of ``min_effect``;
* ``inconclusive`` -- neither: too few sessions, or too much noise, to tell. The result says what
  drop (or shortfall) the window at hand could have detected.

**No spread.** The t model (and a bootstrap, whose resamples of a constant sample are all alike)
reads a sample's uncertainty from its own spread. A sample with none -- every score equal, or every
paired difference equal -- has probability zero under that model: the data are discrete, and a
bound of zero width would be a verdict on no evidence. Such a group is bounded instead by a
distribution-free argument that uses only the range reward scores live in, [0, 1]: when all ``n``
scores equal ``v``, with confidence ``1 - alpha`` the share of scores below ``v`` is at most
``q = 1 - alpha**(1/n)`` (else ``n`` scores at ``v`` or above would have had probability below
``alpha``), so the mean is at least ``v - q * v`` and, the same way, at most ``v + q * (1 - v)``.
Its p-value is the largest chance of such a sample under the null hypothesis. Paired differences
live in [-1, 1] and are bounded the same way; two independent windows of which one or both have no
spread combine the two windows' bounds at ``alpha / 2`` each. A sample without spread outside the
range says nothing about the mean: ``inconclusive``. Such a check ``pass``-es only when its bound
rules the problem out (for a regression: a drop of ``min_effect``): 2 sessions at 0.9 are
``inconclusive`` against a threshold of 0.8, 500 sessions at 1.0 pass a threshold of 0.9.

The distributions and tests come from :mod:`scipy.stats`; the bootstrap resamples frequency
tables with NumPy so that it costs the same for a million sessions as for a thousand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from scipy import optimize
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
# samples without spread: distribution-free bounds (see the module docstring)
# ------------------------------------------------------------------------------------------------

#: the range Atlas reward scores live in (nominally: a score is not clamped, one outside is possible)
SCORE_RANGE = (0.0, 1.0)
#: the range of a paired difference of two scores
DIFFERENCE_RANGE = (-1.0, 1.0)
#: the smallest p-value a bound without spread reports (the search for it stops there)
_SMALLEST_P = 1e-300


def _no_spread(sample: Sample) -> bool:
    """Every score of the table the same (one distinct value: to the table's digits when rounded)."""
    return sample.n >= 2 and (len(sample.values) == 1 or sample.sd == 0)


def _share_below(n: int, alpha: float) -> float:
    """``1 - alpha**(1/n)``: the largest share below a value that ``n`` draws all missed, at ``1 - alpha``."""
    return -math.expm1(math.log(alpha) / n)


def _in_range(value: float, span: tuple[float, float]) -> bool:
    return span[0] <= value <= span[1]


def _flat_bounds(value: float, n: int, alpha: float, span: tuple[float, float]) -> tuple[float, float]:
    """One-sided ``1 - alpha`` bounds on the mean of a variable in ``span`` of which ``n`` draws all
    equal ``value``; NaN when ``value`` is outside ``span`` (then nothing bounds the mean)."""
    if not _in_range(value, span):
        return math.nan, math.nan
    q = _share_below(n, alpha)
    return value - q * (value - span[0]), value + q * (span[1] - value)


def _flat_p(value: float, n: int, limit: float, span: tuple[float, float]) -> float:
    """The p-value of H1: mean < ``limit``, for ``n`` draws all equal to ``value`` in ``span``: the
    largest chance that ``n`` draws are all at most ``value`` when the mean is ``limit`` or more
    (mass at ``value`` and at the top of the range)."""
    if value >= limit:
        return 1.0
    if limit >= span[1]:  # a mean that high needs every draw at the top
        return 0.0
    return float(((span[1] - limit) / (span[1] - value)) ** n)


def _group_bound(sample: Sample, alpha: float, side: str) -> float:
    """A one-sided ``1 - alpha`` bound (``side`` "lower" or "upper") on one window's mean: Student t
    from its spread, or the distribution-free bound when it has none."""
    if _no_spread(sample):
        low, high = _flat_bounds(sample.mean, sample.n, alpha, SCORE_RANGE)
        return low if side == "lower" else high
    half = float(sps.t.isf(alpha, sample.n - 1)) * sample.sd / math.sqrt(sample.n)
    return sample.mean - half if side == "lower" else sample.mean + half


def _difference_bounds(base: Sample, cand: Sample, alpha: float) -> tuple[float, float]:
    """One-sided ``1 - alpha`` bounds on candidate mean minus baseline mean, from each window's bounds
    at ``alpha / 2`` (Bonferroni: both hold together with ``1 - alpha``)."""
    half = alpha / 2
    lower = _group_bound(cand, half, "lower") - _group_bound(base, half, "upper")
    upper = _group_bound(cand, half, "upper") - _group_bound(base, half, "lower")
    return lower, upper


def _difference_p(base: Sample, cand: Sample, tolerance: float) -> float:
    """The p-value of H1: the mean dropped by more than ``tolerance``, dual to :func:`_difference_bounds`:
    the smallest ``alpha`` at which the upper bound on the difference is below ``-tolerance``."""

    def beyond(log_alpha: float) -> float:
        return _difference_bounds(base, cand, math.exp(log_alpha))[1] + tolerance

    if beyond(0.0) >= 0:  # not even at alpha = 1
        return 1.0
    smallest = math.log(_SMALLEST_P)
    if beyond(smallest) < 0:
        return _SMALLEST_P
    return math.exp(float(optimize.brentq(beyond, smallest, 0.0, xtol=1e-12)))


def _describe_flat(groups: Sequence[tuple[str, int, float]], span: tuple[float, float]) -> str:
    """``all 2 scores are 0.9000: no spread, so the t model does not hold``, and what bounds the mean
    instead. ``groups``: (what, n, value) of each sample without spread."""
    head = " and ".join(f"all {n} {what} are {value:.4f}" for what, n, value in groups)
    head += ": no spread, so the t model does not hold"
    outside = [value for _, _, value in groups if not _in_range(value, span)]
    if outside:
        return f"{head}, and {outside[0]:.4f} is outside [{span[0]:g}, {span[1]:g}]: nothing bounds the mean"
    return f"{head}; distribution-free bounds from the range [{span[0]:g}, {span[1]:g}]"


def _flat_sessions_needed(value: float, threshold: float, alpha: float) -> int | None:
    """How many scores all equal to ``value`` would put the lower bound at ``threshold``: ``n`` with
    ``value * alpha**(1/n) >= threshold``; None when no number would (``value`` at or below it)."""
    if value <= threshold or not _in_range(value, SCORE_RANGE):
        return None
    if threshold <= 0:
        return 2
    return max(2, math.ceil(math.log(alpha) / math.log(threshold / value)))


# ------------------------------------------------------------------------------------------------
# a confidence bound on a mean, and a threshold check
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanBound:
    """One-sided confidence bounds on a mean: ``lower`` and ``upper`` each hold with ``1 - alpha``.
    ``no_spread``: every score was the same, and the bounds are distribution-free (module docstring)."""

    n: int
    mean: float
    sd: float
    lower: float
    upper: float
    alpha: float
    method: str
    no_spread: bool = False


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
    uses t, as rank tests give no bound on a mean. With fewer than two scores the bounds are NaN.
    When every score is the same value ``v`` (no spread) the bounds are distribution-free, whatever
    the method: ``v * (1 - q)`` and ``v + q * (1 - v)`` with ``q = 1 - alpha**(1/n)``, for a ``v``
    in [0, 1] (NaN outside it: then nothing bounds the mean).

    >>> bound = mean_bound([0.9, 0.9])
    >>> round(bound.lower, 4), round(bound.upper, 4), bound.no_spread
    (0.2012, 0.9776, True)
    """
    sample = as_sample(scores, "scores")
    alpha = check_alpha(alpha)
    kind = _method(method)
    n_resamples = check_resamples(n_resamples)
    n, mean = sample.n, sample.mean
    if n < 2:
        return MeanBound(n, mean, math.nan, math.nan, math.nan, alpha, kind)
    sd = sample.sd
    if _no_spread(sample):
        lower, upper = _flat_bounds(mean, n, alpha, SCORE_RANGE)
        return MeanBound(n, mean, sd, lower, upper, alpha, kind, no_spread=True)
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
    check to fail with probability ``power`` (NaN without spread: no power without a spread).
    ``no_spread`` says what had none and how the mean was bounded instead (empty when the scores
    had spread).
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
    no_spread: str = ""

    kind = "threshold"

    @property
    def statistic(self) -> float:
        return self.mean

    def with_p_adjusted(self, p_adjusted: float | None) -> ThresholdCheck:
        outcome, reason = _threshold_outcome(
            self.n,
            self.mean,
            self.lower,
            self.upper,
            self.threshold,
            self.alpha,
            p_adjusted,
            self.shortfall_detectable,
            self.no_spread,
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
    no_spread: str = "",
) -> tuple[Outcome, str]:
    if n == 0:
        return Outcome.INCONCLUSIVE, "no scores"
    if no_spread:
        return _flat_threshold_outcome(no_spread, n, mean, lower, upper, threshold, alpha, p)
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


def _flat_threshold_outcome(
    note: str, n: int, mean: float, lower: float, upper: float, threshold: float, alpha: float, p: float | None
) -> tuple[Outcome, str]:
    """The outcome of a threshold check on scores without spread (``note`` says so)."""
    if p is None:  # outside the range of scores: nothing bounds the mean
        return Outcome.INCONCLUSIVE, note
    if p < alpha:
        return Outcome.FAIL, (
            f"{note}: the mean is at most {upper:.4f}, below the threshold {threshold:g} (p={_p(p)} < alpha={alpha:g})"
        )
    if lower >= threshold:
        return Outcome.PASS, f"{note}: the mean is at least {lower:.4f} >= threshold {threshold:g}"
    needed = _flat_sessions_needed(mean, threshold, alpha)
    more = (
        f"; it takes {needed} such scores to pass"
        if needed is not None
        else f"; scores of {mean:.4f} can never show a mean above the threshold"
    )
    return Outcome.INCONCLUSIVE, (
        f"{note}: the bounds [{lower:.4f}, {upper:.4f}] straddle the threshold {threshold:g} at n={n}{more}"
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
    the threshold). Scores without spread (all the same) are judged on distribution-free bounds
    (:func:`mean_bound`), whatever the method: two scores of 0.9 do not pass a threshold of 0.8.

    >>> check_threshold([0.9, 0.9], 0.8).outcome.value
    'inconclusive'
    >>> check_threshold([1.0] * 500, 0.9).outcome.value
    'pass'
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
    no_spread = ""
    if n < 2:
        p = None
    elif bound.no_spread:
        no_spread = _describe_flat([("scores", n, mean)], SCORE_RANGE)
        p = _flat_p(mean, n, threshold, SCORE_RANGE) if _in_range(mean, SCORE_RANGE) else None
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
    outcome, reason = _threshold_outcome(n, mean, bound.lower, bound.upper, threshold, alpha, p, detectable, no_spread)
    return ThresholdCheck(
        kind,
        n,
        mean,
        sd,
        bound.lower,
        bound.upper,
        threshold,
        alpha,
        power,
        p,
        p,
        detectable,
        outcome,
        reason,
        no_spread,
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
    (``tolerance`` plus the minimum detectable effect at these sample sizes and spreads). When a
    window (or, paired, the differences) has no spread, ``no_spread`` says so, the bounds are
    distribution-free (module docstring) and ``drop_detectable`` is the smallest drop they rule out.
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
    no_spread: str = ""

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
            self.no_spread,
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
    no_spread: str = "",
) -> tuple[Outcome, str]:
    if n_baseline == 0 or n_candidate == 0:
        empty = "baseline" if n_baseline == 0 else "candidate"
        return Outcome.INCONCLUSIVE, f"no {empty} scores"
    if no_spread:
        return _flat_comparison_outcome(no_spread, difference, tolerance, min_effect, alpha, p, detectable)
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


def _flat_comparison_outcome(
    note: str,
    difference: float,
    tolerance: float,
    min_effect: float | None,
    alpha: float,
    p: float | None,
    ruled: float,
) -> tuple[Outcome, str]:
    """The outcome of a comparison where a window, or the paired differences, had no spread (``note``
    says which): ``ruled`` is the smallest drop the distribution-free bound rules out."""
    if p is None:  # a value outside the range of scores: nothing bounds the mean
        return Outcome.INCONCLUSIVE, note
    if p < alpha:
        beyond = f" (tolerated {tolerance:g})" if tolerance else ""
        return Outcome.FAIL, f"{note}: mean dropped by {-difference:.4f}{beyond} (p={_p(p)} < alpha={alpha:g})"
    if min_effect is None or ruled <= min_effect:
        return Outcome.PASS, f"{note}: no drop beyond noise (p={_p(p)}); a drop above {ruled:.3f} is ruled out"
    return Outcome.INCONCLUSIVE, (
        f"{note}: no drop beyond noise (p={_p(p)}), but the bounds only rule out a drop above {ruled:.3f} "
        f"(wanted {min_effect:g}): add sessions"
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
    observations per window, and when a window has no spread (an ``sd`` of 0: the t model does not
    hold for it, and nothing says how well its mean is known).
    """
    alpha = check_alpha(alpha)
    power = check_power(power)
    kind = _method(method)
    sd_c = sd_baseline if sd_candidate is None else sd_candidate
    if n_baseline < 2 or n_candidate < 2 or sd_baseline == 0 or sd_c == 0:
        return math.nan
    var_b, var_c = sd_baseline**2 / n_baseline, sd_c**2 / n_candidate
    se = math.sqrt(var_b + var_c)
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

    A window without spread (every score the same) is bounded distribution-free, whatever the
    method, and the two windows' bounds are combined at ``alpha / 2`` each: ``pass`` then needs the
    bound on the difference to rule out a drop of ``min_effect``.

    >>> compare([0.9, 0.9], [0.9, 0.9]).outcome.value
    'inconclusive'
    >>> compare([0.8, 0.8], [0.7, 0.7]).outcome.value
    'inconclusive'
    >>> compare([1.0] * 500, [1.0] * 500).outcome.value
    'pass'
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
    no_spread = ""
    if n_b >= 2 and n_c >= 2:
        var_b, var_c = base.variance / n_b, cand.variance / n_c
        se = math.sqrt(var_b + var_c)
        flat = [
            (f"{name} scores", s.n, s.mean) for name, s in (("baseline", base), ("candidate", cand)) if _no_spread(s)
        ]
        if flat:
            no_spread = _describe_flat(flat, SCORE_RANGE)
            if all(_in_range(value, SCORE_RANGE) for _, _, value in flat):
                lower, upper = _difference_bounds(base, cand, alpha)
                p = _difference_p(base, cand, tolerance)
                detectable = max(0.0, -lower)
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
    outcome, reason = _comparison_outcome(
        n_b, n_c, difference, tolerance, min_effect, alpha, p, detectable, False, no_spread
    )
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
        no_spread,
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
    ``"bootstrap"`` (resampling tasks). Differences without spread (every task moved by the same
    amount, to 12 decimals) are bounded distribution-free in [-1, 1], whatever the method.

    >>> compare_paired([0.5, 0.7], [0.5, 0.7]).outcome.value
    'inconclusive'
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
    no_spread = ""
    if n >= 2:
        se = float(differences.std(ddof=1)) / math.sqrt(n)
        if _no_spread(Sample.of(np.round(differences, 12))):  # c - b of equal steps differs in the last bit
            scores = np.concatenate([base_array, cand_array])
            bounded = bool(((scores >= SCORE_RANGE[0]) & (scores <= SCORE_RANGE[1])).all())
            no_spread = _describe_flat([("paired differences", n, difference)], DIFFERENCE_RANGE)
            if not bounded:  # differences of scores outside [0, 1] need not lie in [-1, 1]
                no_spread = (
                    f"all {n} paired differences are {difference:.4f}: no spread, so the t model does not hold, "
                    "and a score outside [0, 1] leaves the differences unbounded: nothing bounds the mean"
                )
            else:
                lower, upper = _flat_bounds(difference, n, alpha, DIFFERENCE_RANGE)
                p = _flat_p(difference, n, -tolerance, DIFFERENCE_RANGE)
                detectable = max(0.0, -lower)
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
    outcome, reason = _comparison_outcome(
        n, n, difference, tolerance, min_effect, alpha, p, detectable, True, no_spread
    )
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
        no_spread,
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
