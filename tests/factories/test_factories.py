"""Factories: build vs create, traits, sequences, repeatability, the atlas_factory fixture."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from pytest_atlas import factories
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.factories import BoundFactory, Factory, sequence
from pytest_atlas.validation import iter_errors


def test_build_returns_plain_graphs_without_a_database() -> None:
    graph = factories.session()
    assert isinstance(graph, factories.SessionGraph)
    assert graph.session["task"].startswith("Task ")
    data = graph.as_dict()
    assert set(data) == {"session", "plan", "step_results", "step_attempts", "guidance_notes", "trajectory_events"}
    assert [v.format() for v in iter_errors(graph.session["metadata"], "session-metadata")] == []


def test_same_seed_same_sessions() -> None:
    first = [g.as_dict() for g in Factory(seed=9).sessions(15)]
    second = [g.as_dict() for g in Factory(seed=9).sessions(15)]
    other = [g.as_dict() for g in Factory(seed=10).sessions(15)]
    assert first == second and first != other


def test_sequences_for_tasks_keys_and_time() -> None:
    factory = Factory(seed=1, learning_keys=2)
    graphs = factory.sessions(6)
    assert [g.session["task"].split(":")[0] for g in graphs] == [f"Task {n}" for n in range(1, 7)]
    keys = [g.learning_key for g in graphs]
    assert keys == factory.learning_keys * 3 and len(set(keys)) == 2
    created = [g.session["created_at"] for g in graphs]
    assert created == sorted(created) and len(set(created)) == 6
    more = factory.sessions(2)
    assert more[0].session["task"].startswith("Task 7:") and more[0].session["created_at"] > created[-1]


def test_custom_sequences() -> None:
    factory = Factory(seed=1)
    graphs = factory.sessions(
        3, learning_key=sequence("tenant-{n}"), task=sequence(lambda n: f"incident #{n * 10}", start=0)
    )
    assert [g.learning_key for g in graphs] == ["tenant-1", "tenant-2", "tenant-3"]
    assert [g.session["task"] for g in graphs] == ["incident #0", "incident #10", "incident #20"]


@pytest.mark.parametrize(
    ("trait", "check"),
    [
        ("failed", lambda g: g.session["status"] == "failed" and g.plan is None and g.session["final_answer"] == ""),
        ("running", lambda g: g.session["status"] == "running" and g.trajectory_events == []),
        ("quarantined", lambda g: g.session["review_status"] == "quarantined"),
        ("approved", lambda g: g.session["review_status"] == "approved"),
        (
            "drifting",
            lambda g: (
                g.session["metadata"]["drift"]["alert"] is True and g.session["metadata"]["review_status"] == "pending"
            ),
        ),
    ],
)
def test_traits(trait: str, check: Any) -> None:
    factory = Factory(seed=3)
    factory.sessions(60)  # a history for each key: Atlas's detector alerts only against one
    graphs = factory.sessions(12, **{trait: True})
    assert all(check(g) for g in graphs)


def test_drifting_needs_a_history_atlas_could_alert_against() -> None:
    factory = Factory(seed=3, learning_keys=1)
    factory.sessions(2)
    with pytest.raises(InvalidArgument, match=r"drift_alert=True \(drifting=True\) cannot be honoured .* needs 4"):
        factory.session(drifting=True)
    factory.sessions(8)
    assert factory.session(drifting=True).session["metadata"]["drift"]["alert"] is True


def test_traits_combine_and_conflicts_are_refused() -> None:
    factory = Factory(seed=2)
    factory.sessions(12, learning_key="k")
    graph = factory.session(drifting=True, quarantined=True, learning_key="k")
    assert graph.session["review_status"] == "quarantined"
    assert graph.session["metadata"]["review_status"] == "pending"  # the stale metadata copy, as in Atlas
    with pytest.raises(InvalidArgument, match=r"^session\(\): failed must be no conflicting.*, got True"):
        Factory().session(failed=True, status="succeeded")
    with pytest.raises(InvalidArgument, match=r"^session\(\): status must be .*, got 'failed'"):
        Factory().session(failed=True, drifting=True)
    with pytest.raises(InvalidArgument, match=r"^session\(\): failed must be True or False.*, got 'yes'"):
        Factory().session(failed="yes")


def test_column_overrides_and_options() -> None:
    moment = datetime(2025, 5, 5, tzinfo=timezone.utc)
    graph = Factory(seed=4).session(
        final_answer="42", review_notes="looks fine", score=0.25, steps=2, created_at=moment, execution_mode="escalate"
    )
    assert graph.session["final_answer"] == "42" and graph.session["review_notes"] == "looks fine"
    assert graph.score == 0.25 and len(graph.step_results) == 2 and graph.session["created_at"] == moment


def test_unknown_override_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        factories.sessions(2, reviewed=True)
    first, hint = str(caught.value).splitlines()
    assert first == "sessions(): reviewed must be a known override, got True"
    assert "drifting" in hint and "learning_key" in hint


def test_create_inserts_and_returns_ids(atlas_db: psycopg.Connection[Any]) -> None:
    factory = Factory(seed=6)
    one = factory.create_session(atlas_db, failed=True)
    many = factory.create_sessions(atlas_db, 25, learning_key="k")
    assert isinstance(one, int) and len(many) == 25 and one not in many
    rows = atlas_db.execute("SELECT status, metadata->>'learning_key' FROM sessions ORDER BY id").fetchall()
    assert rows[0][0] == "failed" and {key for _, key in rows[1:]} == {"k"}
    assert factory.create_sessions(atlas_db, 0) == []


def test_create_sessions_validates_before_sending(atlas_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidArgument, match=r"colour must be .*, got 'red'"):
        Factory().create_sessions(atlas_db, 3, colour="red")
    with pytest.raises(InvalidArgument, match=r"n must be .*, got -1"):
        Factory().create_sessions(atlas_db, -1)
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_atlas_factory_fixture_commits_for_other_connections(atlas_factory: BoundFactory, atlas_dsn: str) -> None:
    atlas_factory.sessions(60)  # each key's history: Atlas's detector alerts only against one
    ids = atlas_factory.sessions(6, drifting=True)
    single = atlas_factory.session(quarantined=True)
    with psycopg.connect(atlas_dsn) as other:
        found = other.execute(
            "SELECT count(*), count(*) FILTER (WHERE (metadata->>'drift_alert')::bool AND id = ANY(%s)) FROM sessions",
            (ids,),
        ).fetchone()
        status = other.execute("SELECT review_status FROM sessions WHERE id = %s", (single,)).fetchone()
    assert found == (67, 6) and status == ("quarantined",) and single not in ids
    graph = atlas_factory.build(running=True)
    assert graph.session["status"] == "running"
    assert len(atlas_factory.build_many(3)) == 3
    assert len(atlas_factory.insert(graph)) == 1


def test_atlas_factory_is_seeded_per_test(atlas_factory: BoundFactory, request: pytest.FixtureRequest) -> None:
    import zlib

    expected = Factory(seed=zlib.crc32(request.node.nodeid.encode())).session()
    assert atlas_factory.build().as_dict() == expected.as_dict()


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"failed": True, "running": True}, "the failed trait sets status='failed'"),
        ({"quarantined": True, "approved": True}, "the quarantined trait sets review_status='quarantined'"),
    ],
)
def test_traits_that_contradict_each_other_are_refused(overrides: dict[str, bool], shown: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Factory(0).session(**overrides)
    assert shown in str(info.value) and "contradict each other" in str(info.value)


def test_a_trait_and_a_pin_that_would_be_ignored_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"steps must be None for a failed session.*, got 3"):
        Factory(0).session(failed=True, steps=3)
    with pytest.raises(InvalidArgument, match=r"attempts must be None for a running session.*, got 2"):
        Factory(0).session(running=True, attempts=2)
