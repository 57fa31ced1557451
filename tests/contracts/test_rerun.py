"""Contract items and pytest's reruns: ``--lf`` runs the contract checks that failed last time (and
``--ff`` runs them first), whatever their node ids look like; a failing check never looks fixed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from . import contract_documents as D
from . import fill

Conn = psycopg.Connection[Any]

#: the checks the bad rows below fail: a JSON column and a relational check (a node id with brackets)
FAILING = ["atlas-contract::sessions.metadata", "atlas-contract::sessions[status]"]


def _bad_rows(conn: Conn) -> None:
    fill.clean_database(conn)
    bad = D.session_metadata()
    bad["execution_mode"] = "turbo"  # not in the schema's enum: sessions.metadata fails
    fill.session(conn, bad, status="done")  # not a status of the Atlas SDK: sessions[status] fails
    conn.commit()


def _run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-contract", f"--atlas-target={dsn}", "-p", "no:randomly", "-rf", *args)


def _failed(result: pytest.RunResult) -> list[str]:
    return sorted(
        line.split(" - ")[0].removeprefix("FAILED ") for line in result.stdout.lines if line.startswith("FAILED ")
    )


def test_last_failed_reruns_the_failed_contract_checks_and_fails_again(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    _bad_rows(atlas_db)
    first = _run(pytester, atlas_dsn)
    assert first.ret == 1
    assert _failed(first) == sorted(FAILING)
    again = _run(pytester, atlas_dsn, "--lf")
    assert again.ret == 1, again.stdout.str()
    assert _failed(again) == sorted(FAILING)
    again.assert_outcomes(failed=2, deselected=15)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures*"])
    # the other checks were deselected by --lf: listed as such in the count line, never as passed
    again.stdout.fnmatch_lines(["contract: 17 checks: 2 failed, 15 deselected; *"])


def test_failed_first_runs_the_failed_contract_checks_first(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    _bad_rows(atlas_db)
    assert _run(pytester, atlas_dsn).ret == 1
    again = _run(pytester, atlas_dsn, "--ff", "-v")
    assert again.ret == 1
    ran = [line.split(" ")[0] for line in again.stdout.lines if line.startswith("atlas-contract::")]
    assert len(ran) == 17
    assert sorted(ran[:2]) == sorted(FAILING), ran


def test_last_failed_reruns_every_id_range_of_a_failed_split_column(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """A split column's verdict needs all its ranges: --lf reruns them all, not only the failed
    one (which alone would be no verdict), and the column fails again."""
    _bad_rows(atlas_db)
    for _ in range(8):
        fill.session(atlas_db, D.session_metadata())
    atlas_db.commit()
    first = _run(pytester, atlas_dsn, "--atlas-contract-split-rows=4")
    assert first.ret == 1
    failed_ranges = [nodeid for nodeid in _failed(first) if nodeid.startswith(FAILING[0] + "[")]
    assert failed_ranges and len(failed_ranges) < 4, _failed(first)
    again = _run(pytester, atlas_dsn, "--atlas-contract-split-rows=4", "--lf", "-v")
    assert again.ret == 1, again.stdout.str()
    ran = [line.split(" ")[0] for line in again.stdout.lines if line.startswith("atlas-contract::")]
    assert sorted(ran) == sorted([f"{FAILING[0]}[{index}/4]" for index in range(1, 5)] + [FAILING[1]])
    again.stdout.fnmatch_lines(["contract: 17 checks: 2 failed, 15 deselected; *"])
