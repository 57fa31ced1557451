"""Atlas's reward baseline and drift assessment, reproduced to the bit.

Atlas computes these inside its runtime (``Database._aggregate_reward_baseline`` and
``RewardDriftDetector.assess``) right after a session's ``reward_stats`` are written; the result lands
in ``sessions.metadata.drift``. The functions here take plain values instead of a database so that a
test, a gate or a notebook can recompute exactly what Atlas would have stored:

* :func:`reward_baseline` -- the baseline Atlas builds from the newest ``window`` ``reward_stats``;
* :func:`assess_drift` -- the assessment of one session's ``reward_stats`` against such a baseline.

Both follow Atlas's quirks on purpose (they are facts about stored data):
``score_mean`` is preferred to ``score`` in the baseline but ``score`` to ``score_mean`` in the
assessment; a ``score_mean`` key that is present but null gives no score rather than falling back;
values that ``float()`` cannot convert are skipped; the standard deviation is the population one;
``sample_count`` counts rows, not scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean, median, pstdev
from typing import Any

from pytest_atlas._arguments import check_integer, check_type
from pytest_atlas.errors import InvalidArgument

__all__ = [
    "BASELINE_KEYS",
    "DRIFT_METRICS",
    "MAD_NORMALIZATION",
    "assess_drift",
    "drift_document",
    "reward_baseline",
]

#: MAD is scaled by this constant so that it estimates a normal standard deviation (Atlas's value).
MAD_NORMALIZATION = 1.4826

#: the metrics Atlas checks, in the order it checks them; the first beyond the threshold is the reason
DRIFT_METRICS = ("score_z", "score_mad_z", "uncertainty_z", "uncertainty_mad_z")

#: the keys of the baseline kept in ``metadata.drift.baseline`` (the raw lists are dropped there)
BASELINE_KEYS = (
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
    """``float(value)``, or None when the value is None or ``float()`` rejects it (as Atlas does)."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
    except OverflowError:
        raise InvalidArgument(
            f"reward value {value!r} is too large to convert to a float",
            hint="Atlas itself would raise OverflowError on this value; store rewards as ordinary numbers",
        ) from None


def _summary(values: list[float], prefix: str) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}_mean": None, f"{prefix}_median": None, f"{prefix}_stddev": None}
    return {
        f"{prefix}_mean": fmean(values),
        f"{prefix}_median": median(values),
        f"{prefix}_stddev": pstdev(values) if len(values) > 1 else 0.0,
    }


def _check_int(name: str, value: object) -> int:
    return check_integer(name, value, example=50)


def reward_baseline(reward_stats_list: Iterable[Any], window: int = 50) -> dict[str, Any]:
    """The reward baseline Atlas would compute from these ``reward_stats`` values.

    ``reward_stats_list`` holds ``sessions.reward_stats`` values **newest first** (the order of
    Atlas's ``ORDER BY created_at DESC``). As in Atlas: ``None`` entries (SQL NULL) are not selected,
    the first ``max(window, 1)`` remaining entries are taken, and entries that are not objects (a
    JSON string or array) are dropped after that. Remember that Atlas's baseline includes the
    session being assessed, whose stats are written before the assessment runs.

    Returns a dict with ``window``, ``sample_count`` (number of objects, not of scores), the mean,
    median and population standard deviation of ``score`` / ``uncertainty`` / ``best_uncertainty``
    (``*_mean``, ``*_median``, ``*_stddev``; None when there is no value, stddev 0.0 with one value)
    and the raw lists ``scores``, ``uncertainties``, ``best_uncertainties``.
    """
    window = _check_int("window", window)
    if isinstance(reward_stats_list, Mapping | str | bytes):
        raise InvalidArgument(
            f"reward_stats_list must be a list of reward_stats objects, got {type(reward_stats_list).__name__}",
            hint="pass [row['reward_stats'] for row in rows], newest first",
        )
    selected = [entry for entry in reward_stats_list if entry is not None][: max(window, 1)]
    snapshots = [entry for entry in selected if isinstance(entry, Mapping)]
    scores: list[float] = []
    uncertainties: list[float] = []
    best: list[float] = []
    for snapshot in snapshots:
        # present-but-null score_mean gives no score: the fallback happens only when the key is absent
        score = _number(snapshot["score_mean"] if "score_mean" in snapshot else snapshot.get("score"))
        if score is not None:
            scores.append(score)
        uncertainty = _number(snapshot.get("uncertainty_mean"))
        if uncertainty is not None:
            uncertainties.append(uncertainty)
        has_best = "best_uncertainty" in snapshot
        least = _number(snapshot["best_uncertainty"] if has_best else snapshot.get("min_uncertainty"))
        if least is not None:
            best.append(least)
    baseline: dict[str, Any] = {"window": window, "sample_count": len(snapshots)}
    baseline.update(_summary(scores, "score"))
    baseline.update(_summary(uncertainties, "uncertainty"))
    baseline.update(_summary(best, "best_uncertainty"))
    baseline["scores"] = scores
    baseline["uncertainties"] = uncertainties
    baseline["best_uncertainties"] = best
    return baseline


def _z(value: float | None, mean: float | None, stddev: float | None) -> float | None:
    if value is None or mean is None or stddev is None or stddev == 0:
        return None
    return (value - mean) / stddev


def _mad_z(value: float | None, samples: Sequence[Any] | None) -> float | None:
    if value is None or not samples:
        return None
    numbers = [float(sample) for sample in samples]
    centre = median(numbers)
    mad = median([abs(number - centre) for number in numbers])
    if mad == 0:
        return None
    return (value - centre) / (mad * MAD_NORMALIZATION)


def _minus(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None:
        return None
    return value - reference


def _either(mapping: Mapping[str, Any], first: str, second: str) -> Any:
    """``mapping[first]`` unless it is missing or None, then ``mapping[second]``."""
    value = mapping.get(first)
    return value if value is not None else mapping.get(second)


def assess_drift(
    current_stats: Any,
    baseline: Mapping[str, Any],
    *,
    threshold: float = 3.0,
    min_baseline: int = 5,
    window: int = 50,
    learning_key: str | None = None,
) -> dict[str, Any] | None:
    """Atlas's drift assessment of one session's ``reward_stats`` against a baseline.

    ``baseline`` is what :func:`reward_baseline` returns (with its raw lists). Returns None when
    ``current_stats`` is not a dict (Atlas does not assess then); otherwise the dict Atlas stores in
    ``sessions.metadata.drift`` (without the ``message`` key Atlas adds on an alert): ``alert`` and
    ``drift_alert`` (same value), ``reason``, ``score_delta``, ``score_z``, ``score_mad_z``,
    ``uncertainty_delta``, ``uncertainty_z``, ``uncertainty_mad_z``, ``threshold``, ``window``,
    ``learning_key`` and ``baseline`` (the 11 summary keys, lists removed).

    As in Atlas: ``threshold`` below 0 counts as 0, ``window`` below 1 as 1 and ``min_baseline``
    below 0 as 0; with fewer than ``min_baseline`` baseline rows the reason is
    ``"insufficient_baseline"`` and there is no alert; otherwise the first of ``score_z``,
    ``score_mad_z``, ``uncertainty_z``, ``uncertainty_mad_z`` whose absolute value reaches the
    threshold raises the alert and names the reason.
    """
    if not isinstance(baseline, Mapping):
        raise InvalidArgument(
            f"baseline must be a dict as returned by reward_baseline(), got {type(baseline).__name__}",
            hint="compute it with pytest_atlas.stats.reward_baseline(reward_stats_list)",
        )
    window = max(_check_int("window", window), 1)
    min_baseline = max(_check_int("min_baseline", min_baseline), 0)
    # any int or float, as Atlas takes it (its type and value are kept: the result must be Atlas's)
    threshold = max(check_type("threshold", threshold, (int, float), hint="pass threshold=3.0"), 0.0)
    if not isinstance(current_stats, dict):
        return None

    rows = int(baseline.get("sample_count") or 0)
    score = _number(current_stats.get("score"))
    if score is None:
        score = _number(current_stats.get("score_mean"))
    uncertainty = _number(_either(current_stats, "uncertainty_mean", "best_uncertainty"))

    score_mean = _number(baseline.get("score_mean"))
    score_delta = _minus(score, score_mean)
    score_z = _z(score, score_mean, _number(baseline.get("score_stddev")))
    score_mad_z = _mad_z(score, baseline.get("scores"))

    uncertainty_mean = _number(_either(baseline, "uncertainty_mean", "best_uncertainty_mean"))
    uncertainty_stddev = _number(_either(baseline, "uncertainty_stddev", "best_uncertainty_stddev"))
    uncertainty_samples = baseline.get("uncertainties") or baseline.get("best_uncertainties")
    uncertainty_delta = _minus(uncertainty, uncertainty_mean)
    uncertainty_z = _z(uncertainty, uncertainty_mean, uncertainty_stddev)
    uncertainty_mad_z = _mad_z(uncertainty, uncertainty_samples)

    metrics = {
        "score_z": score_z,
        "score_mad_z": score_mad_z,
        "uncertainty_z": uncertainty_z,
        "uncertainty_mad_z": uncertainty_mad_z,
    }
    alert = False
    reason: str | None = None
    if rows >= min_baseline:
        for name in DRIFT_METRICS:
            value = metrics[name]
            if value is not None and abs(value) >= threshold:
                alert, reason = True, name
                break
    else:
        reason = "insufficient_baseline"

    return {
        "alert": alert,
        "drift_alert": alert,
        "reason": reason,
        "score_delta": score_delta,
        "score_z": score_z,
        "score_mad_z": score_mad_z,
        "uncertainty_delta": uncertainty_delta,
        "uncertainty_z": uncertainty_z,
        "uncertainty_mad_z": uncertainty_mad_z,
        "threshold": threshold,
        "window": window,
        "learning_key": learning_key,
        "baseline": {key: baseline.get(key) for key in BASELINE_KEYS},
    }


def drift_document(
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    threshold: float,
    window: int,
    min_baseline: int,
    learning_key: str | None,
) -> dict[str, Any]:
    """The drift document Atlas stores for ``current`` (reward_stats) against ``baseline``
    (:func:`reward_baseline` of the window, newest first, current session included)."""
    document = assess_drift(
        dict(current),
        baseline,
        threshold=threshold,
        min_baseline=min_baseline,
        window=window,
        learning_key=learning_key,
    )
    assert document is not None  # current is a dict
    if document["alert"]:
        document["message"] = f"Reward drift alert ({document['reason'] or 'threshold'})"
    return document
