"""Reward scenarios keep their promises, against our formulas, the stats module and Atlas itself."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

# imported when the module is collected, outside any in-process pytester run (whose sys.modules
# snapshot drops pydantic's modules when a docs page ran Atlas there: KeyError: 'pydantic.root_model')
from atlas.config.models import StorageConfig
from atlas.runtime.learning.drift import RewardDriftDetector
from atlas.runtime.storage.database import Database
from hypothesis import given, settings

from pytest_atlas.errors import InvalidArgument
from pytest_atlas.factories import insert_graph
from pytest_atlas.stats import assess_drift, reward_baseline
from pytest_atlas.strategies import SCENARIOS, RewardHistory, reward_histories, reward_history
from pytest_atlas.validation import iter_errors

SEEDS = [0, 1, 7, 2024]


def check_promise(history: RewardHistory) -> None:
    alerts, reasons, change = history.alerts, history.reasons, history.change_at
    score_alerts = [i for i, r in enumerate(reasons) if alerts[i] and r.startswith("score")]
    if history.scenario in ("stable", "gradual_decline"):
        assert history.alert_indices == ()
    elif history.scenario == "step_change":
        assert change is not None and not any(alerts[:change])
        assert alerts[change] and reasons[change].startswith("score")
    elif history.scenario == "higher_noise":
        assert change is not None and not any(alerts[:change])
        assert any(i in score_alerts for i in range(change, change + 4))
    elif history.scenario == "outliers":
        assert history.outlier_at and history.alert_indices == history.outlier_at
        assert set(score_alerts) == set(history.outlier_at)
    elif history.scenario == "growing_uncertainty":
        assert change is not None and not any(alerts[:change])
        assert alerts[change] and reasons[change].startswith("uncertainty")
        assert score_alerts == []
    else:  # pragma: no cover
        raise AssertionError(history.scenario)


def check_graphs(history: RewardHistory) -> None:
    created = [g.session["created_at"] for g in history.graphs]
    assert created == sorted(created) and len(set(created)) == len(created)
    for index, graph in enumerate(history.graphs):
        session, metadata = graph.session, graph.session["metadata"]
        assert graph.learning_key == history.learning_key and session["status"] == "succeeded"
        assert session["reward_stats"]["score"] == history.scores[index] == graph.score
        assert session["reward_stats"]["uncertainty_mean"] == history.uncertainties[index]
        assert metadata["reward_stats"] == session["reward_stats"]
        assert metadata["drift"]["alert"] is history.alerts[index] is metadata["drift_alert"]
        assert metadata["drift"]["reason"] == history.reasons[index]
        assert session["review_status"] == ("pending" if history.alerts[index] else "approved")
        for document, schema in (
            (metadata, "session-metadata"),
            (session["reward_stats"], "reward-stats"),
            (metadata["drift"], "drift"),
        ):
            assert [v.format() for v in iter_errors(document, schema)] == []


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios_keep_their_promise(scenario: str, seed: int) -> None:
    history = reward_history(scenario, seed=seed)
    assert len(history.graphs) == 60
    check_promise(history)
    check_graphs(history)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_drift_documents_match_the_stats_module(scenario: str) -> None:
    """Each session's drift document equals pytest_atlas.stats' Atlas-exact assessment at its time."""
    history = reward_history(scenario, seed=3, sessions=70)
    stats_so_far: list[dict[str, Any]] = []
    for graph in history.graphs:
        stats_so_far.insert(0, graph.session["reward_stats"])  # newest first, itself included
        baseline = reward_baseline(stats_so_far, window=history.window)
        expected = assess_drift(
            graph.session["reward_stats"],
            baseline,
            threshold=history.z_threshold,
            min_baseline=history.min_baseline,
            window=history.window,
            learning_key=history.learning_key,
        )
        assert expected is not None
        document = dict(graph.session["metadata"]["drift"])
        message = document.pop("message", None)
        assert document == expected
        assert (message is not None) is expected["alert"]


def test_scenarios_are_repeatable_and_seeds_differ() -> None:
    first = reward_history("step_change", seed=5, sessions=30)
    again = reward_history("step_change", seed=5, sessions=30)
    other = reward_history("step_change", seed=6, sessions=30)
    assert [g.as_dict() for g in first.graphs] == [g.as_dict() for g in again.graphs]
    assert first.scores != other.scores


def test_scenario_arguments() -> None:
    history = reward_history("step_change", sessions=25, change_at=12, learning_key="agent-7", shift=0.5, baseline=0.9)
    assert history.change_at == 12 and history.learning_key == "agent-7" and history.alerts[12]
    assert max(history.after) < 0.5 < min(history.before)


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        ({"scenario": "cliff"}, "scenario='cliff'"),
        ({"scenario": "stable", "sessions": 1}, "sessions=1"),
        ({"scenario": "step_change", "sessions": 6}, "sessions=6"),
        ({"scenario": "step_change", "change_at": 3}, "change_at=3"),
        ({"scenario": "outliers", "change_at": 20}, "change_at=20"),
        ({"scenario": "stable", "shift": 2.0}, "shift=2.0"),
        ({"scenario": "stable", "seed": "x"}, "seed='x'"),
    ],
)
def test_bad_scenario_arguments(arguments: dict[str, Any], shown: str) -> None:
    scenario = arguments.pop("scenario")
    with pytest.raises(InvalidArgument) as caught:
        reward_history(scenario, **arguments)
    name, _, value = shown.partition("=")
    first = str(caught.value).splitlines()[0]
    assert first.startswith(f"reward_history(): {name} must be ") and first.endswith(f", got {value}" if value else "")


@settings(max_examples=12, deadline=None)
@given(history=reward_histories(sessions=(20, 40)))
def test_drawn_histories_keep_their_promise(history: RewardHistory) -> None:
    check_promise(history)


# --------------------------------------------------------------------------------------------------
# Atlas's own drift detector on a real database
# --------------------------------------------------------------------------------------------------


async def _atlas_assessments(dsn: str, conn: psycopg.Connection[Any], history: RewardHistory) -> list[Any]:

    database = Database(
        StorageConfig(database_url=dsn, apply_schema_on_connect=False, min_connections=1, max_connections=2)
    )
    await database.connect()
    detector = RewardDriftDetector(
        window=history.window, z_threshold=history.z_threshold, min_baseline=history.min_baseline
    )
    results = []
    try:
        for graph in history.graphs:
            insert_graph(conn, graph)  # persisted before the assessment, as in Atlas
            conn.commit()
            assessment = await detector.assess(
                database, learning_key=history.learning_key, current_stats=graph.session["reward_stats"]
            )
            results.append(assessment)
    finally:
        await database.disconnect()
    return results


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_atlas_drift_detector_agrees(scenario: str, atlas_db: psycopg.Connection[Any], atlas_dsn: str) -> None:
    history = reward_history(scenario, seed=11, sessions=45)
    check_promise(history)
    assessments = asyncio.run(_atlas_assessments(atlas_dsn, atlas_db, history))
    for graph, assessment in zip(history.graphs, assessments, strict=True):
        ours = graph.session["metadata"]["drift"]
        theirs = assessment.to_dict()
        assert (theirs["alert"], theirs["reason"]) == (ours["alert"], ours["reason"])
        for key in ("score_delta", "score_z", "score_mad_z", "uncertainty_delta", "uncertainty_z", "uncertainty_mad_z"):
            assert same_number(theirs[key], ours[key]), (key, theirs[key], ours[key])
        assert theirs["baseline"].keys() == ours["baseline"].keys()
        for key, value in theirs["baseline"].items():
            assert same_number(value, ours["baseline"][key]), (key, value, ours["baseline"][key])


def same_number(a: Any, b: Any) -> bool:
    """Equal, allowing for the last bits of floats that went through PostgreSQL's jsonb."""
    if a is None or b is None:
        return a is b
    return bool(a == pytest.approx(b, rel=1e-12, abs=1e-12))
