"""A noise-aware test of a drop in a share: did the candidate's share fall by more than ``tolerance``?

Used by the fields gate (the share of sessions that carry a JSON path), with the same three
outcomes and the same rules as the reward regression test:

* ``fail`` -- the one-sided p-value (after Holm's correction across the family) is below ``alpha``;
* ``pass`` -- no drop beyond ``tolerance`` was found *and* a drop of ``min_effect`` would have been
  found with probability ``power``;
* ``inconclusive`` -- neither: the windows are too small to tell.

The statistic is a Wald z on the Agresti-Caffo adjusted shares (one success and one failure added
to each window). Unlike the plain Wald test it is defined when a share is exactly 0 or 1 (the
usual case for a field every session carries), and its false-alarm rate stays close to ``alpha``
down to a few dozen sessions per window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy import stats as sps

from pytest_atlas._arguments import check_integer, check_probability
from pytest_atlas._outcome import Outcome
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.stats._options import check_alpha, check_power

__all__ = ["ShareComparison", "compare_shares"]


@dataclass(frozen=True)
class ShareComparison:
    """A one-sided test of H1: the candidate's share is lower than the baseline's by more than
    ``tolerance``. ``difference`` is candidate share minus baseline share (negative = a drop);
    ``drop_detectable`` the drop found with probability ``power`` at these window sizes."""

    baseline_hits: int
    baseline_n: int
    candidate_hits: int
    candidate_n: int
    tolerance: float
    min_effect: float | None
    alpha: float
    power: float
    p_value: float | None
    p_adjusted: float | None
    drop_detectable: float
    outcome: Outcome
    reason: str

    @property
    def baseline_share(self) -> float:
        return self.baseline_hits / self.baseline_n if self.baseline_n else math.nan

    @property
    def candidate_share(self) -> float:
        return self.candidate_hits / self.candidate_n if self.candidate_n else math.nan

    @property
    def difference(self) -> float:
        return self.candidate_share - self.baseline_share

    def with_p_adjusted(self, p_adjusted: float | None) -> ShareComparison:
        """The same comparison decided on a (Holm-)adjusted p-value."""
        outcome, reason = _outcome(self, self.p_value if p_adjusted is None else p_adjusted)
        return replace(self, p_adjusted=p_adjusted, outcome=outcome, reason=reason)


def _p(p: float) -> str:
    return "p<1e-16" if p < 1e-16 else f"p={p:.3g}"


def _outcome(result: ShareComparison, p: float | None) -> tuple[Outcome, str]:
    if result.baseline_n == 0 or result.candidate_n == 0:
        return Outcome.INCONCLUSIVE, f"no {'baseline' if result.baseline_n == 0 else 'candidate'} sessions"
    shares = f"{result.baseline_share:.1%} -> {result.candidate_share:.1%}"
    assert p is not None
    if p < result.alpha:
        beyond = f" (tolerated {result.tolerance:.0%})" if result.tolerance else ""
        return Outcome.FAIL, (f"share dropped {shares}{beyond}, beyond noise ({_p(p)} < alpha={result.alpha:g})")
    if result.min_effect is None or result.drop_detectable <= result.min_effect:
        return (
            Outcome.PASS,
            f"no drop beyond noise ({shares}, {_p(p)}); a drop of {result.drop_detectable:.1%} would be caught",
        )
    return Outcome.INCONCLUSIVE, (
        f"no drop beyond noise ({shares}, {_p(p)}), but these windows can only detect a drop of "
        f"{result.drop_detectable:.1%} (wanted {result.min_effect:.0%}): add sessions"
    )


def compare_shares(
    baseline_hits: int,
    baseline_n: int,
    candidate_hits: int,
    candidate_n: int,
    *,
    tolerance: float = 0.0,
    min_effect: float | None = 0.25,
    alpha: float = 0.05,
    power: float = 0.8,
) -> ShareComparison:
    """Did the share ``candidate_hits / candidate_n`` drop below ``baseline_hits / baseline_n`` by more
    than ``tolerance``?

    >>> compare_shares(60, 60, 30, 60, tolerance=0.05).outcome.value
    'fail'
    >>> compare_shares(60, 60, 60, 60, tolerance=0.05).outcome.value
    'pass'
    >>> compare_shares(3, 3, 3, 3, tolerance=0.05).outcome.value
    'inconclusive'
    """
    b_hits, b_n = check_integer("baseline_hits", baseline_hits, low=0), check_integer("baseline_n", baseline_n, low=0)
    c_hits = check_integer("candidate_hits", candidate_hits, low=0)
    c_n = check_integer("candidate_n", candidate_n, low=0)
    if b_hits > b_n or c_hits > c_n:
        raise InvalidArgument(
            f"hits exceed their window ({b_hits}/{b_n}, {c_hits}/{c_n})", hint="hits count sessions of the window"
        )
    tolerance = check_probability("tolerance", tolerance, high_open=True)
    alpha, power = check_alpha(alpha), check_power(power)
    if min_effect is not None:
        min_effect = check_probability("min_effect", min_effect, low_open=True)
        if min_effect <= tolerance:
            raise InvalidArgument(
                f"min_effect ({min_effect:g}) must be larger than tolerance ({tolerance:g})",
                hint="min_effect is the drop that must be detectable; tolerance the drop that is accepted",
            )
    p_value: float | None = None
    detectable = math.inf
    if b_n and c_n:
        share_b = (b_hits + 1) / (b_n + 2)
        share_c = (c_hits + 1) / (c_n + 2)
        se = math.sqrt(share_b * (1 - share_b) / (b_n + 2) + share_c * (1 - share_c) / (c_n + 2))
        p_value = float(sps.norm.cdf((share_c - share_b + tolerance) / se))
        detectable = tolerance + (float(sps.norm.ppf(1 - alpha)) + float(sps.norm.ppf(power))) * se
    draft = ShareComparison(
        b_hits, b_n, c_hits, c_n, tolerance, min_effect, alpha, power, p_value, None, detectable, Outcome.PASS, ""
    )
    outcome, reason = _outcome(draft, p_value)
    return replace(draft, outcome=outcome, reason=reason)
