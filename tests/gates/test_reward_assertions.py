"""Reward assertion helpers, against real databases and against plain lists."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas import (
    BaselineFileError,
    ExecutionModesOutOfBounds,
    GateError,
    InvalidArgument,
    Outcome,
    ReviewNotClean,
    RewardAssertionError,
    RewardBelowThreshold,
    RewardDrift,
    RewardRegression,
    Selection,
    assert_execution_modes,
    assert_no_drift,
    assert_no_regression,
    assert_review_clean,
    assert_reward_at_least,
)
from pytest_atlas.gates import fetch_series, write_baseline

from .gates_seed import insert, session_row


def scores(mean: float, n: int, seed: int, sd: float = 0.1) -> list[float]:
    rng = random.Random(seed)
    return [min(1.0, max(0.0, round(rng.gauss(mean, sd), 4))) for _ in range(n)]


# ---------------------------------------------------------------------------------------------- threshold


def test_threshold_passes_and_fails_with_a_table(atlas_db: psycopg.Connection[Any]) -> None:
    ids = insert(atlas_db, [session_row(s, key="good", minute=i) for i, s in enumerate(scores(0.85, 60, 1))])
    ids_bad = insert(atlas_db, [session_row(s, key="bad", minute=i) for i, s in enumerate(scores(0.55, 60, 2))])
    result = assert_reward_at_least(atlas_db, 0.7, learning_key="good")
    assert result.outcome is Outcome.PASS and result.rows[0].n == 60 and set(result.rows[0].worst) <= set(ids)
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least(atlas_db, 0.7)
    error = info.value
    assert isinstance(error, AssertionError) and isinstance(error, RewardAssertionError)
    assert error.result.outcome is Outcome.FAIL
    text = str(error)
    assert "threshold gate 'reward-at-least': fail: 2 keys (1 fail, 1 pass)" in text
    for header in ("learning key", "n", "statistic", "bound / interval", "threshold", "outcome", "worst sessions"):
        assert header in text
    bad_row = next(row for row in error.result.rows if row.learning_key == "bad")
    assert bad_row.outcome is Outcome.FAIL and bad_row.worst[0] in ids_bad
    assert f"#{bad_row.worst[0]}" in text and ">= 0.7" in text and "FAIL" in text
    assert "bad: mean 0.5" in text  # the reason line


def test_threshold_on_plain_lists_and_missing_scores() -> None:
    assert assert_reward_at_least(scores(0.9, 40, 3), 0.8).outcome is Outcome.PASS
    with pytest.raises(RewardBelowThreshold, match="inconclusive") as info:
        assert_reward_at_least([0.81, 0.79, 0.83, None, float("nan")], 0.8)
    row = info.value.result.rows[0]
    assert row.missing == 2 and row.n == 3 and "left out" in row.reason
    allowed = assert_reward_at_least([0.81, 0.79, 0.83], 0.8, allow_inconclusive=True)
    assert allowed.outcome is Outcome.INCONCLUSIVE
    with pytest.raises(InvalidArgument, match="is 'high', not a number"):
        assert_reward_at_least([0.5, "high"], 0.8)


def test_one_session_and_all_missing_are_inconclusive() -> None:
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least({"solo": [0.9]}, 0.5)
    assert "1 score: at least 2 are needed" in str(info.value)
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least({"empty": [None, None]}, 0.5)
    assert "no usable scores: 2 session(s)" in str(info.value)


def test_a_selection_matching_nothing_fails_saying_so(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(0.8)])
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least(atlas_db, 0.5, learning_key="nope")
    assert info.value.result.outcome is Outcome.FAIL
    assert "matched no sessions" in str(info.value) and "'learning_key': ['nope']" in str(info.value)


# --------------------------------------------------------------------------------------------- regression


def test_regression_against_a_selection_in_the_same_database(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(s, metadata={"run": "v1"}, minute=i) for i, s in enumerate(scores(0.8, 150, 4))])
    insert(
        atlas_db, [session_row(s, metadata={"run": "v2"}, minute=200 + i) for i, s in enumerate(scores(0.8, 150, 5))]
    )
    insert(
        atlas_db, [session_row(s, metadata={"run": "v3"}, minute=400 + i) for i, s in enumerate(scores(0.7, 150, 6))]
    )
    v1 = Selection.build(metadata={"run": "v1"})
    assert assert_no_regression(atlas_db, v1, metadata={"run": "v2"}).outcome is Outcome.PASS
    with pytest.raises(RewardRegression) as info:
        assert_no_regression(atlas_db, v1, metadata={"run": "v3"})
    row = info.value.result.rows[0]
    assert row.outcome is Outcome.FAIL and row.value is not None and row.value < -0.05
    assert "mean dropped by" in str(info.value) and "diff -0.1" in str(info.value)


def test_regression_is_paired_when_both_runs_cover_the_same_tasks(atlas_db: psycopg.Connection[Any]) -> None:
    rng = random.Random(9)
    difficulty = [rng.uniform(0.3, 0.95) for _ in range(30)]
    base = [session_row(d, task=f"t{i}", metadata={"run": "a"}) for i, d in enumerate(difficulty)]
    cand = [
        session_row(round(d - 0.03 + rng.gauss(0, 0.01), 4), task=f"t{i}", metadata={"run": "b"})
        for i, d in enumerate(difficulty)
    ]
    insert(atlas_db, base + cand)
    with pytest.raises(RewardRegression) as info:
        assert_no_regression(atlas_db, Selection.build(metadata={"run": "a"}), metadata={"run": "b"})
    assert info.value.result.rows[0].detail["paired"] is True
    unpaired = assert_no_regression(
        atlas_db, Selection.build(metadata={"run": "a"}), metadata={"run": "b"}, paired=False, allow_inconclusive=True
    )
    assert unpaired.outcome is Outcome.INCONCLUSIVE  # the task spread hides a 0.03 drop


def test_regression_against_a_baseline_file(atlas_db: psycopg.Connection[Any], tmp_path: Path) -> None:
    insert(atlas_db, [session_row(s, key="k", minute=i) for i, s in enumerate(scores(0.8, 200, 7))])
    path = write_baseline(tmp_path / "baseline.json", {"g": fetch_series(atlas_db, Selection())})
    assert assert_no_regression(atlas_db, path, min_effect=0.1).outcome is Outcome.PASS
    with pytest.raises(RewardRegression):
        assert_no_regression(scores(0.7, 200, 8), {"k": scores(0.8, 200, 9)})
    with pytest.raises(InvalidArgument, match="ambiguous"):
        assert_no_regression(atlas_db, str(path))
    with pytest.raises(InvalidArgument, match="has no gate 'other'"):
        assert_no_regression(atlas_db, path, baseline_gate="other")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ('{"format": "something-else"}', "not a pytest-atlas baseline"),
        ('{"format": "pytest-atlas-baseline", "version": 99, "gates": {}}', "format version 99 is not supported"),
        (
            '{"format": "pytest-atlas-baseline", "version": 2, "created": "2025-06-01T00:00:00+00:00", '
            '"gates": {"g": {"k": {"learning_key": "k", "digits": 4, "values": [0.5], "counts": [2], "n": 3, '
            '"mean": 0.5, "variance": 0.0, "missing": 0, "worst": [], "tasks": null, "uncertainty_mean": null, '
            '"uncertain": 0}}}}',
            "gate 'g', key 'k': n is 3 but the counts add up to 2",
        ),
        (
            '{"format": "pytest-atlas-baseline", "version": 2, "created": "2025-06-01T00:00:00+00:00", '
            '"gates": {"g": {"k": {"learning_key": "k", "digits": 4, "values": ["x"], "counts": [1], "n": 1, '
            '"mean": 0.5, "variance": null, "missing": 0, "worst": [], "tasks": null, "uncertainty_mean": null, '
            '"uncertain": 0}}}}',
            "gate 'g', key 'k': values[0] must be a finite number, got 'x'",
        ),
    ],
)
def test_malformed_baseline_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(BaselineFileError) as info:
        assert_no_regression([0.5, 0.6], path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "how to fix:" in str(info.value) and " again with " in str(info.value)


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineFileError, match="no such file"):
        assert_no_regression([0.5, 0.6], tmp_path / "absent.json")


def test_windows_without_spread_on_lists() -> None:
    """20 scores of 0.8 on each side passed (a drop of 0 counted as detectable); windows without
    spread are bounded from the range of scores instead (tests/stats/test_no_spread.py)."""
    flat = "all 20 baseline scores are 0.8000 and all 20 candidate scores are 0.8000: no spread"
    with pytest.raises(RewardRegression, match=flat):
        assert_no_regression([0.8] * 20, [0.8] * 20)
    assert assert_no_regression([0.8] * 20, [0.8] * 20, allow_inconclusive=True).outcome is Outcome.INCONCLUSIVE
    assert assert_no_regression([1.0] * 500, [1.0] * 500).outcome is Outcome.PASS
    with pytest.raises(RewardRegression, match=r"no spread.*mean dropped by 0\.5000"):
        assert_no_regression([0.5] * 200, [1.0] * 200)


# ------------------------------------------------------------------------------------------------- drift


def test_drift_recomputed_the_atlas_way(atlas_db: psycopg.Connection[Any]) -> None:
    stable = [0.8, 0.82, 0.79, 0.81, 0.8, 0.78, 0.82, 0.8, 0.81, 0.79]
    insert(atlas_db, [session_row(s, minute=i) for i, s in enumerate(stable)])
    assert assert_no_drift(atlas_db).outcome is Outcome.PASS
    (dropped,) = insert(atlas_db, [session_row(0.2, minute=20)])
    with pytest.raises(RewardDrift) as info:
        assert_no_drift(atlas_db)
    row = info.value.result.rows[0]
    assert row.worst == (dropped,) and "1 recomputed alert(s) (1 score_z)" in row.reason


def test_drift_alerts_stored_by_atlas_fail_too(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(0.8, minute=i) for i in range(6)])
    (flagged,) = insert(atlas_db, [session_row(0.8, minute=9, metadata={"drift_alert": True})])
    with pytest.raises(RewardDrift, match="1 alert\\(s\\) stored by Atlas") as info:
        assert_no_drift(atlas_db)
    assert info.value.result.rows[0].worst == (flagged,)
    assert assert_no_drift(atlas_db, stored=False).outcome is Outcome.PASS


def test_drift_on_a_list_and_insufficient_baseline() -> None:
    history = [{"score": 0.8 + 0.01 * (i % 3)} for i in range(10)] + [{"score": 0.1}]
    with pytest.raises(RewardDrift):
        assert_no_drift(history)
    short = assert_no_drift([{"score": 0.8}, {"score": 0.1}])
    assert short.outcome is Outcome.INCONCLUSIVE and "insufficient_baseline" in short.rows[0].reason
    with pytest.raises(RewardDrift, match="inconclusive"):
        assert_no_drift([{"score": 0.8}, {"score": 0.1}], allow_inconclusive=False)


# ---------------------------------------------------------------------------------------- review, modes


def test_review_clean(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(0.8, review="approved") for _ in range(8)])
    insert(atlas_db, [session_row(0.8, review="pending") for _ in range(2)])
    assert assert_review_clean(atlas_db, max_pending_share=0.3).outcome is Outcome.PASS
    with pytest.raises(ReviewNotClean, match=r"2 of 10 sessions pending review \(20.0% > 10.0%\)"):
        assert_review_clean(atlas_db, max_pending_share=0.1)
    (bad,) = insert(atlas_db, [session_row(0.8, review="quarantined")])
    with pytest.raises(ReviewNotClean, match="1 quarantined session") as info:
        assert_review_clean(atlas_db)
    assert info.value.result.rows[0].worst == (bad,)


def test_execution_modes(atlas_db: psycopg.Connection[Any]) -> None:
    insert(
        atlas_db,
        [session_row(0.8, mode="auto") for _ in range(7)]
        + [session_row(0.8, mode="coach") for _ in range(3)]
        + [session_row(0.8, mode=None)],
    )
    result = assert_execution_modes(atlas_db, {"coach": 0.5, "auto": [0.5, 1.0]})
    assert result.rows[0].missing == 1 and result.rows[0].n == 10
    with pytest.raises(ExecutionModesOutOfBounds, match=r"coach share 30.0% outside \[0%, 20%\]"):
        assert_execution_modes(atlas_db, {"coach": 0.2})
    with pytest.raises(InvalidArgument, match="unknown execution mode 'turbo'"):
        assert_execution_modes(atlas_db, {"turbo": 0.2})


# -------------------------------------------------------------------------------------------- bad input


def test_unreachable_dsn_is_a_clear_error_without_the_password() -> None:
    dsn = "postgresql://gate:s3cret-pw@127.0.0.1:1/atlas?connect_timeout=2"
    with pytest.raises(GateError) as info:
        assert_reward_at_least(dsn, 0.5)
    text = str(info.value)
    assert (
        "cannot connect to the gate database: cannot reach PostgreSQL at postgresql://gate:***@127.0.0.1:1/atlas"
        in text
    )
    assert "how to fix: is the server running and listening there? check the host and port in --atlas-target" in text
    assert "s3cret-pw" not in text


def test_result_objects_are_json_ready(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(s, minute=i) for i, s in enumerate(scores(0.5, 30, 11))])
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least(atlas_db, 0.9)
    document = json.loads(json.dumps(info.value.result.to_dict()))
    assert document["outcome"] == "fail" and document["rows"][0]["learning_key"] == "k1"
    assert document["rows"][0]["p_value"] < 0.05


def test_a_named_key_the_assertion_read_nothing_of_fails(atlas_db: psycopg.Connection[Any]) -> None:
    """``learning_key=["alpha-key", "beta-kee"]``: the typo was dropped and the assertion passed on alpha."""
    insert(
        atlas_db,
        [
            session_row(s, key=k, minute=i)
            for k in ("alpha-key", "beta-key")
            for i, s in enumerate(scores(0.9, 40, 1, sd=0.03))
        ],
    )
    with pytest.raises(RewardBelowThreshold) as info:
        assert_reward_at_least(atlas_db, 0.5, learning_key=["alpha-key", "beta-kee"])
    rows = {row.learning_key: row for row in info.value.result.rows}
    assert rows["alpha-key"].outcome is Outcome.PASS and rows["beta-kee"].outcome is Outcome.FAIL
    assert "(did you mean 'beta-key'?)" in rows["beta-kee"].reason
    with pytest.raises(ReviewNotClean, match="learning key 'beta-kee' is named in learning_key"):
        assert_review_clean(atlas_db, learning_key=["alpha-key", "beta-kee"])
    with pytest.raises(ExecutionModesOutOfBounds, match="learning key 'beta-kee' is named in learning_key"):
        assert_execution_modes(atlas_db, {"coach": 0.5}, learning_key=["alpha-key", "beta-kee"])
    with pytest.raises(RewardDrift, match="learning key 'beta-kee' is named in learning_key"):
        assert_no_drift(atlas_db, learning_key=["alpha-key", "beta-kee"])
    assert_reward_at_least(atlas_db, 0.5, learning_key=["alpha-key", "beta-key"])  # both read: passes


def test_a_regression_baseline_selection_sharing_sessions_with_the_candidate_fails(
    atlas_db: psycopg.Connection[Any],
) -> None:
    insert(atlas_db, [session_row(s, minute=i, metadata={"run": "main"}) for i, s in enumerate(scores(0.8, 40, 1))])
    insert(atlas_db, [session_row(s, minute=100 + i) for i, s in enumerate(scores(0.8, 40, 2))])
    with pytest.raises(RewardRegression) as info:
        assert_no_regression(atlas_db, Selection.build(metadata={"run": "main"}), min_effect=0.3)
    (row,) = info.value.result.rows
    assert row.statistic == "overlap" and row.detail["shared"] == 40 and row.outcome is Outcome.FAIL
    assert "40 session(s) are in both the candidate (80 scored) and the baseline (40 scored)" in row.reason
