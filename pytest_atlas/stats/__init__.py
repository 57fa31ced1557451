"""Reward statistics, pure (no database, no pytest).

Two families:

* Atlas's own drift machinery, reproduced exactly: :func:`reward_baseline` and :func:`assess_drift`
  (defined with the rest of Atlas's rules in :mod:`pytest_atlas.domain`, re-exported here).
* Noise-aware gate statistics: :func:`mean_bound`, :func:`check_threshold`, :func:`compare`,
  :func:`compare_paired`, :func:`compare_shares`, :func:`holm` / :func:`holm_adjust`, :func:`minimum_detectable_effect`,
  each ending in an :class:`Outcome` (pass, fail, inconclusive).

The gate statistics need numpy and scipy; they are imported on first use of one of their names
(PEP 562), so that the Atlas functions (used by the data-generation strategies) stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_atlas._lazy import lazy_exports
from pytest_atlas.domain import (
    BASELINE_KEYS,
    DRIFT_METRICS,
    MAD_NORMALIZATION,
    assess_drift,
    reward_baseline,
)

_EXPORTS: dict[str, str] = dict.fromkeys(
    [
        "Comparison",
        "MeanBound",
        "Outcome",
        "ThresholdCheck",
        "check_threshold",
        "compare",
        "compare_paired",
        "compare_shares",
        "holm",
        "holm_adjust",
        "mean_bound",
        "minimum_detectable_effect",
    ],
    "pytest_atlas.stats._compare",
)
_EXPORTS["Sample"] = "pytest_atlas.stats._sample"
_EXPORTS["ShareComparison"] = _EXPORTS["compare_shares"] = "pytest_atlas.stats._proportions"
_EXPORTS["METHODS"] = "pytest_atlas.stats._options"
_EXPORTS["METHOD_CHOICES"] = "pytest_atlas.stats._options"
for _name in ("canonical_method", "check_alpha", "check_power", "check_resamples", "check_seed"):
    _EXPORTS[_name] = "pytest_atlas.stats._options"

if TYPE_CHECKING:
    from pytest_atlas.stats._compare import Comparison as Comparison
    from pytest_atlas.stats._compare import MeanBound as MeanBound
    from pytest_atlas.stats._compare import Outcome as Outcome
    from pytest_atlas.stats._compare import ThresholdCheck as ThresholdCheck
    from pytest_atlas.stats._compare import check_threshold as check_threshold
    from pytest_atlas.stats._compare import compare as compare
    from pytest_atlas.stats._compare import compare_paired as compare_paired
    from pytest_atlas.stats._compare import holm as holm
    from pytest_atlas.stats._compare import holm_adjust as holm_adjust
    from pytest_atlas.stats._compare import mean_bound as mean_bound
    from pytest_atlas.stats._compare import minimum_detectable_effect as minimum_detectable_effect
    from pytest_atlas.stats._options import METHOD_CHOICES as METHOD_CHOICES
    from pytest_atlas.stats._options import METHODS as METHODS
    from pytest_atlas.stats._options import canonical_method as canonical_method
    from pytest_atlas.stats._options import check_alpha as check_alpha
    from pytest_atlas.stats._options import check_power as check_power
    from pytest_atlas.stats._options import check_resamples as check_resamples
    from pytest_atlas.stats._options import check_seed as check_seed
    from pytest_atlas.stats._proportions import ShareComparison as ShareComparison
    from pytest_atlas.stats._proportions import compare_shares as compare_shares
    from pytest_atlas.stats._sample import Sample as Sample

__all__ = [
    "BASELINE_KEYS",
    "DRIFT_METRICS",
    "MAD_NORMALIZATION",
    "METHODS",
    "METHOD_CHOICES",
    "Comparison",
    "MeanBound",
    "Outcome",
    "Sample",
    "ShareComparison",
    "ThresholdCheck",
    "assess_drift",
    "canonical_method",
    "check_alpha",
    "check_power",
    "check_resamples",
    "check_seed",
    "check_threshold",
    "compare",
    "compare_paired",
    "compare_shares",
    "holm",
    "holm_adjust",
    "mean_bound",
    "minimum_detectable_effect",
    "reward_baseline",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
