"""Reward gates end to end: an eval harness writes sessions, the gates decide whether it may ship.

Three harness runs are simulated with pytest-atlas's reward scenarios (``stable``, a step drop, a
slow decline) and written to a real database with the Atlas schema. The reward assertions catch
what they should -- including the slow decline that Atlas's own per-session drift check never
flags -- and the last test runs the CI gate exactly as a pipeline would, ``pytest --atlas-gates
--atlas-target ...`` with gates declared in pyproject.toml, and checks that it fails on the drop.
"""

from datetime import datetime, timezone

import pytest

from pytest_atlas import (
    RewardDrift,
    RewardRegression,
    Selection,
    assert_no_drift,
    assert_no_regression,
    assert_review_clean,
    assert_reward_at_least,
)
from pytest_atlas.factories import insert_graphs
from pytest_atlas.strategies import reward_history

# the pipeline tests run pytest inside pytest with pytest's own ``pytester`` plugin
pytest_plugins = ["pytester"]

START = datetime(2025, 3, 1, tzinfo=timezone.utc)


def harness_run(conn, scenario, **options):
    """Stand-in for the eval harness: 80 sessions of one learning key, committed."""
    history = reward_history(scenario, sessions=80, seed=7, start=START, **options)
    insert_graphs(conn, history.graphs)
    conn.commit()
    return history


def split(history):
    """Sessions before the change (the baseline) and from the change on (the candidate)."""
    boundary = history.graphs[history.change_at].session["created_at"]
    return Selection.build(until=boundary), {"since": boundary}


def test_a_stable_harness_passes_every_gate(atlas_db):
    history = harness_run(atlas_db, "stable")
    boundary = history.graphs[40].session["created_at"]  # the first 40 sessions against the last 40
    baseline, candidate = Selection.build(until=boundary), {"since": boundary}
    assert_reward_at_least(atlas_db, 0.7)
    assert_no_drift(atlas_db)
    # tolerance: a drop smaller than 0.02 is not worth blocking a release, however significant
    assert_no_regression(atlas_db, baseline, tolerance=0.02, min_effect=0.1, **candidate)


def test_a_step_drop_is_caught_by_drift_and_regression(atlas_db):
    history = harness_run(atlas_db, "step_change", shift=0.12)
    baseline, candidate = split(history)
    with pytest.raises(RewardDrift) as drift:
        assert_no_drift(atlas_db)
    assert history.graphs[history.change_at].session["reward_stats"] is not None
    assert drift.value.result.rows[0].detail["stored_alerts"] > 0  # Atlas flagged it too
    with pytest.raises(RewardRegression) as regression:
        assert_no_regression(atlas_db, baseline, **candidate)
    row = regression.value.result.rows[0]
    assert row.value < -0.08 and len(row.worst) == 5  # the drop, and the sessions to look at first


def test_a_slow_decline_escapes_atlas_drift_check_but_not_the_window_gate(atlas_db):
    history = harness_run(atlas_db, "gradual_decline")
    assert history.alert_indices == ()  # Atlas's per-session z-scores never fire ...
    assert_no_drift(atlas_db)
    baseline, candidate = split(history)
    with pytest.raises(RewardRegression):  # ... but the window comparison sees the level drop
        assert_no_regression(atlas_db, baseline, **candidate)
    assert_review_clean(atlas_db)


GATES = """
[tool.pytest.ini_options]
asyncio_default_fixture_loop_scope = "function"

[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = 0.6

[tool.pytest-atlas.gates.no-regression]
kind = "regression"
since = "{since}"
baseline = {{ until = "{since}" }}
tolerance = 0.02
min_effect = 0.1

[tool.pytest-atlas.gates.no-drift]
kind = "drift"
"""


@pytest.mark.parametrize(("scenario", "shift", "expected"), [("stable", None, 0), ("step_change", 0.12, 1)])
def test_the_ci_gate_as_a_pipeline_runs_it(pytester, atlas_db, atlas_dsn, scenario, shift, expected):
    history = harness_run(atlas_db, scenario, **({"shift": shift} if shift else {}))
    since = history.graphs[history.change_at or 40].session["created_at"].isoformat()
    pytester.makefile(".toml", pyproject=GATES.format(since=since))
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-p", "no:randomly")
    assert result.ret == expected
    if expected:
        result.assert_outcomes(passed=1, failed=2)  # the floor of 0.6 still holds; regression and drift fail
        result.stdout.fnmatch_lines(["*atlas gates*", "*no-drift*FAIL*", "*no-regression*diff -0.1*FAIL*"])
    else:
        result.assert_outcomes(passed=3)
