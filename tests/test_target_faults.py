"""Faults of the checked database while contract and gate items read it, as users meet them
(pytester inner runs against a real server): a connection the server cuts mid-query (a restart, an
administrator) is read again, a statement timeout and an older schema are errors that say so."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

# numpy refuses to be imported twice in one process: load the gate machinery outside pytester's snapshots
from pytest_atlas.stats import compare  # noqa: F401

from .contracts import fill
from .gates.gates_seed import insert, session_row

Conn = psycopg.Connection[Any]

#: the inner run's conftest: while the item named $VICTIM runs, the Atlas tables are locked; with
#: MODE=kill the first backend that waits for the lock is terminated (as a server restart or an
#: administrator does) and the lock released; with MODE=hold the lock is held until the item ends
FAULTS = """
import os
import threading
import time

import psycopg
import pytest

TABLES = "sessions, plans, step_results, step_attempts, trajectory_events, discovery_runs, learning_registry"


def kill_the_waiting_backend(locker):
    with psycopg.connect(os.environ["ADMIN_DSN"], autocommit=True) as admin:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchall()
            if rows:
                for (pid,) in rows:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                with open(os.environ["KILLED_FILE"], "a") as killed:  # the outer test checks a read was cut
                    killed.write(f"{len(rows)}\\n")
                break
            time.sleep(0.02)
    locker.rollback()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    if item.name != os.environ["VICTIM"]:
        return (yield)
    locker = psycopg.connect(os.environ["ADMIN_DSN"])
    locker.execute(f"LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE")
    killer = None
    if os.environ["MODE"] == "kill":
        killer = threading.Thread(target=kill_the_waiting_backend, args=(locker,))
        killer.start()
    try:
        return (yield)
    finally:
        if killer is not None:
            killer.join()
        locker.close()
"""

GATES = """
[tool.pytest-atlas.gates.floor]
kind = "threshold"
threshold = 0.5
"""


@pytest.fixture
def faults(
    pytester: pytest.Pytester, atlas_postgres: Any, atlas_database: Any, monkeypatch: pytest.MonkeyPatch
) -> pytest.MonkeyPatch:
    monkeypatch.setenv("ADMIN_DSN", atlas_postgres.dsn(atlas_database.name))
    monkeypatch.setenv("KILLED_FILE", str(pytester.path / "killed.txt"))
    pytester.makeconftest(FAULTS)
    pytester.makefile(".toml", pyproject=GATES)
    return monkeypatch


def seed(conn: Conn) -> None:
    insert(conn, [session_row(0.8 + (i % 5) / 100, minute=i) for i in range(40)])
    conn.commit()


def killed(pytester: pytest.Pytester) -> int:
    """How many backends the inner run's conftest terminated while they waited (MODE=kill)."""
    path = pytester.path / "killed.txt"
    return sum(int(line) for line in path.read_text().split()) if path.exists() else 0


def run(pytester: pytest.Pytester, check: str, target: str) -> pytest.RunResult:
    return pytester.runpytest(check, f"--atlas-target={target}", "-p", "no:randomly", "-p", "no:cacheprovider")


def test_a_gate_whose_connection_is_cut_mid_query_is_read_again(
    pytester: pytest.Pytester, faults: pytest.MonkeyPatch, atlas_db: Conn, atlas_dsn: str
) -> None:
    seed(atlas_db)
    faults.setenv("VICTIM", "floor")
    faults.setenv("MODE", "kill")
    result = run(pytester, "--atlas-gates", atlas_dsn)
    result.assert_outcomes(passed=1)
    assert result.ret == 0 and killed(pytester) >= 1


def test_a_contract_item_whose_connection_is_cut_mid_query_is_read_again(
    pytester: pytest.Pytester, faults: pytest.MonkeyPatch, atlas_db: Conn, atlas_dsn: str
) -> None:
    fill.clean_database(atlas_db)
    atlas_db.commit()
    faults.setenv("VICTIM", "sessions.metadata")
    faults.setenv("MODE", "kill")
    result = run(pytester, "--atlas-contract", atlas_dsn)
    result.assert_outcomes(passed=17)
    assert result.ret == 0 and killed(pytester) >= 1


@pytest.mark.parametrize(("check", "victim"), [("--atlas-gates", "floor"), ("--atlas-contract", "sessions.metadata")])
def test_a_statement_timeout_is_an_error_that_names_it(
    pytester: pytest.Pytester, faults: pytest.MonkeyPatch, atlas_db: Conn, atlas_dsn: str, check: str, victim: str
) -> None:
    seed(atlas_db)
    faults.setenv("VICTIM", victim)
    faults.setenv("MODE", "hold")
    separator = "&" if "?" in atlas_dsn else "?"
    result = run(pytester, check, f"{atlas_dsn}{separator}options=-c%20statement_timeout%3D300")
    assert result.parseoutcomes()["errors"] == 1 and result.ret == 7
    result.stdout.fnmatch_lines(["*canceling statement due to statement timeout*"])
    text = result.stdout.str()
    assert "longer than the server's statement_timeout allows: raise it for this role" in text
    assert "Atlas's schema" not in text


def test_a_gate_on_an_older_schema_names_the_missing_column(
    pytester: pytest.Pytester, faults: pytest.MonkeyPatch, atlas_db: Conn, atlas_dsn: str
) -> None:
    seed(atlas_db)
    atlas_db.execute("ALTER TABLE sessions DROP COLUMN reward_stats")
    atlas_db.commit()
    faults.setenv("VICTIM", "none")
    faults.setenv("MODE", "hold")
    result = run(pytester, "--atlas-gates", atlas_dsn)
    assert result.parseoutcomes()["errors"] == 1 and result.ret == 7
    result.stdout.fnmatch_lines(["*column sessions.reward_stats does not exist*", "*how to fix: *older*Atlas*schema*"])
    text = result.stdout.str()
    # the table and column, never the query's alias for the table
    assert "s.reward_stats" not in text.replace("sessions.reward_stats", "")
    assert "the sessions table has no column reward_stats" in text
    assert "ADD COLUMN IF NOT EXISTS" in text and "--atlas-target" in text
