"""Reward statistics, pure (no database, no pytest).

Two families:

* Atlas's own drift machinery, reproduced exactly: :func:`reward_baseline` and :func:`assess_drift`.
* Noise-aware gate statistics: :func:`mean_bound`, :func:`check_threshold`, :func:`compare`,
  :func:`compare_paired`, :func:`holm` / :func:`holm_adjust`, :func:`minimum_detectable_effect`,
  each ending in an :class:`Outcome` (pass, fail, inconclusive).
"""

from __future__ import annotations

from pytest_atlas.stats._atlas import (
    BASELINE_KEYS,
    DRIFT_METRICS,
    MAD_NORMALIZATION,
    assess_drift,
    reward_baseline,
)
from pytest_atlas.stats._compare import (
    METHODS,
    Comparison,
    MeanBound,
    Outcome,
    ThresholdCheck,
    check_threshold,
    compare,
    compare_paired,
    holm,
    holm_adjust,
    mean_bound,
    minimum_detectable_effect,
)
from pytest_atlas.stats._sample import Sample

__all__ = [
    "BASELINE_KEYS",
    "DRIFT_METRICS",
    "MAD_NORMALIZATION",
    "METHODS",
    "Comparison",
    "MeanBound",
    "Outcome",
    "Sample",
    "ThresholdCheck",
    "assess_drift",
    "check_threshold",
    "compare",
    "compare_paired",
    "holm",
    "holm_adjust",
    "mean_bound",
    "minimum_detectable_effect",
    "reward_baseline",
]
