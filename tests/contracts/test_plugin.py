"""``pytest --atlas-contract --atlas-dsn DSN`` as users run it (pytester), against databases the tests filled."""

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
    return pytester.runpytest("--atlas-contract", f"--atlas-dsn={dsn}", "-p", "no:randomly", *args)


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
            "contract: 0 error(s), 0 warning(s) in 17 checks",
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
            "contract: 1 error(s), 0 warning(s) in 17 checks",
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
    result.stderr.fnmatch_lines(["*--atlas-contract needs the database to check: pass --atlas-dsn DSN*"])


def test_unreachable_database_fails_every_item_with_a_clear_message(pytester: pytest.Pytester) -> None:
    result = run(pytester, "postgresql://atlas:pw-not-shown@127.0.0.1:1/atlas")
    result.assert_outcomes(failed=len(COLUMNS) + len(RELATIONS))
    result.stdout.fnmatch_lines(
        [
            "the contract check of sessions.metadata could not run:",
            "cannot connect to postgresql://atlas:***@127.0.0.1:1/atlas to check its contracts: *",
            "  how to fix: *",
        ]
    )
    text = result.stdout.str()
    assert "pw-not-shown" not in text
    assert "Traceback" not in text


def test_missing_table_is_a_failing_item(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    atlas_db.execute("DROP TABLE learning_registry")
    atlas_db.commit()
    result = run(pytester, atlas_dsn, "-k", "learning_registry")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  could not check: table learning_registry does not exist in this database*"])


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, pytest_atlas.plugin._contract; "
        "print(sorted(m for m in ('jsonschema', 'jsonschema_rs', 'psycopg', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = json.loads(out.strip().replace("'", '"'))
    assert "jsonschema" not in heavy and "jsonschema_rs" not in heavy and "hypothesis" not in heavy
