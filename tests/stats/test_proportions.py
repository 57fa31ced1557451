"""compare_shares: the two-proportion test of the fields gate, calibrated by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_atlas.errors import InvalidArgument
from pytest_atlas.stats import compare_shares


@pytest.mark.parametrize(
    ("share", "n", "tolerance"), [(0.9, 60, 0.0), (0.5, 30, 0.0), (0.97, 200, 0.0), (0.9, 60, 0.05)]
)
def test_the_false_alarm_rate_stays_at_alpha_when_nothing_dropped_beyond_the_tolerance(
    share: float, n: int, tolerance: float
) -> None:
    rng = np.random.default_rng(1)
    base = rng.binomial(n, share, 3000)
    cand = rng.binomial(n, share - tolerance, 3000)  # a drop of exactly the tolerance: the worst accepted case
    fails = [
        compare_shares(int(b), n, int(c), n, tolerance=tolerance, min_effect=None).outcome.value == "fail"
        for b, c in zip(base, cand, strict=True)
    ]
    assert 0.015 <= float(np.mean(fails)) <= 0.065


def test_a_halved_share_is_caught_at_sixty_sessions_per_window() -> None:
    rng = np.random.default_rng(2)
    base, cand = rng.binomial(60, 0.9, 2000), rng.binomial(60, 0.45, 2000)
    fails = [
        compare_shares(int(b), 60, int(c), 60, tolerance=0.05).outcome.value == "fail"
        for b, c in zip(base, cand, strict=True)
    ]
    assert float(np.mean(fails)) > 0.99


def test_outcomes_follow_the_gate_rules() -> None:
    assert compare_shares(60, 60, 30, 60, tolerance=0.05).outcome.value == "fail"
    unchanged = compare_shares(60, 60, 60, 60, tolerance=0.05)
    assert unchanged.outcome.value == "pass" and unchanged.drop_detectable <= 0.2
    tiny = compare_shares(3, 3, 3, 3, tolerance=0.05)
    assert tiny.outcome.value == "inconclusive" and "can only detect a drop of" in tiny.reason
    assert compare_shares(3, 3, 3, 3, tolerance=0.05, min_effect=None).outcome.value == "pass"
    # Holm's adjusted p decides: a p of 0.03 adjusted to 0.09 is no longer a failure
    close = compare_shares(50, 60, 38, 60, tolerance=0.05)
    assert close.p_value is not None and close.p_value < 0.05 and close.outcome.value == "fail"
    assert close.with_p_adjusted(0.09).outcome.value != "fail"
    assert compare_shares(0, 0, 3, 3).outcome.value == "inconclusive"


def test_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="hits exceed their window"):
        compare_shares(5, 4, 1, 1)
    with pytest.raises(InvalidArgument, match="min_effect"):
        compare_shares(1, 2, 1, 2, tolerance=0.3, min_effect=0.2)
    with pytest.raises(InvalidArgument, match="alpha"):
        compare_shares(1, 2, 1, 2, alpha=0.7)
    with pytest.raises(InvalidArgument, match="baseline_hits"):
        compare_shares(True, 2, 1, 2)
