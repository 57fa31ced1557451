"""The drift arithmetic behind generated drift documents equals Atlas's own (its pure functions)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_atlas.strategies import _drift

numbers = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
stats_documents = st.fixed_dictionaries(
    {"score": numbers | st.none()},
    optional={
        "score_mean": numbers | st.none(),  # present-but-null suppresses the fallback to score
        "uncertainty_mean": numbers | st.none(),
        "best_uncertainty": numbers | st.none(),
        "min_uncertainty": numbers,  # the alias Atlas's readers accept
        "timestamp": st.just("2025-01-01T00:00:00+00:00"),
    },
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(stats_documents, max_size=12), window=st.integers(1, 60))
def test_baseline_equals_atlas(rows: list[dict[str, Any]], window: int) -> None:
    from atlas.runtime.storage.database import Database

    assert _drift.aggregate_baseline(rows, window=window) == Database._aggregate_reward_baseline(rows, window=window)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(stats_documents, min_size=1, max_size=12), threshold=st.floats(0.0, 4.0),
       min_baseline=st.integers(0, 8))
def test_assessment_equals_the_stats_module(rows: list[dict[str, Any]], threshold: float, min_baseline: int) -> None:
    """Against pytest_atlas.stats.assess_drift (the gates' Atlas-exact version); Atlas's detector
    itself is run on a real database in test_scenarios.py."""
    from pytest_atlas.stats import assess_drift, reward_baseline

    baseline = reward_baseline(rows, window=50)
    assert _drift.aggregate_baseline(rows, window=50) == baseline
    expected = assess_drift(rows[0], baseline, threshold=threshold, min_baseline=min_baseline, window=50,
                            learning_key="k")
    ours = _drift.drift_document(
        _drift.assess(rows[0], baseline, threshold=threshold, min_baseline=min_baseline),
        baseline, threshold=threshold, window=50, learning_key="k",
    )
    assert ("message" in ours) is ours["alert"]
    ours.pop("message", None)
    assert ours == expected
