"""Gate statistics: known values, three-way outcomes, bad input, and calibration by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_atlas import InvalidArgument
from pytest_atlas.stats import (
    Outcome,
    Sample,
    check_threshold,
    compare,
    compare_paired,
    holm,
    holm_adjust,
    mean_bound,
    minimum_detectable_effect,
)

# Welch's example from the literature (two groups of 15): t = -2.46, df = 24.99, two-sided p = 0.021
WELCH_A = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
WELCH_B = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def beta(rng: np.random.Generator, mean: float, sd: float, n: int) -> list[float]:
    concentration = mean * (1 - mean) / sd**2 - 1
    return [float(x) for x in rng.beta(mean * concentration, (1 - mean) * concentration, n)]


# --------------------------------------------------------------------------------------------- known values


def test_welch_matches_the_published_example() -> None:
    result = compare(WELCH_B, WELCH_A, min_effect=None)  # candidate A has the lower mean
    assert result.p_value == pytest.approx(0.021378 / 2, rel=1e-4)  # one-sided
    assert result.difference == pytest.approx(20.82 - 22.986667, abs=1e-5)
    assert result.outcome is Outcome.FAIL


def test_t_bound_matches_a_table_value() -> None:
    bound = mean_bound([0.6, 0.7, 0.8, 0.9, 1.0], alpha=0.05)
    # mean 0.8, sd sqrt(0.025), t(0.95, 4) = 2.1318 from the t table
    half = 2.131847 * math.sqrt(0.025) / math.sqrt(5)
    assert bound.lower == pytest.approx(0.8 - half, abs=1e-6)
    assert bound.upper == pytest.approx(0.8 + half, abs=1e-6)


def test_mann_whitney_exact_small_example() -> None:
    # candidate entirely below baseline, 3 vs 3, no ties: exact one-sided p = 1 / C(6, 3) = 0.05
    result = compare([0.7, 0.8, 0.9], [0.1, 0.2, 0.3], method="mann-whitney", min_effect=None)
    assert result.p_value == pytest.approx(0.05)
    assert result.outcome is Outcome.INCONCLUSIVE or result.outcome is Outcome.PASS  # p == alpha: no fail


def test_holm_known_values() -> None:
    # sorted: .005*4 = .02, .01*3 = .03, .03*2 = .06, .04*1 = .04 -> monotone .06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.02]) == [pytest.approx(0.02), None, pytest.approx(0.02)]
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def test_minimum_detectable_effect_known_value() -> None:
    # n = 50 per window, sd 0.13: se = 0.026, df = 98, t(.95) = 1.6606, t(.80) = 0.8453
    assert minimum_detectable_effect(50, 50, 0.13) == pytest.approx((1.6606 + 0.8453) * 0.026, rel=1e-3)
    rank = minimum_detectable_effect(50, 50, 0.13, method="mann-whitney")
    assert rank == pytest.approx(minimum_detectable_effect(50, 50, 0.13) * math.sqrt(math.pi / 3))
    assert math.isnan(minimum_detectable_effect(1, 50, 0.13))
    assert math.isnan(minimum_detectable_effect(20, 20, 0.0))  # no spread: no detectable effect (test_no_spread)


def test_frequency_tables_give_the_same_answers_as_raw_lists() -> None:
    rng = np.random.default_rng(3)
    raw = [round(x, 2) for x in beta(rng, 0.7, 0.13, 300)]
    values, counts = np.unique(raw, return_counts=True)
    table = Sample.from_counts(values.tolist(), counts.tolist())
    assert table.n == 300 and table.mean == pytest.approx(float(np.mean(raw)))
    assert table.variance == pytest.approx(float(np.var(raw, ddof=1)))
    other = [round(x, 2) for x in beta(rng, 0.75, 0.13, 200)]
    for method in ("welch", "mann-whitney", "bootstrap"):
        assert compare(other, table, method=method).p_value == pytest.approx(compare(other, raw, method=method).p_value)


# ---------------------------------------------------------------------------------------- three-way outcomes


def test_threshold_three_ways() -> None:
    rng = np.random.default_rng(7)
    good = beta(rng, 0.85, 0.08, 200)
    assert check_threshold(good, 0.7).outcome is Outcome.PASS
    bad = beta(rng, 0.55, 0.08, 200)
    failed = check_threshold(bad, 0.7)
    assert failed.outcome is Outcome.FAIL and "below the threshold" in failed.reason
    close = beta(rng, 0.71, 0.13, 15)
    unclear = check_threshold(close, 0.7)
    assert unclear.outcome is Outcome.INCONCLUSIVE
    assert "can only detect a shortfall" in unclear.reason


def test_regression_three_ways_and_the_detectable_drop() -> None:
    rng = np.random.default_rng(11)
    base = beta(rng, 0.75, 0.13, 400)
    assert compare(base, beta(rng, 0.75, 0.13, 400)).outcome is Outcome.PASS
    assert compare(base, beta(rng, 0.60, 0.13, 400)).outcome is Outcome.FAIL
    small = compare(base[:20], beta(rng, 0.75, 0.13, 20), min_effect=0.05)
    assert small.outcome is Outcome.INCONCLUSIVE
    assert small.drop_detectable > 0.05
    assert f"can only detect a drop of {small.drop_detectable:.3f}" in small.reason
    assert compare(base[:20], beta(rng, 0.75, 0.13, 20), min_effect=None).outcome is Outcome.PASS


def test_tolerance_accepts_small_drops() -> None:
    rng = np.random.default_rng(5)
    base, cand = beta(rng, 0.75, 0.1, 500), beta(rng, 0.72, 0.1, 500)
    assert compare(base, cand, min_effect=None).outcome is Outcome.FAIL
    assert compare(base, cand, tolerance=0.05, min_effect=0.1).outcome is Outcome.PASS


@pytest.mark.parametrize("method", ["welch", "mann-whitney", "bootstrap"])
def test_paired_is_more_sensitive_when_tasks_repeat(method: str) -> None:
    rng = np.random.default_rng(13)
    task = rng.normal(0.7, 0.15, 40)
    base = np.clip(task + rng.normal(0, 0.03, 40), 0, 1)
    cand = np.clip(task - 0.04 + rng.normal(0, 0.03, 40), 0, 1)
    paired = compare_paired(base.tolist(), cand.tolist(), method=method, min_effect=None)
    independent = compare(base.tolist(), cand.tolist(), method=method, min_effect=None)
    assert paired.paired and paired.outcome is Outcome.FAIL
    assert independent.outcome is not Outcome.FAIL  # the task spread hides the drop


# ----------------------------------------------------------------------------------------------- bad input


def test_one_session_is_inconclusive_not_an_error() -> None:
    result = compare([0.8], [0.2, 0.3])
    assert result.outcome is Outcome.INCONCLUSIVE and result.p_value is None
    assert "too few sessions (baseline 1, candidate 2)" in result.reason
    single = check_threshold([0.9], 0.5)
    assert single.outcome is Outcome.INCONCLUSIVE and "at least 2" in single.reason
    assert compare([], [0.5, 0.6]).reason == "no baseline scores"


def test_nan_and_missing_scores_are_refused_with_a_message() -> None:
    with pytest.raises(InvalidArgument, match=r"scores\[1\] is nan; reward scores must be finite") as info:
        check_threshold([0.5, float("nan")], 0.3)
    assert "how to fix" in str(info.value)
    with pytest.raises(InvalidArgument, match=r"candidate\[0\] is None, not a number"):
        compare([0.5, 0.6], [None, 0.5])
    with pytest.raises(InvalidArgument, match="method 'ks' is not a known method"):
        compare([0.5, 0.6], [0.5, 0.6], method="ks")
    with pytest.raises(InvalidArgument, match="alpha must be"):
        compare([0.5, 0.6], [0.5, 0.6], alpha=0.7)
    with pytest.raises(InvalidArgument, match="min_effect"):
        compare([0.5, 0.6], [0.5, 0.6], tolerance=0.1, min_effect=0.05)
    with pytest.raises(InvalidArgument, match="one baseline reward per candidate"):
        compare_paired([0.5, 0.6], [0.5])


# ------------------------------------------------------------------------------------ calibration (seeded)


@pytest.mark.parametrize(("method", "trials"), [("welch", 1000), ("mann-whitney", 1000), ("bootstrap", 300)])
def test_false_alarm_rate_is_near_alpha_on_identical_distributions(method: str, trials: int) -> None:
    rng = np.random.default_rng(20261125)
    fails = sum(
        compare(
            beta(rng, 0.75, 0.13, 30),
            beta(rng, 0.75, 0.13, 30),
            method=method,
            min_effect=None,
            n_resamples=500,
            seed=i,
        ).outcome
        is Outcome.FAIL
        for i in range(trials)
    )
    rate = fails / trials
    # binomial sd at alpha = .05: 0.007 for 1000 trials, 0.013 for 300: allow about 3 sd
    assert 0.025 <= rate <= (0.075 if trials >= 1000 else 0.095), rate


def test_power_matches_the_reference_figures() -> None:
    """Published power figures: Welch at n = 50 catches a 0.05 drop 57 % of the time and a 0.10 drop 97 %."""
    rng = np.random.default_rng(99)
    for drop, low, high in ((0.05, 0.50, 0.65), (0.10, 0.94, 1.0)):
        fails = sum(
            compare(beta(rng, 0.75, 0.13, 50), beta(rng, 0.75 - drop, 0.13, 50), min_effect=None).outcome
            is Outcome.FAIL
            for _ in range(600)
        )
        assert low <= fails / 600 <= high, (drop, fails / 600)


def test_holm_keeps_the_family_wise_error_rate() -> None:
    rng = np.random.default_rng(4)
    keys, trials, any_fail_raw, any_fail_holm = 5, 400, 0, 0
    for _ in range(trials):
        results = [compare(beta(rng, 0.75, 0.13, 30), beta(rng, 0.75, 0.13, 30), min_effect=None) for _ in range(keys)]
        any_fail_raw += any(r.outcome is Outcome.FAIL for r in results)
        any_fail_holm += any(r.outcome is Outcome.FAIL for r in holm_adjust(results))
    assert any_fail_raw / trials > 0.15  # five tests at .05 each: about 1 - .95**5 = .23
    assert any_fail_holm / trials <= 0.08


def test_holm_adjust_recomputes_outcomes() -> None:
    base = [0.7, 0.8, 0.9] * 10
    weak = compare(base, [x - 0.04 for x in base], min_effect=None)
    assert weak.outcome is Outcome.FAIL
    assert weak.p_value is not None and 0.0125 < weak.p_value < 0.05  # fails alone, not among four
    adjusted = holm_adjust([weak] + [compare(base, base, min_effect=None)] * 3)
    assert adjusted[0].p_adjusted == pytest.approx(4 * weak.p_value)
    assert adjusted[0].p_value == weak.p_value
    assert adjusted[0].outcome is Outcome.PASS
    assert [r.outcome for r in adjusted[1:]] == [Outcome.PASS] * 3


def test_skewed_windows_the_docs_warn_about() -> None:
    """docs/gates.md: 29 scores of 0.9 and one 0 (mean 0.87, sd 0.164) pass a threshold of 0.8 by
    Student t at alpha 0.05 (lower bound 0.87 - 1.699 * 0.164 / sqrt(30) = 0.819), the documented
    limitation; at alpha 0.01 (t quantile 2.462: bound 0.796) neither that window nor 30 scores of
    0.9 (0.9 * 0.01**(1/30) = 0.772) passes, as the docs advise."""
    skewed = [0.9] * 29 + [0.0]
    loose = check_threshold(skewed, 0.8)
    assert loose.outcome.value == "pass"
    assert loose.lower == pytest.approx(0.8191, abs=5e-4)
    strict = check_threshold(skewed, 0.8, alpha=0.01)
    assert strict.outcome.value == "inconclusive"
    assert strict.lower == pytest.approx(0.7963, abs=5e-4)
    flat = check_threshold([0.9] * 30, 0.8, alpha=0.01)
    assert flat.outcome.value == "inconclusive"
    assert flat.lower == pytest.approx(0.9 * 0.01 ** (1 / 30), abs=1e-9)
