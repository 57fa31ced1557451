"""insert_graphs / insert_rows on a real database: every generated graph goes in, and comes back equal."""

from __future__ import annotations

import math
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from psycopg.rows import dict_row

from pytest_atlas import rollback
from pytest_atlas.errors import InsertError, InvalidArgument
from pytest_atlas.factories import Factory, insert_graph, insert_graphs, insert_rows
from pytest_atlas.strategies import (
    SessionGraph,
    discovery_run_rows,
    learning_registry_rows,
    session_graphs,
)

from .rows import read_graph

DB = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def expected_rows(graph: SessionGraph) -> dict[str, Any]:
    data = graph.as_dict()
    data["step_results"] = sorted(data["step_results"], key=lambda r: r["step_id"])
    return data


@DB
@given(graph=session_graphs())
def test_generated_graphs_insert_and_read_back_equal(atlas_tx: psycopg.Connection[Any], graph: SessionGraph) -> None:
    """The documented pattern: each example inserts inside rollback(atlas_tx) and leaves nothing behind."""
    with rollback(atlas_tx):
        session_id = insert_graph(atlas_tx, graph)
        assert read_graph(atlas_tx, session_id) == expected_rows(graph)
        # Atlas's float index accepts every generated reward_stats.score
        found = atlas_tx.execute(
            "SELECT count(*) FROM sessions WHERE (reward_stats->>'score')::float IS NOT NULL AND id = %s",
            (session_id,),
        ).fetchone()
        assert found == ((1 if graph.score is not None else 0),)
    assert atlas_tx.execute("SELECT count(*) FROM sessions WHERE id = %s", (session_id,)).fetchone() == (0,)


def test_batches_keep_order_and_event_ids(atlas_db: psycopg.Connection[Any]) -> None:
    graphs = Factory(seed=4).sessions(40)
    ids = insert_graphs(atlas_db, graphs)
    assert ids == sorted(ids) and len(set(ids)) == 40
    for session_id, graph in zip(ids, graphs, strict=True):
        assert read_graph(atlas_db, session_id) == expected_rows(graph)
    counts = dict(
        atlas_db.execute(
            "SELECT 'events', count(*) FROM trajectory_events UNION ALL SELECT 'attempts', count(*) FROM step_attempts"
        ).fetchall()
    )
    assert counts == {
        "events": sum(len(g.trajectory_events) for g in graphs),
        "attempts": sum(len(g.step_attempts) for g in graphs),
    }


def statements_sent(conn: psycopg.Connection[Any], work: Any, tmp_path: Any) -> list[str]:
    """The statements ``work()`` sends, from libpq's protocol trace (Query and Parse messages)."""
    trace = tmp_path / "trace.txt"
    with trace.open("w") as handle:
        conn.pgconn.trace(handle.fileno())
        try:
            work()
        finally:
            conn.pgconn.untrace()
    sent = []
    for line in trace.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[1] == "F" and fields[3] in ("Query", "Parse"):
            sent.append(fields[-1][:60])
    return sent


def test_insert_uses_a_fixed_number_of_statements(atlas_db: psycopg.Connection[Any], tmp_path: Any) -> None:
    """One id query and one COPY per table (plus savepoint handling), whatever the batch size."""
    small = statements_sent(
        atlas_db,
        lambda: insert_graphs(
            atlas_db, Factory(seed=1).sessions(2, status="succeeded", attempts=2, execution_mode="paired")
        ),
        tmp_path,
    )
    atlas_db.rollback()
    large = statements_sent(
        atlas_db,
        lambda: insert_graphs(
            atlas_db, Factory(seed=1).sessions(300, status="succeeded", attempts=2, execution_mode="paired")
        ),
        tmp_path,
    )
    atlas_db.rollback()
    copies = [s for s in large if "COPY" in s]
    assert len(copies) == 6, large
    assert len(small) == len(large) <= 10, large


def test_nothing_is_committed_and_failures_roll_back_cleanly(atlas_db: psycopg.Connection[Any]) -> None:
    good = Factory(seed=2).sessions(3)
    bad = Factory(seed=3).session(status="succeeded")
    bad.session["reward_stats"]["score"] = math.nan
    with pytest.raises(InsertError) as caught:
        insert_graphs(atlas_db, [*good, bad])
    message = str(caught.value)
    assert message.startswith("could not insert into sessions row 3: column ")
    assert "holds NaN or Infinity, which jsonb cannot store" in message
    assert "how to fix:" in message
    # the connection is still usable and holds nothing from the failed batch
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    insert_graphs(atlas_db, good)
    atlas_db.rollback()
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_postgres_refusals_name_the_row(atlas_db: psycopg.Connection[Any]) -> None:
    graphs = Factory(seed=5).sessions(4, status="succeeded")
    graphs[2].session["task"] = "nul \x00 byte"
    with pytest.raises(InsertError) as caught:
        insert_graphs(atlas_db, graphs)
    assert str(caught.value).startswith("could not insert into sessions row 2: ")
    graphs[2].session["task"] = "fine"
    graphs[1].trajectory_events[0]["event"] = {"text": "\x00"}
    with pytest.raises(InsertError, match=r"^could not insert into trajectory_events row 1: "):
        insert_graphs(atlas_db, graphs)


def test_bad_arguments(atlas_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidArgument, match=r"expected a SessionGraph"):
        insert_graphs(atlas_db, [{"session": {}}])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match=r"expected a psycopg \(3\) Connection"):
        insert_graphs("postgresql://x", [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^insert_rows\(\): table must be one of .*, got 'session'"):
        insert_rows(atlas_db, "session", [])
    with pytest.raises(psycopg.errors.DivisionByZero):
        atlas_db.execute("SELECT 1/0")
    with pytest.raises(InvalidArgument, match=r"transaction has already failed"):
        insert_graphs(atlas_db, Factory().sessions(1))
    atlas_db.rollback()


def test_autocommit_connections_get_an_atomic_batch(atlas_database: Any) -> None:
    with atlas_database.connect(autocommit=True) as conn:
        ids = insert_graphs(conn, Factory(seed=8).sessions(5))
        with atlas_database.connect() as other:
            assert other.execute("SELECT count(*) FROM sessions").fetchone() == (5,)
        assert len(ids) == 5


@DB
@given(run=discovery_run_rows(), registry=learning_registry_rows())
def test_plain_rows_insert(atlas_tx: psycopg.Connection[Any], run: dict[str, Any], registry: dict[str, Any]) -> None:
    with rollback(atlas_tx):
        assert insert_rows(atlas_tx, "discovery_runs", [run]) == 1
        assert insert_rows(atlas_tx, "learning_registry", [registry]) == 1
        with atlas_tx.cursor(row_factory=dict_row) as cur:
            stored = cur.execute(
                "SELECT project_root, task, source, payload, metadata, created_at FROM discovery_runs"
            ).fetchone()
            assert stored == run
            row = cur.execute("SELECT * FROM learning_registry").fetchone()
            assert row == registry


def test_duplicate_registry_key_is_reported(atlas_db: psycopg.Connection[Any]) -> None:
    row = {"learning_key": "k", "student_learning": "s", "teacher_learning": None, "metadata": None}
    insert_rows(atlas_db, "learning_registry", [row])
    with pytest.raises(InsertError, match=r"^could not insert into learning_registry row 1: duplicate key"):
        insert_rows(atlas_db, "learning_registry", [dict(row, learning_key="other"), row])
    assert atlas_db.execute("SELECT count(*) FROM learning_registry").fetchone() == (1,)


def test_bulk_inserts_restore_the_garbage_collector(atlas_db: psycopg.Connection[Any]) -> None:
    """The collector is paused during a batch and comes back as it was, even when the batch fails."""
    import gc

    assert gc.isenabled()
    insert_graphs(atlas_db, Factory(seed=1).sessions(3))
    assert gc.isenabled()
    bad = Factory(seed=1).session()
    bad.session["task"] = "\x00"
    with pytest.raises(InsertError):
        insert_graphs(atlas_db, [bad])
    assert gc.isenabled()
    gc.disable()
    try:
        insert_graphs(atlas_db, Factory(seed=2).sessions(2))
        assert not gc.isenabled()
    finally:
        gc.enable()
