"""reward_baseline / assess_drift against Atlas's own functions (arc-atlas 0.1.16), value for value."""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_atlas import InvalidArgument
from pytest_atlas.stats import BASELINE_KEYS, MAD_NORMALIZATION, assess_drift, reward_baseline

# litellm (imported by Atlas's storage module) would otherwise try to download a price list
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
atlas_database = pytest.importorskip("atlas.runtime.storage.database", reason="arc-atlas (test extra)")
atlas_drift = pytest.importorskip("atlas.runtime.learning.drift", reason="arc-atlas (test extra)")


# ---------------------------------------------------------------------------------------------------
# Atlas's functions, driven without a database
# ---------------------------------------------------------------------------------------------------


def atlas_baseline(reward_stats_list: list[Any], window: int) -> dict[str, Any]:
    """What Database.fetch_reward_baseline returns: SQL selects non-NULL rows, newest first, LIMIT
    max(window, 1); Python keeps the objects and aggregates them."""
    rows = [entry for entry in reward_stats_list if entry is not None][: max(window, 1)]
    payloads = [row for row in rows if isinstance(row, dict)]
    result: dict[str, Any] = atlas_database.Database._aggregate_reward_baseline(payloads, window=window)
    return result


class _BaselineOnly:
    """Stands in for Atlas's Database: the detector only calls fetch_reward_baseline."""

    def __init__(self, baseline: dict[str, Any]) -> None:
        self.baseline = baseline
        self.calls: list[tuple[Any, int]] = []

    async def fetch_reward_baseline(self, learning_key: Any = None, *, window: int = 50) -> dict[str, Any]:
        self.calls.append((learning_key, window))
        return self.baseline


def atlas_assess(
    current: Any,
    baseline: dict[str, Any],
    *,
    threshold: float,
    min_baseline: int,
    window: int,
    learning_key: str | None,
) -> dict[str, Any] | None:
    detector = atlas_drift.RewardDriftDetector(window=window, z_threshold=threshold, min_baseline=min_baseline)
    database = _BaselineOnly(baseline)
    assessment = asyncio.run(detector.assess(database, learning_key=learning_key, current_stats=current))
    if assessment is None:
        return None
    assert database.calls == [(learning_key, max(window, 1))]
    result: dict[str, Any] = assessment.to_dict()
    return result


def same(ours: Any, theirs: Any) -> bool:
    """Equal values of equal types, NaN equal to NaN, recursively."""
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, float):
        return (math.isnan(ours) and math.isnan(theirs)) or ours == theirs
    if isinstance(ours, dict):
        return ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs)


def outcome(function: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "value", function(*args, **kwargs)
    except Exception as exc:  # compared by type: both sides must fail alike
        return "raised", type(exc).__name__


# ---------------------------------------------------------------------------------------------------
# generated inputs: everything real data holds, and what it should not
# ---------------------------------------------------------------------------------------------------

scores = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False, width=32)
odd_values = st.sampled_from(["n/a", "", "0.5", " 0.25 ", "1e-1", "nan", "inf", True, False, [0.5], {"v": 1}])
values = st.one_of(
    scores,
    scores,
    scores,
    st.none(),
    st.integers(min_value=-2, max_value=3),
    st.sampled_from([0.0, 0.5, 1.0]),  # ties: zero variance and zero MAD
    odd_values,
)
STAT_KEYS = [
    "score",
    "score_mean",
    "uncertainty_mean",
    "uncertainty_stddev",
    "best_uncertainty",
    "min_uncertainty",
    "score_stddev",
    "sample_count",
]
reward_stats = st.dictionaries(st.sampled_from(STAT_KEYS), values, max_size=len(STAT_KEYS))
realistic = st.builds(
    lambda s, u, b: {
        "score": s,
        "score_mean": s,
        "score_stddev": 0.05,
        "sample_count": 3,
        "uncertainty_mean": u,
        "uncertainty_stddev": 0.02,
        "best_uncertainty": b,
        "timestamp": "2025-01-01T00:00:00+00:00",
    },
    st.sampled_from([0.6, 0.7, 0.75, 0.8, 0.9]) | scores,
    scores,
    scores,
)
entries = st.one_of(realistic, realistic, reward_stats, st.none(), st.sampled_from(["{}", "text", [1, 2], 3]))
entry_lists = st.lists(entries, max_size=70)
windows = st.sampled_from([50, 1, 0, -3, 5, 10, 60])
thresholds = st.sampled_from([3.0, 0.0, 0, 3, -1.0, 1.5, 0.5, 10.0])
min_baselines = st.sampled_from([5, 0, -2, 1, 3, 20, 100])
keys = st.sampled_from([None, "", "a" * 64])


@settings(max_examples=400, deadline=None)
@given(entry_lists, windows)
def test_reward_baseline_matches_atlas(reward_stats_list: list[Any], window: int) -> None:
    ours = outcome(reward_baseline, reward_stats_list, window=window)
    theirs = outcome(atlas_baseline, reward_stats_list, window)
    if theirs[0] == "raised":
        assert ours[0] == "raised"
    else:
        assert ours[0] == "value" and same(ours[1], theirs[1]), (ours, theirs)


@settings(max_examples=400, deadline=None)
@given(
    entry_lists,
    windows,
    st.one_of(reward_stats, realistic, st.none(), st.just("text")),
    thresholds,
    min_baselines,
    keys,
)
def test_assess_drift_matches_atlas(
    history: list[Any], window: int, current: Any, threshold: float, min_baseline: int, learning_key: str | None
) -> None:
    stored = outcome(reward_baseline, history, window=max(window, 1))
    if stored[0] == "raised":
        return  # covered by the baseline test
    baseline = stored[1]
    ours = outcome(
        assess_drift,
        current,
        baseline,
        threshold=threshold,
        min_baseline=min_baseline,
        window=window,
        learning_key=learning_key,
    )
    theirs = outcome(
        atlas_assess,
        current,
        baseline,
        threshold=threshold,
        min_baseline=min_baseline,
        window=window,
        learning_key=learning_key,
    )
    if theirs[0] == "raised":
        assert ours[0] == "raised"
    else:
        assert ours[0] == "value" and same(ours[1], theirs[1]), (ours, theirs)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "window",
                "sample_count",
                "score_mean",
                "score_median",
                "score_stddev",
                "uncertainty_mean",
                "uncertainty_stddev",
                "best_uncertainty_mean",
                "best_uncertainty_stddev",
                "scores",
                "uncertainties",
                "best_uncertainties",
            ]
        ),
        st.one_of(st.none(), scores, st.integers(0, 9), st.lists(scores, max_size=8), st.just([])),
    ),
    st.one_of(reward_stats, realistic),
    thresholds,
    min_baselines,
)
def test_assess_drift_matches_atlas_on_hand_made_baselines(
    baseline: dict[str, Any], current: Any, threshold: float, min_baseline: int
) -> None:
    """Baselines Atlas never builds itself (null stddev with a mean, lists without stats...)."""
    ours = outcome(assess_drift, current, baseline, threshold=threshold, min_baseline=min_baseline)
    theirs = outcome(
        atlas_assess, current, baseline, threshold=threshold, min_baseline=min_baseline, window=50, learning_key=None
    )
    if theirs[0] == "raised":
        assert ours[0] == "raised"
    else:
        assert ours[0] == "value" and same(ours[1], theirs[1]), (ours, theirs)


# ---------------------------------------------------------------------------------------------------
# known values, worked by hand
# ---------------------------------------------------------------------------------------------------


def test_baseline_known_values() -> None:
    baseline = reward_baseline(
        [
            {"score": 0.5, "uncertainty_mean": 0.1, "best_uncertainty": 0.05},
            {"score": 0.7, "uncertainty_mean": 0.2},
            {"score": 0.9, "min_uncertainty": 0.15},
        ]
    )
    assert baseline["sample_count"] == 3
    assert baseline["score_mean"] == pytest.approx(0.7)
    assert baseline["score_median"] == pytest.approx(0.7)
    assert baseline["score_stddev"] == pytest.approx(math.sqrt(0.08 / 3))  # population, not sample
    assert baseline["uncertainties"] == [0.1, 0.2]
    assert baseline["best_uncertainties"] == [0.05, 0.15]  # min_uncertainty is the alias
    assert baseline["uncertainty_stddev"] == pytest.approx(0.05)


def test_present_null_score_mean_does_not_fall_back_but_rows_still_count() -> None:
    baseline = reward_baseline([{"score_mean": None, "score": 0.9}, {"score": 0.4}, "not an object", None])
    assert baseline["scores"] == [0.4]
    assert baseline["sample_count"] == 2  # rows that are objects, not scores
    assert baseline["score_stddev"] == 0.0  # one value
    empty = reward_baseline([])
    assert empty["score_mean"] is None and empty["score_stddev"] is None and empty["sample_count"] == 0


def test_non_castable_values_are_skipped() -> None:
    baseline = reward_baseline([{"score": "n/a"}, {"score": "0.25"}, {"score": [1]}, {"score": True}])
    assert baseline["scores"] == [0.25, 1.0]  # float("0.25") and float(True) work in Atlas too


def test_window_takes_the_newest_rows() -> None:
    history = [{"score": float(i)} for i in range(10)]
    assert reward_baseline(history, window=3)["scores"] == [0.0, 1.0, 2.0]
    assert reward_baseline(history, window=0)["scores"] == [0.0]  # LIMIT max(window, 1)
    assert reward_baseline(history, window=0)["window"] == 0


def test_drift_known_z_scores_and_order_of_metrics() -> None:
    scores = [0.8, 0.9, 0.7, 0.85, 0.75]
    baseline = reward_baseline([{"score": s, "uncertainty_mean": 0.1} for s in scores])
    drift = assess_drift({"score": 0.2, "uncertainty_mean": 0.1}, baseline)
    assert drift is not None
    mean, sd = 0.8, math.sqrt(sum((s - 0.8) ** 2 for s in scores) / 5)
    assert drift["score_delta"] == pytest.approx(-0.6)
    assert drift["score_z"] == pytest.approx((0.2 - mean) / sd)
    # median 0.8, absolute deviations [0, .1, .1, .05, .05] -> MAD 0.05
    assert drift["score_mad_z"] == pytest.approx((0.2 - 0.8) / (0.05 * MAD_NORMALIZATION))
    assert drift["alert"] is drift["drift_alert"] is True
    assert drift["reason"] == "score_z"  # the first metric past the threshold wins
    assert drift["uncertainty_z"] is None  # zero stddev -> no z-score
    assert set(drift["baseline"]) == set(BASELINE_KEYS)


def test_drift_insufficient_baseline_and_threshold_zero() -> None:
    baseline = reward_baseline([{"score": 0.5}, {"score": 0.6}])
    drift = assess_drift({"score": 0.1}, baseline)
    assert drift is not None and drift["reason"] == "insufficient_baseline" and drift["alert"] is False
    drift = assess_drift({"score": 0.55}, baseline, threshold=0, min_baseline=0)
    assert drift is not None and drift["alert"] is True and drift["reason"] == "score_z"
    assert drift["threshold"] == 0.0


def test_drift_uses_score_before_score_mean_and_returns_none_for_non_objects() -> None:
    baseline = reward_baseline([{"score": s} for s in (0.5, 0.6, 0.7, 0.5, 0.6)])
    drift = assess_drift({"score": None, "score_mean": 0.6}, baseline)
    assert drift is not None and drift["score_delta"] == pytest.approx(0.6 - 0.58)  # mean of 5 scores
    drift = assess_drift({"score": 0.7, "score_mean": 0.1}, baseline)
    assert drift is not None and drift["score_delta"] == pytest.approx(0.7 - 0.58)
    assert assess_drift(None, baseline) is None
    assert assess_drift("0.5", baseline) is None


def test_bad_arguments_are_rejected_up_front() -> None:
    with pytest.raises(InvalidArgument, match="window must be an integer"):
        reward_baseline([], window=2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="list of reward_stats"):
        reward_baseline({"score": 1.0})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="baseline must be a dict"):
        assess_drift({"score": 1.0}, [0.5])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="too large"):
        reward_baseline([{"score": 10**400}])


def test_threshold_zero_alerts_on_a_z_score_of_exactly_zero() -> None:
    baseline = reward_baseline([{"score": 0.5}, {"score": 0.7}, {"score": 0.6}])
    ours = assess_drift({"score": 0.6}, baseline, threshold=0.0, min_baseline=0)
    theirs = atlas_assess({"score": 0.6}, baseline, threshold=0.0, min_baseline=0, window=50, learning_key=None)
    assert ours is not None and ours["score_z"] == 0.0
    assert ours["alert"] is True and ours["reason"] == "score_z"  # |0| >= 0
    assert same(ours, theirs)
