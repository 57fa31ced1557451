"""``pytest --atlas-contract --atlas-target DSN`` as users run it (pytester), against databases the tests filled."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from . import contract_documents as D
from . import fill

Conn = psycopg.Connection[Any]

COLUMNS = [
    "sessions.metadata",
    "sessions.reward",
    "sessions.reward_stats",
    "sessions.reward_audit",
    "plans.plan",
    "step_results.evaluation",
    "step_results.metadata",
    "step_attempts.evaluation",
    "trajectory_events.event",
    "discovery_runs.payload",
    "discovery_runs.metadata",
    "learning_registry.metadata",
]
RELATIONS = [
    "sessions[status]",
    "sessions[review_status]",
    "sessions[completed_at]",
    "sessions[metadata_review_status]",
    "step_results[step_in_plan]",
]


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-contract", f"--atlas-target={dsn}", "-p", "no:randomly", *args)


def test_one_item_per_column_and_relational_check(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    fill.clean_database(atlas_db)
    result = run(pytester, atlas_dsn, "-v")
    result.assert_outcomes(passed=len(COLUMNS) + len(RELATIONS))
    assert result.ret == 0
    lines = result.stdout.lines
    for name in COLUMNS + RELATIONS:
        assert any(line.startswith(f"atlas-contract::{name} PASSED") for line in lines), name
    result.stdout.fnmatch_lines(
        [
            "*= atlas contract =*",
            "database: postgresql://*",
            "check * schema * rows * errors * warnings * unknown keys * result",
            "sessions.metadata * session-metadata * 3 * 0 * 0 * 0 * ok",
            "contract: 17 checks: 17 passed; 0 error(s) and 0 warning(s) in * rows",
        ]
    )


def test_failing_items_show_their_grouped_report(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    sid = fill.full_session(atlas_db)
    bad = D.session_metadata()
    bad["reward_stats"]["score"] = "0.9"
    bad_id = fill.session(atlas_db, bad, status="done")
    fill.session(atlas_db, {**D.session_metadata(), "tags": "latency"})
    atlas_db.execute("INSERT INTO step_results (session_id, step_id, evaluation) VALUES (%s, 7, NULL)", [sid])
    atlas_db.commit()
    result = run(pytester, atlas_dsn)
    assert result.ret == 1
    result.assert_outcomes(failed=3, passed=len(COLUMNS) + len(RELATIONS) - 3)
    result.stdout.fnmatch_lines(
        [
            "*_ atlas contract sessions.metadata _*",
            "sessions.metadata against session-metadata: 3 rows checked (0 NULL skipped), 1 with errors, 1 with warnings",
            "  errors:",
            f"    $.reward_stats.score  type  1 row  e.g. id={bad_id}",
            '        expected number, got string "0.9"',
            "  warnings:",
            "    $.tags  x-atlas-quirk(tags-as-string)  1 row  e.g. id=*",
        ]
    )
    result.stdout.fnmatch_lines([f"    id={bad_id}: status 'done'"])
    result.stdout.fnmatch_lines([f"*step 7 of session {sid} is not in its plan (plan step ids: 1)"])
    failed = [line.split(" - ")[0] for line in result.stdout.lines if line.startswith("FAILED ")]
    assert failed == [
        "FAILED atlas-contract::sessions.metadata",
        "FAILED atlas-contract::sessions[status]",
        "FAILED atlas-contract::step_results[step_in_plan]",
    ]
    assert "Traceback" not in result.stdout.str()


def test_since_and_limit_options(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    old = D.session_metadata()
    old["execution_mode"] = "turbo"
    fill.session(atlas_db, old, created_at="2025-01-01 00:00:00+00")
    fill.full_session(atlas_db, created_at="2025-11-05 00:00:00+00")
    atlas_db.commit()
    assert run(pytester, atlas_dsn, "-k", "sessions.metadata").ret == 1
    since = run(pytester, atlas_dsn, "--atlas-contract-since=2025-11-01", "-k", "sessions.metadata")
    since.assert_outcomes(passed=1)
    since.stdout.fnmatch_lines(["database: postgresql://* (since 2025-11-01)"])
    limited = run(pytester, atlas_dsn, "--atlas-contract-limit=1", "-k", "sessions.metadata")
    limited.assert_outcomes(passed=1)


def test_contract_items_run_under_xdist_and_reach_the_report(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    fill.clean_database(atlas_db)
    bad = D.session_metadata()
    bad["execution_mode"] = "turbo"
    fill.session(atlas_db, bad)
    atlas_db.commit()
    report = pytester.path / "atlas-report.json"
    result = run(pytester, atlas_dsn, "-n", "2", f"--atlas-report={report}")
    result.assert_outcomes(failed=1, passed=len(COLUMNS) + len(RELATIONS) - 1)
    assert result.ret == 1
    # the controller's summary got every worker's results
    result.stdout.fnmatch_lines(
        [
            "sessions.metadata * session-metadata * 4 * 1 * 0 * 0 * FAIL",
            "contract: 17 checks: 16 passed, 1 failed; 1 error(s) and 0 warning(s) in * rows",
        ]
    )
    data = json.loads(report.read_text())
    contract = {entry["name"]: entry for entry in data["results"]["contract"]}
    assert set(contract) == set(COLUMNS + RELATIONS)
    assert contract["sessions.metadata"]["outcome"] == "fail"
    assert contract["sessions.metadata"]["details"]["errors"][0]["path"] == "$.execution_mode"
    assert contract["plans.plan"]["outcome"] == "pass"


def test_without_a_dsn_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--atlas-contract", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--atlas-contract needs the database to check: pass --atlas-target DSN, set $ATLAS_TARGET_DSN, "
            "or set the ini key atlas_target (--atlas-dsn only ever names the server for test databases)"
        ]
    )


def check_counts(result: pytest.RunResult, section: str = "contract") -> dict[str, int]:
    """pytest's outcome counts, checked against the count line of the atlas section: equal, always."""
    line = next(line for line in result.stdout.lines if line.startswith(f"{section}: "))
    counted = line.split(": ", 2)[2].split(";")[0]
    ours = {word: int(count) for count, word in (part.split(" ", 1) for part in counted.split(", "))}
    pytest_counts = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "deselected")}
    names = {
        "passed": "passed",
        "failed": "failed",
        "error": "errors",
        "errors": "errors",
        "inconclusive": "inconclusive",
    }
    assert {names[k]: v for k, v in ours.items()} == pytest_counts, line
    return pytest_counts


ALL = len(COLUMNS) + len(RELATIONS)


def test_unreachable_database_errors_every_item_with_one_clear_message(pytester: pytest.Pytester) -> None:
    result = run(pytester, "postgresql://atlas:pw-not-shown@127.0.0.1:1/atlas")
    assert check_counts(result) == {"errors": ALL}
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        [
            "the contract check sessions.metadata could not run:",
            "cannot check the contracts: cannot reach PostgreSQL at postgresql://atlas:***@127.0.0.1:1/atlas: "
            "*Connection refused*",
            "  how to fix: is the server running and listening there? check the host and port in --atlas-target*",
        ]
    )
    result.stdout.fnmatch_lines([f"{ALL} checks (sessions.metadata, ...): ERROR: cannot check the contracts: *"])
    text = result.stdout.str()
    assert "pw-not-shown" not in text and "Traceback" not in text


def test_a_wrong_password_says_password_and_errors_every_item(pytester: pytest.Pytester, password_dsn: Any) -> None:
    result = run(pytester, password_dsn("not-the-password"))
    assert check_counts(result) == {"errors": ALL}
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        [
            "cannot check the contracts: PostgreSQL at postgresql://pw_*:***@* rejected the password of user 'pw_*': "
            "*password authentication failed*",
            "  how to fix: check the user name and the password in --atlas-target / $ATLAS_TARGET_DSN / ini "
            "atlas_target*",
        ]
    )
    assert "host and port" not in result.stdout.str() and "not-the-password" not in result.stdout.str()


def test_missing_tables_are_errors_of_their_items(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    fill.clean_database(atlas_db)
    atlas_db.execute("DROP TABLE learning_registry")
    atlas_db.execute("DROP TABLE discovery_runs")
    atlas_db.commit()
    result = run(pytester, atlas_dsn)
    assert check_counts(result) == {"errors": 3, "passed": ALL - 3}
    assert result.ret == 7
    result.stdout.fnmatch_lines(["  could not check: table learning_registry does not exist in this database*"])
    result.stdout.fnmatch_lines(["discovery_runs.payload * discovery-payload * 0 * 1 * 0 * * ERROR"])


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, pytest_atlas.plugin._contract; "
        "print(sorted(m for m in ('jsonschema', 'jsonschema_rs', 'psycopg', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = json.loads(out.strip().replace("'", '"'))
    assert "jsonschema" not in heavy and "jsonschema_rs" not in heavy and "hypothesis" not in heavy


def test_a_run_that_checks_no_row_fails(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    fill.clean_database(atlas_db)
    atlas_db.commit()
    result = run(pytester, atlas_dsn, "--atlas-contract-since=2099-01-01")
    assert check_counts(result) == {"failed": ALL}
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "  no row was checked anywhere in this run: a check of nothing proves nothing (is "
            "--atlas-contract-since after the newest row, or is this the database Atlas writes to?)"
        ]
    )
    # an empty table among tables with rows is fine: the run has evidence
    fine = run(pytester, atlas_dsn, "--atlas-contract-since=2025-01-01")
    assert check_counts(fine) == {"passed": ALL} and fine.ret == 0


def test_check_database_that_checked_no_row_is_not_ok(atlas_db: Conn, atlas_dsn: str) -> None:
    from pytest_atlas import check_database

    fill.clean_database(atlas_db)
    atlas_db.commit()
    report = check_database(atlas_dsn, since="2099-01-01")
    assert not report.ok and report.empty and report.rows_checked == 0
    assert "no row was checked anywhere in this run" in str(report)
    assert check_database(atlas_dsn).ok


def test_junit_properties_and_the_step_summary_carry_contract_results(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill.clean_database(atlas_db)
    bad = D.session_metadata()
    bad["execution_mode"] = "turbo"
    fill.session(atlas_db, bad)
    atlas_db.commit()
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run(pytester, atlas_dsn, f"--junitxml={junit}")
    assert result.ret == 1
    xml = junit.read_text()
    assert '<property name="atlas_contract" value="sessions.metadata"' in xml
    assert '<property name="atlas_outcome" value="fail"' in xml and '<property name="atlas_outcome" value="pass"' in xml
    markdown = summary.read_text()
    assert "**contract**: 17 checks: 16 passed, 1 failed" in markdown
    assert "| sessions.metadata | session-metadata | 4 | 1 | 0 | 0 | ❌ FAIL |" in markdown


def test_a_sql_ascii_database_is_checked(pytester: pytest.Pytester, atlas_postgres: Any, atlas_db: Conn) -> None:
    """Text from a SQL_ASCII database used to arrive as bytes (every check erred with "has type b'jsonb'");
    now it is checked, and bytes that are not UTF-8 are a violation of their row."""
    from pytest_atlas.schema import default_sources, load_sources

    name = f"atlas_sql_ascii_{atlas_db.info.dbname}"
    with atlas_postgres.connect(autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        with atlas_postgres.connect(name) as conn:
            load_sources(conn, default_sources())
            fill.clean_database(conn)
            sid = fill.session(conn, D.session_metadata())
            conn.execute(  # a raw byte 0xE9 inside a JSON string: SQL_ASCII stores it unchecked
                "UPDATE sessions SET metadata = jsonb_set(metadata, '{task_note}', "
                "to_jsonb(convert_from('\\xe9'::bytea, 'SQL_ASCII'))) WHERE id = %s",
                [sid],
            )
            conn.commit()
        result = run(pytester, atlas_postgres.dsn(name))
        assert check_counts(result) == {"failed": 1, "passed": ALL - 1}
        result.stdout.fnmatch_lines(
            [
                "    $  x-parse  1 row  e.g. id=*",
                "        not UTF-8 text (invalid continuation byte at byte *): the database (server_encoding "
                "SQL_ASCII) stores bytes unchecked",
            ]
        )
        assert "b'jsonb'" not in result.stdout.str()
    finally:
        with atlas_postgres.connect(autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CLOSE_THE_DATABASE_DURING_THE_FIRST_ITEM = """
import os

import psycopg
import pytest
from psycopg import sql


def allow(on):
    with psycopg.connect(os.environ["ADMIN_DSN"], autocommit=True) as admin:
        statement = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}")
        admin.execute(statement.format(sql.Identifier(os.environ["TARGET_DB"]), sql.SQL(on)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    first = item.name == "sessions.metadata"
    if first:
        allow("false")
    try:
        return (yield)
    finally:
        if first:
            allow("true")
"""


def test_a_passing_connection_fault_is_not_remembered_by_the_later_items(
    pytester: pytest.Pytester,
    atlas_postgres: Any,
    atlas_database: Any,
    atlas_db: Conn,
    atlas_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses connections while the first item runs (a restart, a maintenance window),
    then takes them again: that item is an error, every later one checks its rows. (The first
    connection failure of a process was re-raised by every later item, the fault long gone.)"""
    fill.clean_database(atlas_db)
    atlas_db.commit()
    monkeypatch.setenv("ADMIN_DSN", atlas_postgres.dsn("postgres"))
    monkeypatch.setenv("TARGET_DB", atlas_database.name)
    pytester.makeconftest(CLOSE_THE_DATABASE_DURING_THE_FIRST_ITEM)
    result = run(pytester, atlas_dsn)
    assert check_counts(result) == {"errors": 1, "passed": ALL - 1}
    result.stdout.fnmatch_lines(["the contract check sessions.metadata could not run:", "*not currently accepting*"])
    assert result.ret == 7


def _bare_sessions(conn: Conn, count: int) -> None:
    """Sessions with no JSON at all (every JSONB column NULL) and no other table's rows."""
    for index in range(count):
        conn.execute("INSERT INTO sessions (task, status) VALUES (%s, 'succeeded')", (f"task {index}",))
    conn.commit()


def test_json_checks_of_a_run_that_checked_no_document_fail(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """Rows for the relational checks are no evidence for the JSON schemas: 5 sessions whose every
    JSONB column is NULL passed all 17 checks, 12 of them on 0 rows."""
    _bare_sessions(atlas_db, 5)
    result = run(pytester, atlas_dsn, "-v")
    assert check_counts(result) == {"failed": len(COLUMNS), "passed": len(RELATIONS)}
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no JSON document was checked anywhere in this run*"])
    for column in COLUMNS:
        result.stdout.fnmatch_lines([f"*{column}*FAILED*"])


def test_check_database_of_rows_without_json_is_not_ok(atlas_db: Conn, atlas_dsn: str) -> None:
    from pytest_atlas import check_database

    _bare_sessions(atlas_db, 5)
    report = check_database(atlas_dsn)
    assert not report.ok
    assert all(column.outcome == "fail" and column.empty_run for column in report.columns)
    assert all(relation.outcome == "pass" for relation in report.relations)
    assert sum(relation.rows_checked for relation in report.relations) > 0
    assert "no JSON document was checked anywhere in this run" in str(report)


def test_a_database_of_discovery_runs_alone_passes(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    """The relational checks look at sessions and steps: no row for them is fine when the JSON
    checks had documents (Atlas's discovery CLI writes discovery runs before any session)."""
    fill.discovery(atlas_db)
    atlas_db.commit()
    result = run(pytester, atlas_dsn)
    assert check_counts(result) == {"passed": ALL}
    assert result.ret == 0
