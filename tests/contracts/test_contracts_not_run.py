"""Every contract check is in every report, run or not: ``-x`` (also under pytest-xdist), a
deselection or ``--collect-only`` leave no check out of the JSON report, the step summary or the
count line, so its counts always add up to the checks of the scope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from . import contract_documents as D
from . import fill
from .test_plugin import COLUMNS, RELATIONS

Conn = psycopg.Connection[Any]
ALL = set(COLUMNS + RELATIONS)


def failing_first(conn: Conn) -> None:
    """A database whose first check (sessions.metadata) fails and whose others pass."""
    fill.clean_database(conn)
    bad = D.session_metadata()
    bad["execution_mode"] = "turbo"
    fill.session(conn, bad)
    conn.commit()


def run(pytester: pytest.Pytester, dsn: str, tmp_path: Path, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = tmp_path / "report.json"
    result = pytester.runpytest(
        "--atlas-contract", f"--atlas-target={dsn}", f"--atlas-report={report}", "-p", "no:randomly", *args
    )
    return result, json.loads(report.read_text())


def outcomes(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["outcome"] for check in document["results"]["contract"]}


def count_line(result: pytest.RunResult) -> str:
    return next(line for line in result.stdout.lines if line.startswith("contract: "))


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_checks_after_a_stop_are_reported_as_not_run(
    pytester: pytest.Pytester,
    atlas_db: Conn,
    atlas_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    """``-x``: the report held the checks that ran (1 failed, perhaps a few passed), not the 17 of
    the scope. Under pytest-xdist the other worker may have run every other check before the stop."""
    failing_first(atlas_db)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result, document = run(pytester, atlas_dsn, tmp_path, "-x", *workers)
    assert result.ret != 0
    seen = outcomes(document)
    assert set(seen) == ALL and seen["sessions.metadata"] == "fail"
    assert set(seen.values()) <= {"fail", "pass", "not-run"}
    not_run = [check for check in document["results"]["contract"] if check["outcome"] == "not-run"]
    assert all(check["blocking"] and check["summary"].startswith("not run: the run ") for check in not_run)
    if not workers:
        assert result.ret == 1 and len(not_run) == len(ALL) - 1  # sessions.metadata is the first check
        assert {check["summary"] for check in not_run} == {"not run: the run stopped before it (-x)"}
    totals = document["summary"]
    assert sum(totals.values()) == len(ALL) and totals["not-run"] == len(not_run) and totals["fail"] == 1
    passed = list(seen.values()).count("pass")
    words = [f"{passed} passed"] if passed else []
    words += ["1 failed"] + ([f"{len(not_run)} not run"] if not_run else [])
    expected = "17 checks: " + ", ".join(words)
    assert count_line(result).startswith(f"contract: {expected}"), count_line(result)
    assert f"**contract**: {expected}" in summary.read_text()


def test_deselected_checks_are_reported_as_deselected(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, tmp_path: Path
) -> None:
    failing_first(atlas_db)
    result, document = run(pytester, atlas_dsn, tmp_path, "-k", "not sessions")
    seen = outcomes(document)
    assert set(seen) == ALL
    sessions = {name for name in ALL if name.startswith("sessions")}
    assert {name for name, outcome in seen.items() if outcome == "deselected"} == sessions
    assert {seen[name] for name in ALL - sessions} == {"pass"}
    assert result.ret == 0  # the user left them out: not blocking, never counted as passed
    assert count_line(result).startswith(
        f"contract: 17 checks: {len(ALL - sessions)} passed, {len(sessions)} deselected"
    )


def test_collect_only_lists_every_check_as_not_run(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, tmp_path: Path
) -> None:
    failing_first(atlas_db)
    result, document = run(pytester, atlas_dsn, tmp_path, "--collect-only")
    assert result.ret == 0
    assert set(outcomes(document).values()) == {"not-run"} and set(outcomes(document)) == ALL


def test_a_split_column_whose_every_range_is_deselected_is_deselected(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, tmp_path: Path
) -> None:
    fill.clean_database(atlas_db)
    for _ in range(4):
        fill.session(atlas_db, D.session_metadata())
    atlas_db.commit()
    result, document = run(pytester, atlas_dsn, tmp_path, "--atlas-contract-split-rows=1", "-k", "not metadata[")
    result.stdout.fnmatch_lines(["*deselected*"])
    seen = outcomes(document)
    assert set(seen) == ALL
    assert seen["sessions.metadata"] == "deselected" and seen["sessions.reward_stats"] == "pass"
