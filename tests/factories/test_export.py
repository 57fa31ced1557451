"""Export shape and the JSONL loader: our to_export() matches Atlas's exporter, and load_export()
round-trips graphs (graph -> export line -> load -> the same rows)."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

# imported when the module is collected, outside any in-process pytester run (whose sys.modules
# snapshot drops pydantic's modules when a docs page ran Atlas there: KeyError: 'pydantic.root_model')
from atlas.cli.jsonl_writer import export_sessions
from atlas.config.models import StorageConfig
from atlas.runtime.storage.database import Database
from hypothesis import HealthCheck, given, settings

from pytest_atlas import rollback
from pytest_atlas.errors import ExportFormatError, InvalidArgument
from pytest_atlas.factories import Factory, insert_graphs, load_export, read_export, to_export
from pytest_atlas.strategies import SessionGraph, session_graphs

from .rows import read_graph

DB = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def exporter_view(graph: SessionGraph) -> dict[str, Any]:
    """What survives the exporter, written out independently of the loader:
    the metadata gains setdefault copies of review_status, reward_stats and reward_audit; notes are
    stripped (blank ones vanish) and fall back to the metadata's; empty audits vanish; a running
    session's NULL final_answer comes back NULL."""
    data = graph.as_dict()
    session = data["session"]
    metadata = session["metadata"] or {}
    if session["review_status"]:
        metadata.setdefault("review_status", session["review_status"])
    if session["reward_stats"]:
        metadata.setdefault("reward_stats", session["reward_stats"])
    if session["reward_audit"]:
        metadata.setdefault("reward_audit", session["reward_audit"])
    session["metadata"] = metadata or None
    for column in ("student_learning", "teacher_learning"):
        value = session[column] or metadata.get(column)
        session[column] = value.strip() if isinstance(value, str) and value.strip() else None
    notes = session["review_notes"]
    session["review_notes"] = notes.strip() if isinstance(notes, str) and notes.strip() else None
    session["reward_audit"] = session["reward_audit"] or None
    if session["final_answer"] is None and session["status"] != "running":
        session["final_answer"] = ""
    data["step_results"] = sorted(data["step_results"], key=lambda r: r["step_id"])
    return data


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False))


@DB
@given(graph=session_graphs())
def test_round_trip_graph_export_load(atlas_tx: psycopg.Connection[Any], graph: SessionGraph) -> None:
    line = json.dumps(to_export(graph, session_id=7, first_event_id=100), ensure_ascii=False)
    with rollback(atlas_tx):
        [session_id] = load_export(atlas_tx, [line])
        assert read_graph(atlas_tx, session_id) == exporter_view(graph)


def test_keep_export_keys_keeps_the_metadata_as_exported() -> None:
    graph = Factory(seed=3).session(status="succeeded")
    line = to_export(graph, session_id=42)
    [loaded] = read_export([line], keep_export_keys=True)
    assert loaded.session["metadata"]["session_id"] == 42
    assert loaded.session["metadata"] == line["session_metadata"]
    [plain] = read_export([line])
    assert "session_id" not in plain.session["metadata"]


async def atlas_export(dsn: str, path: Path) -> None:

    # the 0.1.16 wheel lacks its schema.sql, so Atlas must not try to apply it on connect
    database = Database(StorageConfig(database_url=dsn, apply_schema_on_connect=False))
    await database.connect()
    try:
        await export_sessions(database, path, include_all_review_statuses=True)
    finally:
        await database.disconnect()


def test_to_export_matches_atlas_exporter_and_loads_back(
    atlas_db: psycopg.Connection[Any], atlas_dsn: str, atlas_tx: psycopg.Connection[Any], tmp_path: Path
) -> None:
    factory = Factory(seed=12)
    graphs = factory.sessions(40) + factory.sessions(4, steps=3, attempts=(1, 3)) + factory.sessions(3, running=True)
    ids = insert_graphs(atlas_db, graphs)
    atlas_db.commit()
    first_event = dict(
        atlas_db.execute("SELECT session_id, min(id) FROM trajectory_events GROUP BY session_id").fetchall()
    )
    path = tmp_path / "export.jsonl"
    asyncio.run(atlas_export(atlas_dsn, path))

    lines = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]
    by_id = {line["session_metadata"]["session_id"]: line for line in lines}
    assert sorted(by_id) == sorted(ids)
    for session_id, graph in zip(ids, graphs, strict=True):
        ours = jsonable(to_export(graph, session_id=session_id, first_event_id=first_event.get(session_id, 1)))
        assert ours == by_id[session_id], f"session {session_id} differs from Atlas's export"

    # Atlas's own file loads back into another database as the same rows
    with rollback(atlas_tx):
        loaded = load_export(atlas_tx, path)
        assert len(loaded) == len(graphs)
        by_task = {read_graph(atlas_tx, i)["session"]["task"]: read_graph(atlas_tx, i) for i in loaded}
        for graph in graphs:
            assert by_task[graph.session["task"]] == exporter_view(graph)


def test_bad_files_are_reported_with_their_line(tmp_path: Path, atlas_tx: psycopg.Connection[Any]) -> None:
    good = json.dumps(to_export(Factory(seed=1).session()))
    path = tmp_path / "broken.jsonl"
    path.write_text(good + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(ExportFormatError) as caught:
        load_export(atlas_tx, path)
    assert str(caught.value).startswith(f"{path}:3: not valid JSON")
    with pytest.raises(ExportFormatError, match=r"^<lines>:2: 'steps' is missing or not a list"):
        read_export([good, json.dumps({"task": "t", "session_metadata": {}})])
    with pytest.raises(ExportFormatError, match=r"^<lines>:1: expected a JSON object, got list"):
        read_export(["[1, 2]"])
    broken = copy.deepcopy(json.loads(good))
    broken["session_metadata"]["created_at"] = "yesterday"
    with pytest.raises(ExportFormatError, match=r"created_at is 'yesterday', expected an ISO 8601 timestamp"):
        read_export([broken])
    with pytest.raises(InvalidArgument, match=r"^load_export\(\): no such file: "):
        load_export(atlas_tx, tmp_path / "missing.jsonl")
    assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
