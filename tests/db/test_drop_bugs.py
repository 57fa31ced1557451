"""Faults that are no database error while a used database is dropped or reset: a database is never
lost to one, and the clone worker lives on.

A ``psycopg.Error`` during a drop is the server's say (see ``test_drop_faults.py``). Anything else
(a ``TypeError`` of our own code, an ``OSError``, memory) is a fault of pytest-atlas's or of the
machine: the database is tried once more, then left in place with one line in the summary that
names it and how it goes; later tests still get databases. The first test provokes one for real (a
database whose subscription name our drop read as bytes); the others inject one at a narrow seam of
our own code (the function that makes the DROP statement, the reset's rename, a clone), the
databases and their server staying real.
"""

from __future__ import annotations

import re

import pytest

from tests.db.conftest import PasswordServer
from tests.db.test_subscriptions import drop_leftovers, plugin_databases

#: later tests of an inner run: each needs a database of its own after the fault
LATER = """

@pytest.mark.parametrize("n", range(4))
def test_later(atlas_db, n):
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
"""

#: a subscription named outside ASCII in a database whose client encoding is SQL_ASCII: a connection
#: to that database reads the name as bytes (psycopg decodes no text in SQL_ASCII), which
#: ``sql.Identifier`` refuses with a TypeError while the drop composes ``ALTER SUBSCRIPTION``
ENCODING_INNER = (
    """
import pytest
from psycopg import sql


def test_a_subscription_named_outside_ascii_in_a_sql_ascii_database(atlas_db):
    name = atlas_db.info.dbname
    atlas_db.execute(
        "CREATE SUBSCRIPTION \\"atlas_\u00e9t\u00e9\\" CONNECTION 'host=/nonexistent-atlas-publisher dbname=pub'"
        " PUBLICATION p WITH (connect = false)"
    )
    atlas_db.execute(sql.SQL("ALTER DATABASE {} SET client_encoding = 'SQL_ASCII'").format(sql.Identifier(name)))
    atlas_db.commit()
"""
    + LATER
)


def run_inner(pytester: pytest.Pytester, password_server: PasswordServer, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--atlas-dsn", password_server.url(), *args
    )  # fmt: skip


@pytest.fixture
def clean_server(password_server: PasswordServer) -> PasswordServer:
    """The suite's existing server without databases of earlier runs (each test checks what its run
    left: nothing, or just the database it names)."""
    drop_leftovers(password_server, plugin_databases(password_server))
    assert plugin_databases(password_server) == []
    return password_server


@pytest.mark.parametrize("isolation", ["clone", "reset"])
def test_a_database_whose_subscription_our_drop_read_as_bytes_is_dropped_and_the_worker_lives(
    pytester: pytest.Pytester, clean_server: PasswordServer, isolation: str
) -> None:
    """A test leaves a subscription named outside ASCII and sets its database's client encoding to
    SQL_ASCII. Dropping the database drops the subscription first, on a connection to it: that
    connection read the name as bytes and composing the statement raised a TypeError, which killed
    the clone worker: the database was never dropped and no line said so, and the later tests
    failed (\"the database cloning thread failed\"). Now the drop reads the names as text (its
    connection's encoding is its own), so the database is dropped and every later test passes."""
    pytester.makepyfile(ENCODING_INNER)
    result = run_inner(pytester, clean_server, "--atlas-isolation", isolation)
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str()
        result.assert_outcomes(passed=5)
        assert "left " not in out and "could not drop" not in out, out
        assert left == [], "the run left a database on the server"
        assert not clean_server.leaks(out)
    finally:
        drop_leftovers(clean_server, left)


#: a fault of our own code at the one function that makes a DROP DATABASE statement: for every
#: database whose name contains $ATLAS_BUGGY_DB (or, when that is unset, the database of the
#: first test, which sets it), its first $ATLAS_BUG_TIMES drops raise a TypeError
SEAM_CONFTEST = """
import os

import pytest_atlas.db._postgres as postgres

_real_drop = postgres._drop
_failed = {}


def _drop(conn, name, version_num):
    buggy = os.environ.get("ATLAS_BUGGY_DB")
    if buggy and buggy in name and _failed.get(name, 0) < int(os.environ["ATLAS_BUG_TIMES"]):
        _failed[name] = _failed.get(name, 0) + 1
        raise TypeError("SQL identifier parts must be strings, got b'atlas' instead")
    _real_drop(conn, name, version_num)


postgres._drop = _drop
"""

SEAM_INNER = (
    """
import os

import pytest


def test_first(atlas_db):
    os.environ.setdefault("ATLAS_BUGGY_DB", atlas_db.info.dbname)
"""
    + LATER
)


def test_a_drop_that_fails_once_by_a_bug_is_tried_again_and_the_worker_lives(
    pytester: pytest.Pytester, clean_server: PasswordServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first drop of the first test's database raises a TypeError (no database error). It
    killed the clone worker, lost the database (never dropped, no line) and failed the later tests;
    now the drop is tried again (it passes) and every later test gets its database."""
    monkeypatch.setenv("ATLAS_BUG_TIMES", "1")
    monkeypatch.delenv("ATLAS_BUGGY_DB", raising=False)
    pytester.makeconftest(SEAM_CONFTEST)
    pytester.makepyfile(SEAM_INNER)
    result = run_inner(pytester, clean_server, "--atlas-isolation", "clone")
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str()
        result.assert_outcomes(passed=5)
        assert "left " not in out, out
        assert left == [], "the run left a database on the server"
    finally:
        drop_leftovers(clean_server, left)


def test_a_drop_that_a_bug_keeps_failing_leaves_the_database_with_a_line_and_the_next_run_drops_it(
    pytester: pytest.Pytester, clean_server: PasswordServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every drop of the first test's database raises a TypeError. After one more try the database
    is left in place, and the summary says so in one line that names it, the fault and how it goes
    (the next run on the server drops it: this run is over); later tests still get databases. It
    was lost silently before (no line), and the later tests failed. The next run does drop it."""
    monkeypatch.setenv("ATLAS_BUG_TIMES", "99")
    monkeypatch.delenv("ATLAS_BUGGY_DB", raising=False)
    pytester.makeconftest(SEAM_CONFTEST)
    pytester.makepyfile(SEAM_INNER)
    result = run_inner(pytester, clean_server, "--atlas-isolation", "clone")
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str()
        result.assert_outcomes(passed=5)
        assert len(left) == 1, f"expected just the first test's database left, not {left}:\n{out}"
        [name] = left
        section = out.split("pytest-atlas: clean-up", 1)[-1]
        lines = [line for line in section.splitlines() if name in line]
        assert len(lines) == 1, out
        [line] = lines
        assert line.startswith(f"left {name} in place (could not drop it: TypeError: SQL identifier parts"), line
        assert "the next pytest-atlas run on this server drops it" in line, line
        assert not clean_server.leaks(out)
        # as the line says: the next run (without the fault) drops it as it attaches
        token = re.fullmatch(r"pytest_atlas_([0-9a-f]{8})_\d+", name)
        assert token is not None, name
        (pytester.path / "conftest.py").unlink()
        pytester.makepyfile("def test_nothing(atlas_postgres):\n    pass\n")
        after = run_inner(pytester, clean_server)
        after.assert_outcomes(passed=1)
        after.stdout.fnmatch_lines([f"dropped 1 database(s) left by dead run {token.group(1)}"])
        left = plugin_databases(clean_server)
        assert left == []
    finally:
        drop_leftovers(clean_server, left)


def test_a_drop_at_the_end_of_the_run_that_fails_by_a_bug_leaves_a_line_not_a_crash(
    pytester: pytest.Pytester, clean_server: PasswordServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of the run the templates are dropped one by one; every drop of them raises a
    TypeError. That escaped the run's clean-up (an error at the teardown of the last test, with the
    traceback of the fault) and the templates after the first were not even tried; now each is left
    with its line, and the run's own clones (not faulty) are dropped all the same."""
    monkeypatch.setenv("ATLAS_BUG_TIMES", "99")
    monkeypatch.setenv("ATLAS_BUGGY_DB", "_tpl_")
    pytester.makeconftest(SEAM_CONFTEST)
    pytester.makepyfile(
        "from pytest_atlas import atlas_fixtures\n\n"
        "seeded_db = atlas_fixtures(seed=lambda conn: None).db\n\n\n"
        "def test_one(atlas_db, seeded_db):\n    pass\n"
    )
    result = run_inner(pytester, clean_server, "--atlas-isolation", "clone")
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str() + result.stderr.str()
        assert "INTERNALERROR" not in out, out
        result.assert_outcomes(passed=1)
        assert len(left) == 2 and all("_tpl_" in name for name in left), (left, out)
        for name in left:
            assert f"left {name} in place (could not drop it: TypeError" in out, out
    finally:
        drop_leftovers(clean_server, left)


#: a fault of our own code in a reset, before the database is renamed (it keeps its used name): the
#: first test's database is the one, once
RESET_CONFTEST = """
import os

from pytest_atlas.db._reset import Resetter

_real_rename = Resetter._rename


def _rename(self, admin, name, new_name, mark):
    if name == os.environ.get("ATLAS_BUGGY_DB"):
        del os.environ["ATLAS_BUGGY_DB"]
        raise KeyError("atlas")
    _real_rename(self, admin, name, new_name, mark)


Resetter._rename = _rename
"""


def test_a_reset_that_fails_by_a_bug_drops_the_database_instead_and_the_worker_lives(
    pytester: pytest.Pytester, clean_server: PasswordServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resetting the first test's database raises a KeyError before the rename. That killed a
    reset thread, stopped the pool for the later tests (\"the database reset thread failed\") and lost
    the database (never dropped, no line); now the database is dropped instead of reset, as for any
    reset that cannot be proved, with its count in the isolation line, and every later test passes."""
    monkeypatch.delenv("ATLAS_BUGGY_DB", raising=False)
    pytester.makeconftest(RESET_CONFTEST)
    pytester.makepyfile(SEAM_INNER)
    result = run_inner(pytester, clean_server, "--atlas-isolation", "reset")
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str()
        result.assert_outcomes(passed=5)
        assert "left " not in out, out
        assert "a fault of pytest-atlas's own during the reset (KeyError): 1" in out, out
        assert left == [], "the run left a database on the server"
    finally:
        drop_leftovers(clean_server, left)


#: a fault of our own code just after a clone was made (CREATE DATABASE done): the second clone
CLONE_CONFTEST = """
import pytest_atlas.db._clones as clones

_real_clone = clones.clone_database


def clone_database(admin, server, name, template, *, keep):
    _real_clone(admin, server, name, template, keep=keep)
    if name.endswith("_0002"):
        raise OSError(5, "Input/output error (atlas)")


clones.clone_database = clone_database
"""


def test_a_clone_that_fails_by_a_bug_is_dropped_and_the_waiting_tests_are_told(
    pytester: pytest.Pytester, clean_server: PasswordServer
) -> None:
    """The second clone raises an OSError after CREATE DATABASE. The tests that then wait for a
    database fail with the fault's kind and message, said to be pytest-atlas's own; the clone that was
    made is not forgotten (it was: left on the server, no line), nor is the first test's database."""
    pytester.makeconftest(CLONE_CONFTEST)
    pytester.makepyfile(SEAM_INNER)
    result = run_inner(pytester, clean_server, "--atlas-isolation", "clone")
    left = plugin_databases(clean_server)
    try:
        out = result.stdout.str()
        assert left == [], f"the run left a database on the server:\n{out}"
        assert "left " not in out, out
        result.assert_outcomes(passed=1, errors=4)
        result.stdout.fnmatch_lines(
            ["*could not create a test database from *: OSError: * (a fault of pytest-atlas's own, not the server's)"]
        )
    finally:
        drop_leftovers(clean_server, left)
