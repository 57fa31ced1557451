"""Samples without spread (every score the same, every paired difference the same): the t model
gives them bounds of zero width, which would pass a gate on no evidence. They are bounded
distribution-free from the range of scores instead. The expected values here are worked out by
hand or by scipy's binomial distribution (the least favourable two-point distributions), never by
the functions under test."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pytest_atlas.stats import (
    Outcome,
    Sample,
    check_threshold,
    compare,
    compare_paired,
    holm_adjust,
    mean_bound,
    minimum_detectable_effect,
)

METHODS = ["welch", "mann-whitney", "bootstrap"]


@pytest.mark.parametrize("method", METHODS)
def test_two_equal_scores_do_not_pass_a_threshold(method: str) -> None:
    """The review's case: 0.9 and 0.9 passed a threshold of 0.8 (lower bound = mean = 0.9)."""
    check = check_threshold([0.9, 0.9], 0.8, method=method)
    assert check.outcome is Outcome.INCONCLUSIVE
    # by hand: q = 1 - sqrt(0.05) = 0.776393; lower = 0.9 * sqrt(0.05), upper = 0.9 + 0.1 * q
    assert check.lower == pytest.approx(0.9 * 0.2236068, abs=1e-6)
    assert check.upper == pytest.approx(0.9 + 0.1 * 0.7763932, abs=1e-6)
    assert check.reason.startswith("all 2 scores are 0.9000: no spread")
    assert "it takes 26 such scores to pass" in check.reason  # 0.9 * 0.05**(1/26) = 0.8021 >= 0.8 > 0.7984


@pytest.mark.parametrize("method", METHODS)
def test_many_equal_scores_pass_and_the_bound_is_the_binomial_one(method: str) -> None:
    check = check_threshold([1.0] * 500, 0.9, method=method)
    assert check.outcome is Outcome.PASS and check.reason.startswith("all 500 scores are 1.0000: no spread")
    # least favourable distribution: mass 1 - m at 1.0 and m at 0; the chance that 500 draws all
    # miss 0 is alpha exactly at the lower bound
    assert sps.binom.pmf(0, 500, 1 - check.lower) == pytest.approx(0.05, rel=1e-9)
    assert check.lower == pytest.approx(0.994026, abs=1e-6)
    assert math.isnan(check.shortfall_detectable)


def test_equal_scores_below_the_threshold_fail_with_the_exact_p_value() -> None:
    check = check_threshold([0.5] * 50, 0.8)
    assert check.outcome is Outcome.FAIL
    # the likeliest way to see 50 scores of 0.5 with a mean of 0.8: mass 0.4 at 0.5 and 0.6 at 1.0
    assert check.p_value == pytest.approx(sps.binom.pmf(50, 50, 0.4), rel=1e-9)
    assert check.upper == pytest.approx(0.5 + 0.5 * (1 - 0.05 ** (1 / 50)), abs=1e-12)
    # two scores of 0.5 cannot show it: (0.2 / 0.5)**2 = 0.16 > alpha
    few = check_threshold([0.5, 0.5], 0.8)
    assert few.outcome is Outcome.INCONCLUSIVE and few.p_value == pytest.approx(0.16)
    assert "scores of 0.5000 can never show a mean above the threshold" in few.reason


def test_equal_scores_outside_the_range_give_no_bound() -> None:
    check = check_threshold([1.2] * 1000, 0.8)
    assert check.outcome is Outcome.INCONCLUSIVE and check.p_value is None
    assert math.isnan(check.lower) and math.isnan(check.upper)
    assert check.reason == (
        "all 1000 scores are 1.2000: no spread, so the t model does not hold, and 1.2000 is outside [0, 1]: "
        "nothing bounds the mean"
    )


def test_mean_bound_without_spread_and_a_rounded_table() -> None:
    bound = mean_bound([0.9, 0.9])
    assert bound.no_spread and bound.lower == pytest.approx(0.2012461, abs=1e-6)
    # a gate's table rounds to 4 digits: one distinct value is no spread, even if the exact
    # variance is a rounding residue above zero
    table = Sample.from_counts([0.9], [2], exact_mean=0.9, exact_variance=1e-33)
    assert mean_bound(table).no_spread and check_threshold(table, 0.8).outcome is Outcome.INCONCLUSIVE
    spread = mean_bound([0.9, 0.8])
    assert not spread.no_spread


@pytest.mark.parametrize("method", METHODS)
def test_two_constant_windows_are_not_a_verdict(method: str) -> None:
    """The review's cases: equal constants passed (a drop of 0 detectable), different constants
    failed with p = 0, on two sessions a window."""
    same = compare([0.9, 0.9], [0.9, 0.9], method=method)
    assert same.outcome is Outcome.INCONCLUSIVE
    assert same.reason.startswith("all 2 baseline scores are 0.9000 and all 2 candidate scores are 0.9000: no spread")
    dropped = compare([0.8, 0.8], [0.7, 0.7], method=method)
    assert dropped.outcome is Outcome.INCONCLUSIVE and dropped.p_value == 1.0
    # each window at alpha / 2: q = 1 - sqrt(0.025); the difference is at least 0.7 sqrt(.025) - (0.8 + 0.2 q)
    q = 1 - math.sqrt(0.025)
    assert dropped.lower == pytest.approx(0.7 * (1 - q) - (0.8 + 0.2 * q), abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_large_constant_windows_decide(method: str) -> None:
    same = compare([1.0] * 500, [1.0] * 500, method=method)
    assert same.outcome is Outcome.PASS
    assert same.drop_detectable == pytest.approx(1 - 0.025 ** (1 / 500), abs=1e-12)
    dropped = compare([1.0] * 20, [0.5] * 20, method=method)
    assert dropped.outcome is Outcome.FAIL
    # by hand: the upper bound on the difference, 0.5 + 0.5 (1 - x) - x with x = (p / 2)**(1/20),
    # reaches 0 at x = 2/3: p = 2 (2/3)**20
    assert dropped.p_value == pytest.approx(2 * (2 / 3) ** 20, rel=1e-6)


def test_a_constant_baseline_against_a_noisy_candidate_uses_both_bounds() -> None:
    noisy = [0.79, 0.81, 0.8, 0.82, 0.78, 0.8, 0.79, 0.81, 0.8, 0.8]
    result = compare([0.8] * 10, noisy)
    assert result.outcome is Outcome.INCONCLUSIVE  # 10 sessions at 0.8 do not pin the baseline's mean
    assert result.reason.startswith("all 10 baseline scores are 0.8000: no spread")
    t_low = sps.ttest_1samp(noisy, 0.0).confidence_interval(0.95).low  # one-sided at 0.025
    assert result.lower == pytest.approx(t_low - (0.8 + 0.2 * (1 - 0.025**0.1)), abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_paired_differences_without_spread(method: str) -> None:
    same = compare_paired([0.5, 0.7], [0.5, 0.7], method=method)
    assert same.outcome is Outcome.INCONCLUSIVE
    assert same.reason.startswith("all 2 paired differences are 0.0000: no spread")
    # every task 0.1 lower, in floating point not quite equal steps (0.8 - 0.7 != 0.9 - 0.8)
    lower = compare_paired([0.8, 0.9] * 2, [0.7, 0.8] * 2, method=method)
    assert lower.outcome is Outcome.INCONCLUSIVE  # before: p ~ 0 on four tasks
    # D in [-1, 1], all D = -0.1: the likeliest way with a mean of 0 puts 1/1.1 of the mass at -0.1
    assert lower.p_value == pytest.approx(sps.binom.pmf(4, 4, 1 / 1.1), rel=1e-9)
    many = compare_paired([0.8, 0.9] * 100, [0.7, 0.8] * 100, method=method)
    assert many.outcome is Outcome.FAIL and many.p_value == pytest.approx((1 / 1.1) ** 200, rel=1e-9)
    outside = compare_paired([1.5, 1.5], [1.5, 1.5], method=method)
    assert outside.outcome is Outcome.INCONCLUSIVE and outside.p_value is None


def test_holm_keeps_the_no_spread_reason() -> None:
    checks = holm_adjust([check_threshold([0.9, 0.9], 0.8), check_threshold([0.5] * 50, 0.8)])
    assert [c.outcome for c in checks] == [Outcome.INCONCLUSIVE, Outcome.FAIL]
    assert checks[0].reason.startswith("all 2 scores are 0.9000: no spread")
    assert checks[1].reason.startswith("all 50 scores are 0.5000: no spread")


def test_no_detectable_effect_from_a_window_without_spread() -> None:
    assert math.isnan(minimum_detectable_effect(10, 10, 0.0))
    assert math.isnan(minimum_detectable_effect(10, 10, 0.1, 0.0))
    assert minimum_detectable_effect(10, 10, 0.1) > 0


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(0.01, 1.0),
    threshold=st.floats(0.0, 0.99),
    n=st.integers(2, 5000),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_a_pass_on_equal_scores_is_a_false_pass_at_most_alpha(
    value: float, threshold: float, n: int, alpha: float
) -> None:
    """Soundness: if the true mean were ``threshold``, the likeliest way to draw ``n`` scores all at
    ``value`` (mass ``threshold / value`` at ``value``, the rest at 0) has chance at most ``alpha``
    whenever the check passes them."""
    check = check_threshold([value] * n, threshold, alpha=alpha)
    if check.outcome is Outcome.PASS:
        assert value > threshold
        assert sps.binom.pmf(n, n, threshold / value) <= alpha * (1 + 1e-9)
    if check.outcome is Outcome.FAIL:  # and the same for a false failure: mass at value and at 1
        assert value < threshold
        assert sps.binom.pmf(n, n, (1 - threshold) / (1 - value)) <= alpha * (1 + 1e-9)
