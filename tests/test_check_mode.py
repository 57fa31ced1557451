"""Check mode as users run it: ``--atlas-target`` is the database checked, ``--atlas-dsn`` the server for
test databases; only check items run unless asked; nothing is ever written to the target."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.db import connect_target

# numpy refuses to be imported twice in one process: load the gate machinery outside pytester's
# sys.modules snapshots
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .gates.gates_seed import insert, session_row

GATES = """
[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = 0.5

[tool.pytest-atlas.gates.no-quarantine]
kind = "review"
"""

ORDINARY = """
import pytest

def test_one():
    pass

def test_two(atlas_db):
    atlas_db.execute("CREATE TABLE made_by_a_test (x int)")

@pytest.mark.atlas_gate("coach-share", kind="execution_modes", modes={"auto": [0.5, 1.0]})
def test_runs_the_harness():
    pass
"""


def seed(conn: psycopg.Connection[Any], n: int = 40) -> None:
    insert(conn, [session_row(0.8 + (i % 5) / 100, minute=i) for i in range(n)])
    conn.commit()


def footprint(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """What a write to the target would change: its relations and its rows. (The server's list of
    databases is no witness: this run's own clone pool creates and drops databases there meanwhile.)"""
    relations = conn.execute(
        "SELECT array_agg(relname ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    ).fetchone()
    sessions = conn.execute("SELECT count(*), max(id), max(review_status) FROM sessions").fetchone()
    return relations, sessions


def test_only_check_items_run_and_the_header_says_what_was_left_out(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed(atlas_db)
    pytester.makefile(".toml", pyproject=GATES)
    pytester.makepyfile(test_project=ORDINARY)
    before = footprint(atlas_db)
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-v", "-p", "no:randomly")
    assert result.ret == 0
    result.assert_outcomes(passed=4, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "atlas: --atlas-gates check postgresql://*/* (read-only); ordinary tests are left out "
            "(add --atlas-with-tests to run them too)",
            "*collected 6 items / 2 deselected / 4 selected",
            "atlas: 2 ordinary tests left out: only contract and gate items run with --atlas-contract / "
            "--atlas-gates; add --atlas-with-tests to run them too",
        ]
    )
    # the test carrying the marker runs, right before its gate
    result.stdout.fnmatch_lines(
        ["*test_project.py::test_runs_the_harness PASSED*", "*test_project.py::atlas_gate?coach-share? PASSED*"]
    )
    assert "test_one" not in result.stdout.str()
    assert footprint(atlas_db) == before


def test_under_xdist_the_summary_says_what_was_left_out(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed(atlas_db)
    pytester.makefile(".toml", pyproject=GATES)
    pytester.makepyfile(test_project=ORDINARY)
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-n", "2", "-p", "no:randomly")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["atlas: 2 ordinary tests left out: only contract and gate items run*"])


def test_with_tests_the_ordinary_tests_run_on_their_own_server_not_on_the_target(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed(atlas_db)
    pytester.makefile(".toml", pyproject=GATES)
    pytester.makepyfile(test_project=ORDINARY)
    before = footprint(atlas_db)
    result = pytester.runpytest(
        "--atlas-gates", f"--atlas-target={atlas_dsn}", "--atlas-with-tests", "-p", "no:randomly"
    )
    assert result.ret == 0
    result.assert_outcomes(passed=6)
    # test_two created a table in its own test database: none of it reached the target
    assert footprint(atlas_db) == before
    assert atlas_db.execute("SELECT to_regclass('made_by_a_test')").fetchone() == (None,)


def test_contract_mode_counts_its_items_as_collected(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed(atlas_db)
    pytester.makepyfile(test_project="def test_one():\n    pass\n")
    result = pytester.runpytest("--atlas-contract", f"--atlas-target={atlas_dsn}", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["collected 18 items / 1 deselected / 17 selected"])
    assert "collected 0 items" not in result.stdout.str()
    result.assert_outcomes(passed=17, deselected=1)


@pytest.mark.parametrize(
    ("where", "args"),
    [
        ("command line", []),
        ("ini", ["-o", "atlas_target={dsn}"]),
    ],
)
def test_the_target_comes_from_the_command_line_the_environment_or_the_ini(
    pytester: pytest.Pytester,
    atlas_db: psycopg.Connection[Any],
    atlas_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    args: list[str],
) -> None:
    seed(atlas_db)
    pytester.makefile(".toml", pyproject=GATES)
    given = [arg.format(dsn=atlas_dsn) for arg in args] if args else [f"--atlas-target={atlas_dsn}"]
    assert pytester.runpytest("--atlas-gates", *given, "-p", "no:randomly").ret == 0
    monkeypatch.setenv("ATLAS_TARGET_DSN", atlas_dsn)
    assert pytester.runpytest("--atlas-gates", "-p", "no:randomly").ret == 0


def test_a_missing_target_is_a_usage_error_even_with_atlas_dsn(pytester: pytest.Pytester, atlas_dsn: str) -> None:
    pytester.makefile(".toml", pyproject=GATES)
    result = pytester.runpytest("--atlas-gates", "--atlas-contract", f"--atlas-dsn={atlas_dsn}", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --atlas-contract and --atlas-gates need the database to check: pass --atlas-target DSN, set "
            "$ATLAS_TARGET_DSN, or set the ini key atlas_target (--atlas-dsn only ever names the server for test "
            "databases)"
        ]
    )


def test_the_target_password_is_never_printed(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=GATES)
    result = pytester.runpytest(
        "--atlas-gates", "--atlas-target=postgresql://u:target-secret@127.0.0.1:1/atlas", "-p", "no:randomly", "-l"
    )
    text = result.stdout.str() + result.stderr.str()
    assert "postgresql://u:***@127.0.0.1:1/atlas" in text
    assert "target-secret" not in text


def test_target_connections_cannot_write(atlas_db: psycopg.Connection[Any], atlas_dsn: str) -> None:
    seed(atlas_db, 3)
    with connect_target(atlas_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (3,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO sessions (task) VALUES ('written by a check')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE made_by_a_check (x int)")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.transaction():
            conn.execute("DELETE FROM sessions")
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (3,)
