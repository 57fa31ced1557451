"""check_database against real PostgreSQL (the plugin's per-test databases)."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from pytest_atlas import AtlasError, ContractReport, InvalidArgument, check_database
from pytest_atlas.contracts import ATLAS_COLUMNS

from . import contract_documents as D
from . import fill

Conn = psycopg.Connection[Any]


def test_clean_database_passes(atlas_db: Conn, atlas_dsn: str) -> None:
    fill.clean_database(atlas_db)
    report = check_database(atlas_dsn)
    assert report.ok, report.render()
    assert report.error_count == 0 and report.warning_count == 0
    rows = {c.name: (c.rows_checked, c.rows_null) for c in report.columns}
    assert rows == {
        "sessions.metadata": (3, 0),
        "sessions.reward": (2, 1),
        "sessions.reward_stats": (2, 1),
        "sessions.reward_audit": (2, 1),
        "plans.plan": (2, 0),
        "step_results.evaluation": (2, 0),
        "step_results.metadata": (2, 0),
        "step_attempts.evaluation": (4, 0),
        "trajectory_events.event": (16, 0),
        "discovery_runs.payload": (2, 0),
        "discovery_runs.metadata": (2, 0),
        "learning_registry.metadata": (1, 0),
    }
    assert [r.name for r in report.relations] == [
        "sessions[status]",
        "sessions[review_status]",
        "sessions[completed_at]",
        "sessions[metadata_review_status]",
        "step_results[step_in_plan]",
    ]
    assert all(r.rows_checked for r in report.relations)
    assert "OK: 0 errors, 0 warnings" in report.render()


def _broken(conn: Conn) -> dict[str, int]:
    ids = {"clean": fill.full_session(conn)}
    bad = D.session_metadata()
    bad["reward_stats"]["score"] = "0.9"
    bad["team"] = "sre"
    ids["bad_score"] = fill.session(conn, bad)
    bad2 = D.session_metadata()
    bad2["reward_stats"]["score"] = "0.7"
    bad2["execution_mode"] = "turbo"
    ids["bad_mode"] = fill.session(conn, bad2, status="finished")
    ids["quirky"] = fill.session(conn, {**D.session_metadata(), "tags": "latency", "team": 7})
    ids["fallback"] = fill.session(conn, "{'learning_key': 'k', 'self': {...}}", review_status="on hold")
    ids["array"] = fill.session(conn, [1, 2])
    ids["stale"] = fill.session(conn, {**D.session_metadata(), "review_status": "pending"}, review_status="quarantined")
    conn.execute(
        "INSERT INTO step_results (session_id, step_id, evaluation) VALUES (%s, 2, %s)",
        [ids["clean"], Jsonb(D.step_evaluation_passthrough())],
    )
    conn.execute("UPDATE sessions SET completed_at = created_at - interval '1 hour' WHERE id = %s", [ids["quirky"]])
    conn.commit()
    return ids


def test_violations_are_grouped_with_counts_and_sample_keys(atlas_db: Conn, atlas_dsn: str) -> None:
    ids = _broken(atlas_db)
    report = check_database(atlas_dsn)
    assert not report.ok
    metadata = report.column("sessions.metadata")
    assert metadata.outcome == "fail"
    assert metadata.rows_checked == 7
    assert metadata.rows_with_errors == 3
    groups = {(g.path, g.keyword): g for g in metadata.errors}
    assert set(groups) == {("$.reward_stats.score", "type"), ("$.execution_mode", "enum"), ("$", "type")}
    score = groups[("$.reward_stats.score", "type")]
    assert score.count == 2
    assert score.sample_keys == [{"id": ids["bad_score"]}, {"id": ids["bad_mode"]}]
    assert score.example.table == "sessions" and score.example.column == "metadata"
    assert score.example.primary_key == {"id": ids["bad_score"]}
    assert score.example.message == 'expected number, got string "0.9"'
    warnings = {(g.path, g.quirk): g.count for g in metadata.warnings}
    assert warnings == {("$.tags", "tags-as-string"): 1, ("$", "serialisation-fallback"): 1}
    census = {(f.path, f.key): (f.count, f.types) for f in metadata.unknown_fields}
    assert census == {("$", "team"): (2, {"string": 1, "integer": 1})}


def test_relational_checks(atlas_db: Conn, atlas_dsn: str) -> None:
    ids = _broken(atlas_db)
    relations = {r.check: r for r in check_database(atlas_dsn).relations}
    assert (relations["status"].count, relations["status"].sample_keys) == (1, [{"id": ids["bad_mode"]}])
    assert relations["status"].examples == [f"id={ids['bad_mode']}: status 'finished'"]
    assert (relations["review_status"].count, relations["review_status"].sample_keys) == (1, [{"id": ids["fallback"]}])
    assert (relations["completed_at"].count, relations["completed_at"].sample_keys) == (1, [{"id": ids["quirky"]}])
    stale = relations["metadata_review_status"]
    assert (stale.severity, stale.count, stale.outcome) == ("warning", 1, "pass")
    assert stale.examples == [f"id={ids['stale']}: metadata says 'pending', column says 'quarantined'"]
    plan = relations["step_in_plan"]
    assert plan.count == 1 and plan.sample_keys == [{"session_id": ids["clean"], "step_id": 2}]
    assert "is not in its plan (plan step ids: 1)" in plan.examples[0]
    assert [r.outcome for r in relations.values()] == ["fail", "fail", "fail", "pass", "fail"]


def test_step_without_a_plan_row_is_reported(atlas_db: Conn, atlas_dsn: str) -> None:
    sid = fill.session(atlas_db, D.running_session_metadata())
    atlas_db.execute("INSERT INTO step_results (session_id, step_id, evaluation) VALUES (%s, 1, NULL)", [sid])
    atlas_db.commit()
    [check] = [r for r in check_database(atlas_dsn, tables=["step_results"]).relations]
    assert check.count == 1
    assert check.examples == [
        f"session_id={sid}, step_id=1: step 1 of session {sid} is not in its plan (plan step ids: no plan row)"
    ]


def test_since_limit_and_tables(atlas_db: Conn, atlas_dsn: str) -> None:
    old = D.session_metadata()
    old["execution_mode"] = "turbo"
    fill.session(atlas_db, old, created_at="2025-10-01 00:00:00+00")
    for day in (1, 2, 3):
        fill.full_session(atlas_db, created_at=f"2025-11-0{day} 00:00:00+00")
    atlas_db.commit()
    assert not check_database(atlas_dsn, tables="sessions").ok
    recent = check_database(atlas_dsn, since="2025-11-01")
    assert recent.ok
    assert recent.column("sessions.metadata").rows_checked == 3
    assert recent.column("plans.plan").rows_checked == 3
    assert recent.column("trajectory_events.event").rows_checked == 24
    limited = check_database(atlas_dsn, tables=["sessions.metadata", "plans"], limit=2)
    assert [c.name for c in limited.columns] == ["sessions.metadata", "plans.plan"]
    assert [c.rows_checked for c in limited.columns] == [2, 2]
    assert limited.ok  # the two newest sessions are clean
    assert [r.name for r in limited.relations] == []  # only whole tables get relational checks
    assert check_database(atlas_dsn, tables=["sessions"], limit=10).relations[0].rows_checked == 4


def test_custom_schema_for_a_column(atlas_db: Conn, atlas_dsn: str) -> None:
    fill.full_session(atlas_db)
    atlas_db.commit()
    strict = {"type": "object", "required": ["team"], "title": "team metadata"}
    report = check_database(
        atlas_dsn, tables=["sessions.metadata"], schemas={"sessions.metadata": strict, "sessions.reward": None}
    )
    [column] = report.columns
    assert (column.schema, column.errors[0].path, column.errors[0].keyword) == ("team metadata", "$", "required")
    with pytest.raises(InvalidArgument):
        check_database(atlas_dsn, schemas={"sessions": "plan"})
    with pytest.raises(InvalidArgument):
        check_database(atlas_dsn, tables=["session"])
    with pytest.raises(InvalidArgument):
        check_database(atlas_dsn, since="last week")
    with pytest.raises(InvalidArgument):
        check_database(atlas_dsn, limit=-1)


def test_runs_read_only_and_leaves_the_connection_as_found(atlas_db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    fill.clean_database(atlas_db)
    from pytest_atlas.contracts import _check

    attempts: list[str] = []
    real_stream = _check._stream

    def stream_and_try_to_write(conn: Conn, *args: Any, **kwargs: Any) -> None:
        try:
            with conn.transaction():
                conn.execute("DELETE FROM guidance_notes")
        except psycopg.errors.ReadOnlySqlTransaction:
            attempts.append("refused")
        real_stream(conn, *args, **kwargs)

    monkeypatch.setattr(_check, "_stream", stream_and_try_to_write)
    assert atlas_db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert check_database(atlas_db, tables=["plans"]).ok
    assert attempts == ["refused"]
    assert atlas_db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # inside an open transaction: uncommitted rows are seen, and the transaction stays writable
    atlas_db.execute(
        "INSERT INTO plans (session_id, plan) SELECT id, %s FROM sessions WHERE status = 'running'",
        [Jsonb({"steps": "none", "execution_mode": "single_shot"})],
    )
    report = check_database(atlas_db, tables=["plans"])
    assert report.column("plans.plan").errors[0].path == "$.steps"
    assert atlas_db.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    atlas_db.execute("DELETE FROM guidance_notes")
    atlas_db.rollback()
    assert atlas_db.execute("SELECT count(*) FROM guidance_notes").fetchone() == (2,)


def test_failed_transaction_is_refused_clearly(atlas_db: Conn) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable):
        atlas_db.execute("SELECT * FROM no_such_table")
    with pytest.raises(AtlasError, match="failed transaction"):
        check_database(atlas_db)
    atlas_db.rollback()


def test_render_and_json(atlas_db: Conn, atlas_dsn: str) -> None:
    _broken(atlas_db)
    report = check_database(atlas_dsn)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("Atlas contract check of postgresql://")
    assert lines[2].split() == ["check", "schema", "rows", "errors", "warnings", "unknown", "keys", "result"]
    assert any(line.startswith("sessions.metadata ") and line.endswith("FAIL") for line in lines)
    assert "$.reward_stats.score  type  2 rows  e.g. id=" in text
    assert "$.team  string×1, integer×1  2 rows (29% of rows)" in text
    data = json.loads(report.to_json())
    assert data["format"] == "pytest-atlas-contract" and data["ok"] is False
    metadata = next(c for c in data["columns"] if c["column"] == "metadata" and c["table"] == "sessions")
    assert metadata["errors"][0]["count"] == 2
    assert {r["check"]: r["outcome"] for r in data["relations"]}["status"] == "fail"
    assert report.census() == {"sessions.metadata:$.team": 2}
    assert isinstance(report, ContractReport)


# ------------------------------------------------------------------------------------------------
# bad input in the database
# ------------------------------------------------------------------------------------------------


def test_missing_table_and_column_of_the_wrong_type(atlas_db: Conn, atlas_dsn: str) -> None:
    fill.clean_database(atlas_db)
    atlas_db.execute("DROP TABLE discovery_runs")
    atlas_db.execute("ALTER TABLE learning_registry ALTER COLUMN metadata TYPE text USING metadata::text")
    atlas_db.execute("ALTER TABLE sessions DROP COLUMN reward_audit")
    atlas_db.commit()
    report = check_database(atlas_dsn)
    problems = {c.name: c.problem for c in report.columns if c.problem}
    assert problems == {
        "sessions.reward_audit": "column sessions.reward_audit does not exist (a database created by an Atlas older "
        "than the column?)",
        "discovery_runs.payload": "table discovery_runs does not exist in this database (is the Atlas schema "
        "loaded, and is it on the search_path?)",
        "discovery_runs.metadata": "table discovery_runs does not exist in this database (is the Atlas schema "
        "loaded, and is it on the search_path?)",
        "learning_registry.metadata": "column learning_registry.metadata has type text; Atlas stores this payload "
        "as jsonb",
    }
    assert not report.ok
    assert report.column("sessions.metadata").outcome == "pass"  # the other columns were still checked
    assert report.column("learning_registry.metadata").outcome == "error"


def test_missing_sessions_table_fails_relations_clearly(atlas_db: Conn, atlas_dsn: str) -> None:
    atlas_db.execute("DROP TABLE sessions CASCADE")
    atlas_db.commit()
    report = check_database(atlas_dsn, tables=["sessions"])
    assert all(c.outcome == "error" for c in report.columns)
    assert all(r.problem and "does not exist" in r.problem for r in report.relations)


def test_unreachable_dsn_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(AtlasError) as info:
        check_database("postgresql://atlas:s3cret-pw@127.0.0.1:1/atlas")
    text = str(info.value)
    assert text.startswith(
        "cannot check the contracts: cannot reach PostgreSQL at postgresql://atlas:***@127.0.0.1:1/atlas"
    )
    assert "s3cret-pw" not in text
    assert "how to fix:" in text
    with pytest.raises(AtlasError, match="cannot reach PostgreSQL"):
        check_database("host=/nonexistent dbname=x")


def test_wrong_connection_types_are_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument):
        check_database(42)  # type: ignore[arg-type]


def test_pathological_jsonb_values(atlas_db: Conn, atlas_dsn: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    big = {"learning_key": "k", "summary": "x" * 50_000_000}
    ids = {
        "deep": fill.session(atlas_db, None),
        "big": fill.session(atlas_db, big),
        "array": fill.session(atlas_db, [D.session_metadata()]),
        "text": fill.session(atlas_db, "just a sentence"),
        "number": fill.session(atlas_db, 42),
        "huge_number": fill.session(atlas_db, None),
    }
    atlas_db.execute(
        "UPDATE sessions SET metadata = jsonb_build_object('learning_key', 'k', 'tenant', %s::jsonb) WHERE id = %s",
        [deep, ids["deep"]],
    )
    atlas_db.execute(
        'UPDATE sessions SET metadata = \'{"learning_key": "k", "task_num": 1e400}\'::jsonb WHERE id = %s',
        [ids["huge_number"]],
    )
    atlas_db.commit()
    # PostgreSQL itself refuses what Atlas could never store: NaN and \u0000
    for literal in ('{"a": NaN}', '{"a": "\\u0000"}'):
        with pytest.raises(psycopg.errors.DataError):
            atlas_db.execute("SELECT %s::jsonb", [literal])
        atlas_db.rollback()
    column = check_database(atlas_dsn, tables=["sessions.metadata"]).column("sessions.metadata")
    found = {(g.path, g.keyword): [k["id"] for k in g.sample_keys] for g in column.errors}
    assert found == {
        ("$", "x-depth"): [ids["deep"]],
        ("$", "type"): [ids["array"], ids["number"]],
        ("$", "pattern"): [ids["text"]],
    }
    # jsonb prints 1e400 as a 401-digit integer, which Python reads as an int: valid, and no crash
    assert column.rows_checked == 6 and column.rows_with_errors == 4
    assert len(column.render()) < 5_000


def test_memory_does_not_grow_with_the_row_count(atlas_db: Conn, atlas_dsn: str) -> None:
    def peak(rows: int) -> int:
        atlas_db.execute("TRUNCATE sessions CASCADE")
        atlas_db.execute(
            "INSERT INTO sessions (task, status, metadata) SELECT 'task', 'running', "
            "jsonb_build_object('learning_key', md5(i::text), 'source', 'atlas run', 'task_num', i, "
            "'team', 'sre', 'tags', CASE WHEN i %% 2 = 0 THEN '\"x\"'::jsonb ELSE '[\"x\"]'::jsonb END) "
            "FROM generate_series(1, %s) AS i",
            [rows],
        )
        atlas_db.commit()
        tracemalloc.start()
        try:
            report = check_database(atlas_dsn, tables=["sessions.metadata"], batch_size=200)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert report.column("sessions.metadata").rows_checked == rows

    small, large = peak(500), peak(10_000)
    assert large < small * 2 + 1_000_000, (small, large)


def test_default_mapping_covers_every_jsonb_column_of_the_schema(atlas_db: Conn) -> None:
    rows = atlas_db.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'jsonb' ORDER BY 1"
    ).fetchall()
    assert sorted(ATLAS_COLUMNS) == [row[0] for row in rows]


def test_a_connection_with_another_row_factory(atlas_db: Conn) -> None:
    from psycopg.rows import dict_row

    fill.clean_database(atlas_db)
    atlas_db.row_factory = dict_row  # type: ignore[assignment]
    report = check_database(atlas_db)
    assert report.ok and report.column("sessions.metadata").rows_checked == 3
    assert atlas_db.execute("SELECT 1 AS one").fetchone() == {"one": 1}


def test_a_scan_lowers_the_thread_switch_interval_only_while_it_reads(atlas_db: Conn) -> None:
    """The fetching helper thread needs the GIL promptly when the server answers (see _prefetched):
    the interval is lowered while the rows are read and put back after, also when the reader stops
    early."""
    import sys

    from pytest_atlas.contracts._check import _prefetched
    from pytest_atlas.contracts._switch import SWITCH_INTERVAL as _SWITCH_INTERVAL

    atlas_db.execute("INSERT INTO sessions (task) SELECT 'task ' || i FROM generate_series(1, 50) AS i")
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        for stop_early in (False, True):
            with atlas_db.cursor(name=f"scan_{stop_early}") as cursor:
                cursor.execute("SELECT id FROM sessions ORDER BY id")
                seen = []
                batches = _prefetched(cursor, 7)
                for batch in batches:
                    assert sys.getswitchinterval() == _SWITCH_INTERVAL
                    seen += [row[0] for row in batch]
                    if stop_early:
                        batches.close()
                        break
                assert sys.getswitchinterval() == 0.004
                assert len(seen) == (7 if stop_early else 50)
    finally:
        sys.setswitchinterval(before)


def test_two_scans_in_two_threads_put_the_switch_interval_back(atlas_db: Conn, atlas_dsn: str) -> None:
    """The interval is lowered process-wide while any scan reads and put back when the last one ends:
    scan A ends while scan B still reads (B keeps it lowered), then B ends (it is put back). Saved and
    restored per scan, A put back 4 ms under B, and B then 'restored' the lowered value for good."""
    import sys
    import threading

    from pytest_atlas.contracts._check import _prefetched
    from pytest_atlas.contracts._switch import SWITCH_INTERVAL as _SWITCH_INTERVAL

    a_reads, b_reads, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, float] = {}
    failures: list[BaseException] = []

    def scan(conn: Conn, name: str, started: threading.Event, wait_for: threading.Event) -> None:
        try:
            with conn.cursor(name=f"scan_{name}") as cursor:
                cursor.execute("SELECT generate_series(1, 50)")
                for number, _batch in enumerate(_prefetched(cursor, 10)):
                    if number == 0:
                        started.set()
                        assert wait_for.wait(30)
                    seen[name] = sys.getswitchinterval()
        except BaseException as exc:
            failures.append(exc)

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    try:
        with psycopg.connect(atlas_dsn) as other:
            a = threading.Thread(target=scan, args=(atlas_db, "a", a_reads, b_reads))
            a.start()
            assert a_reads.wait(30)
            b = threading.Thread(target=scan, args=(other, "b", b_reads, a_done))
            b.start()
            a.join()
            assert sys.getswitchinterval() == _SWITCH_INTERVAL  # B still reads
            a_done.set()
            b.join()
        assert not failures, failures
        assert seen == {"a": _SWITCH_INTERVAL, "b": _SWITCH_INTERVAL}
        assert sys.getswitchinterval() == 0.004
    finally:
        sys.setswitchinterval(before)
