"""Presets: the reward_history scenarios, written by Atlas itself; Atlas's drift verdicts match the strategy's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas import RewardDrift, RewardRegression, Selection, assert_no_drift, assert_no_regression
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.runtime import PRESETS, AtlasRuntime

from .helpers import session


@pytest.mark.parametrize("scenario", PRESETS)
def test_atlas_flags_what_the_strategy_says(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any], scenario: str
) -> None:
    history = atlas_runtime.history(scenario, sessions=14, seed=3, learn=False)
    assert len(history.session_ids) == 14
    assert history.alerts == history.expected.alerts
    for sid, score, alert in zip(history.session_ids, history.scores, history.alerts, strict=True):
        row = session(atlas_db, sid)
        assert row["reward_stats"]["score"] == pytest.approx(score)
        assert row["metadata"]["learning_key"] == history.learning_key
        assert row["metadata"]["drift_alert"] is alert
        assert (row["review_notes"] or "").startswith("Reward drift alert") is alert
    if scenario == "step_change":
        assert history.change_at is not None and history.change_at in history.alert_indices
    else:
        assert history.alert_indices == ()


def test_a_gate_on_atlas_written_data(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    history = atlas_runtime.history("step_change", sessions=16, seed=1, shift=0.3, learn=False)
    assert history.change_at is not None
    with pytest.raises(RewardDrift):
        assert_no_drift(atlas_db)
    boundary = session(atlas_db, history.session_ids[history.change_at])["created_at"]
    with pytest.raises(RewardRegression):
        assert_no_regression(atlas_db, Selection.build(until=boundary), since=boundary)


def test_presets_refuse_what_they_decide(atlas_runtime: AtlasRuntime) -> None:
    with pytest.raises(InvalidArgument, match="one of 'stable', 'step_change', 'gradual_decline'"):
        atlas_runtime.history("outliers")
    with pytest.raises(InvalidArgument, match="score cannot be set"):
        atlas_runtime.history("stable", score=0.3)
    assert atlas_runtime.runs == []
