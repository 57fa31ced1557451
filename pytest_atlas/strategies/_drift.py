"""The reward baseline and drift decision, as Atlas computes them (atlas-payloads.md §7.2, §7.3).

Generated ``metadata.drift`` documents and the reward scenarios are computed with these functions,
so what a graph says about drift is what Atlas would have written for the same rows. The test
suite checks them against Atlas's own ``RewardDriftDetector`` and ``_aggregate_reward_baseline``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean, median, pstdev
from typing import Any

__all__ = [
    "BASELINE_KEYS",
    "MAD_SCALE",
    "aggregate_baseline",
    "assess",
    "drift_document",
]

#: the constant that turns a median absolute deviation into a standard-deviation-like scale
MAD_SCALE = 1.4826

#: the keys of ``drift.baseline`` (the raw sample lists are left out)
BASELINE_KEYS: tuple[str, ...] = (
    "window",
    "sample_count",
    "score_mean",
    "score_median",
    "score_stddev",
    "uncertainty_mean",
    "uncertainty_median",
    "uncertainty_stddev",
    "best_uncertainty_mean",
    "best_uncertainty_median",
    "best_uncertainty_stddev",
)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _summary(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    spread = pstdev(values) if len(values) > 1 else 0.0
    return fmean(values), median(values), spread


def aggregate_baseline(snapshots: Iterable[Mapping[str, Any]], *, window: int) -> dict[str, Any]:
    """The baseline of the given ``reward_stats`` documents (newest first, already cut to ``window``)."""
    rows = list(snapshots)
    scores: list[float] = []
    uncertainties: list[float] = []
    best: list[float] = []
    for row in rows:
        score = _number(row["score_mean"] if "score_mean" in row else row.get("score"))
        if score is not None:
            scores.append(score)
        uncertainty = _number(row.get("uncertainty_mean"))
        if uncertainty is not None:
            uncertainties.append(uncertainty)
        lowest = _number(row["best_uncertainty"] if "best_uncertainty" in row else row.get("min_uncertainty"))
        if lowest is not None:
            best.append(lowest)
    baseline: dict[str, Any] = {"window": window, "sample_count": len(rows)}
    for prefix, values in (("score", scores), ("uncertainty", uncertainties), ("best_uncertainty", best)):
        mean, mid, spread = _summary(values)
        baseline[f"{prefix}_mean"] = mean
        baseline[f"{prefix}_median"] = mid
        baseline[f"{prefix}_stddev"] = spread
    baseline["scores"] = scores
    baseline["uncertainties"] = uncertainties
    baseline["best_uncertainties"] = best
    return baseline


def _z(value: float | None, centre: float | None, spread: float | None) -> float | None:
    if value is None or centre is None or spread is None or spread == 0:
        return None
    return (value - centre) / spread


def _robust_z(value: float | None, samples: Sequence[float] | None) -> float | None:
    if value is None or not samples:
        return None
    mid = median(samples)
    mad = median([abs(sample - mid) for sample in samples])
    if mad == 0:
        return None
    return (value - mid) / (mad * MAD_SCALE)


def _first_number(*values: Any) -> float | None:
    for value in values:
        if value is not None:
            return _number(value)
    return None


def assess(
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    threshold: float = 3.0,
    min_baseline: int = 5,
) -> dict[str, Any]:
    """Deltas, z-scores, alert and reason for ``current`` against ``baseline`` (not yet a document)."""
    score = _number(current.get("score"))
    if score is None:
        score = _number(current.get("score_mean"))
    uncertainty = _first_number(current.get("uncertainty_mean"), current.get("best_uncertainty"))
    score_mean = _number(baseline.get("score_mean"))
    unc_mean = _first_number(baseline.get("uncertainty_mean"), baseline.get("best_uncertainty_mean"))
    unc_spread = _first_number(baseline.get("uncertainty_stddev"), baseline.get("best_uncertainty_stddev"))
    unc_samples = baseline.get("uncertainties") or baseline.get("best_uncertainties")
    metrics: dict[str, Any] = {
        "score_delta": None if score is None or score_mean is None else score - score_mean,
        "score_z": _z(score, score_mean, _number(baseline.get("score_stddev"))),
        "score_mad_z": _robust_z(score, baseline.get("scores")),
        "uncertainty_delta": None if uncertainty is None or unc_mean is None else uncertainty - unc_mean,
        "uncertainty_z": _z(uncertainty, unc_mean, unc_spread),
        "uncertainty_mad_z": _robust_z(uncertainty, unc_samples),
    }
    alert = False
    reason: str | None = None
    if int(baseline.get("sample_count") or 0) >= min_baseline:
        for name in ("score_z", "score_mad_z", "uncertainty_z", "uncertainty_mad_z"):
            value = metrics[name]
            if value is not None and abs(value) >= threshold:
                alert, reason = True, name
                break
    else:
        reason = "insufficient_baseline"
    metrics["alert"] = alert
    metrics["reason"] = reason
    return metrics


def drift_document(
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    threshold: float,
    window: int,
    learning_key: str | None,
) -> dict[str, Any]:
    """``sessions.metadata.drift`` as Atlas writes it (``message`` only on alert)."""
    alert = bool(metrics["alert"])
    document: dict[str, Any] = {
        "alert": alert,
        "drift_alert": alert,
        "reason": metrics["reason"],
        "score_delta": metrics["score_delta"],
        "score_z": metrics["score_z"],
        "score_mad_z": metrics["score_mad_z"],
        "uncertainty_delta": metrics["uncertainty_delta"],
        "uncertainty_z": metrics["uncertainty_z"],
        "uncertainty_mad_z": metrics["uncertainty_mad_z"],
        "threshold": threshold,
        "window": window,
        "learning_key": learning_key,
        "baseline": {key: baseline.get(key) for key in BASELINE_KEYS},
    }
    if alert:
        document["message"] = f"Reward drift alert ({metrics['reason'] or 'threshold'})"
    return document
