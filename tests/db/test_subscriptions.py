"""A database of the plugin's that holds a logical-replication subscription is dropped all the same.

PostgreSQL refuses to drop a database while a subscription lives in it (``pg_subscription`` is a
shared catalog: a subscription is not part of the database's files). The plugin made the database,
so before dropping it it drops the subscriptions in it: disabled, detached from their slot
(``slot_name = NONE``) and pointed at a connection string libpq refuses before it connects, so that
``DROP SUBSCRIPTION`` reaches no publisher. A test's subscription may point at anything: the tests
below point one at a server that records every connection (and never answers), and check that
nothing connected to it. Where the plugin's role may not drop a subscription, the database is left
with one line in the summary. A database the plugin did not make keeps its subscriptions.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_atlas._config import AtlasSettings
from pytest_atlas.db import AtlasPostgres, ClonePool, DatabaseManager, plan_server, start_server
from pytest_atlas.db._cache import default_cache_dir
from pytest_atlas.schema import default_sources
from tests.db.conftest import PasswordServer, embedded_install, postmasters, system_install, wait_gone

#: how long a wait for the background worker may last before the test calls it stuck (a hang guard:
#: each wait ends as soon as the worker dropped the database or gave up on it)
_STUCK = 120.0


def _sub(name: str) -> sql.Composable:
    return sql.Identifier(name)


def subscribe(conn: psycopg.Connection[Any], name: str, conninfo: str, *, enable: bool = False) -> None:
    """A subscription made without contacting anyone (``connect = false``): disabled, with a slot name
    (its own), no slot; ``enable`` starts its apply worker (which then tries ``conninfo``)."""
    conn.execute(
        sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION atlas_pub WITH (connect = false)").format(
            _sub(name), sql.Literal(conninfo)
        )
    )
    if enable:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(_sub(name)))


def unsynchronised_table(conn: psycopg.Connection[Any], name: str) -> None:
    """What a publisher's table list leaves: a table of the subscription not synchronised yet
    (``pg_subscription_rel``, state ``i``). DROP SUBSCRIPTION connects to the publisher to drop such a
    table's synchronisation slot, even with ``slot_name = NONE``. Written directly (as a superuser)
    because no publisher is at hand to make it."""
    conn.execute(
        "INSERT INTO pg_subscription_rel (srsubid, srrelid, srsubstate, srsublsn)"
        " SELECT oid, 'sessions'::regclass, 'i', NULL FROM pg_subscription"
        " WHERE subname = %s AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (name,),
    )


def exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone())


def subscriptions_of(conn: psycopg.Connection[Any], database: str) -> list[str]:
    rows = conn.execute(
        "SELECT subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = %s ORDER BY 1",
        (database,),
    ).fetchall()
    return [str(row[0]) for row in rows]


# -- the plugin's own server: per-test databases, both isolations, both installations -------------


@pytest.fixture(scope="module", params=["system", "embedded"])
def started(request: pytest.FixtureRequest) -> Iterator[AtlasPostgres]:
    """A server the plugin starts, of each installation (PostgreSQL 15 and 18)."""
    install = system_install() if request.param == "system" else embedded_install()
    settings = AtlasSettings(pg_bin=install.bindir, cache_dir=default_cache_dir())
    server = start_server(plan_server(settings, default_sources()))
    try:
        yield server
    finally:
        pids = [pid for pid, cmd in postmasters().items() if str(server.data_dir) in cmd]
        server.stop()
        wait_gone(pids)


@pytest.mark.parametrize("isolation", ["clone", "reset"])
def test_a_used_database_holding_subscriptions_is_dropped_without_contacting_a_publisher(
    started: AtlasPostgres, isolation: str, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_server
    sources = default_sources()
    manager = DatabaseManager(started, sources, keep=False)
    template = manager.pool(sources).template
    pool = ClonePool(started, template, f"sub{secrets.token_hex(3)}_", ahead=0, reset=isolation == "reset")
    try:
        used = pool.acquire()
        with started.connect(used, autocommit=True) as conn:
            # one whose DROP SUBSCRIPTION would connect to its publisher (a table not synchronised yet)
            subscribe(conn, "atlas_idle", f"host=127.0.0.1 port={port} dbname=pub connect_timeout=2")
            unsynchronised_table(conn, "atlas_idle")
            # one enabled, its apply worker running (it cannot reach its publisher), with a name to quote
            subscribe(conn, 'Atlas "live" sub', "host=/nonexistent-atlas-publisher dbname=pub", enable=True)
        pool.release(used)
        with started.admin_connect(autocommit=True) as admin:
            deadline = time.monotonic() + _STUCK
            while exists(admin, used) and not pool.notes:
                assert time.monotonic() < deadline, "the worker neither dropped the database nor gave up"
                time.sleep(0.05)
            assert pool.notes == [], "the database was left"
            assert not exists(admin, used)
            assert admin.execute("SELECT count(*) FROM pg_subscription").fetchone() == (0,)
        assert accepted == [], "the plugin connected to a subscription's publisher"
    finally:
        pool.close(drop=True)
        manager.close()


# -- an existing server (--atlas-dsn): clones, the shared database, a seeded template --------------

INNER = """
import os
import psycopg
import pytest
from pytest_atlas import atlas_fixtures

PUBLISHER = "host=127.0.0.1 port=" + os.environ["ATLAS_SILENT_PORT"] + " dbname=pub"


def fill(conn):
    conn.execute("INSERT INTO sessions (task) VALUES ('seeded')")
    conn.execute(
        "CREATE SUBSCRIPTION atlas_seeded CONNECTION %s PUBLICATION p WITH (connect = false)" % repr(PUBLISHER)
    )


seeded_db = atlas_fixtures(seed=fill).db


def test_in_its_database(atlas_db):
    atlas_db.execute(
        "CREATE SUBSCRIPTION atlas_per_test CONNECTION %s PUBLICATION p WITH (connect = false)" % repr(PUBLISHER)
    )
    atlas_db.commit()


def test_in_the_shared_database(atlas_tx, atlas_postgres):
    with atlas_postgres.connect(atlas_tx.info.dbname, autocommit=True) as conn:
        conn.execute(
            "CREATE SUBSCRIPTION atlas_shared CONNECTION %s PUBLICATION p WITH (connect = false)" % repr(PUBLISHER)
        )


def test_in_a_seeded_family(seeded_db):
    assert seeded_db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
"""


@pytest.fixture
def users_subscribed_database(password_server: PasswordServer) -> Iterator[str]:
    """A database of the user's that holds a subscription: the plugin must leave both alone."""
    name = "users_subscribed"
    with password_server.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with password_server.connect(name) as conn:
        subscribe(conn, "users_own_sub", "host=/nonexistent-atlas-publisher dbname=pub")
    try:
        yield name
    finally:
        with password_server.connect(name) as conn:
            conn.execute("ALTER SUBSCRIPTION users_own_sub SET (slot_name = NONE)")
            conn.execute("DROP SUBSCRIPTION users_own_sub")
        with password_server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def plugin_databases(password_server: PasswordServer) -> list[str]:
    with password_server.connect() as admin:
        rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pytest\\_atlas\\_%' ORDER BY 1")
        return [str(row[0]) for row in rows]


def drop_leftovers(password_server: PasswordServer, names: list[str]) -> None:
    """Clean-up for a test that failed: what a run left, its subscriptions first."""
    for name in names:
        with password_server.connect() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
        with password_server.connect(name) as conn:
            conn.execute("SET client_encoding TO 'UTF8'")  # (a test may have set its database's to SQL_ASCII)
            for sub in subscriptions_of(conn, name):
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(_sub(sub)))
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(_sub(sub)))
                conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(_sub(sub)))
        with password_server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("isolation", ["clone", "reset"])
def test_on_an_existing_server_every_database_of_the_run_is_dropped_with_its_subscriptions(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    users_subscribed_database: str,
    silent_server: tuple[int, list[socket.socket]],
    monkeypatch: pytest.MonkeyPatch,
    isolation: str,
) -> None:
    """A per-test database, the run's shared database (``atlas_tx``) and a seeded template (closed to
    connections) each hold a subscription; at the end of the run none of them is left."""
    port, accepted = silent_server
    # the server is the worker's: databases earlier tests' runs left on it (within the grace of a run
    # that may be reconnecting, which this run's reaper reports leaving alone) are not this test's
    drop_leftovers(password_server, plugin_databases(password_server))
    before = plugin_databases(password_server)
    assert before == []
    monkeypatch.setenv("ATLAS_SILENT_PORT", str(port))
    pytester.makepyfile(INNER)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--atlas-dsn", password_server.url(),
        "--atlas-isolation", isolation,
    )  # fmt: skip
    left = [name for name in plugin_databases(password_server) if name not in before]
    try:
        result.assert_outcomes(passed=3)
        out = result.stdout.str()
        assert "left " not in out and "could not drop" not in out, out
        if isolation == "reset":  # the summary says why the database was not reset
            assert "it holds a subscription (ALTER DATABASE, COMMENT ON DATABASE, CREATE SUBSCRIPTION): 1" in out, out
        assert left == []
        assert accepted == [], "the plugin connected to a subscription's publisher"
        with password_server.connect(users_subscribed_database) as conn:
            assert subscriptions_of(conn, users_subscribed_database) == ["users_own_sub"]
    finally:
        drop_leftovers(password_server, left)


# -- what a dead run left, and what a run kept: the reaper and kept --remove -----------------------


def leftover(password_server: PasswordServer, name: str, *, kept_by: str | None = None, owner: str = "") -> None:
    """A database as a run leaves it (named with its token; labelled kept with ``kept_by``), holding a
    subscription of the server's superuser."""
    with password_server.connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if owner:
            admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))
        if kept_by is not None:
            label = json.dumps({"pytest-atlas": {"token": kept_by, "keep": True}})
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))
    with password_server.connect(name) as conn:
        subscribe(conn, "atlas_left", "host=/nonexistent-atlas-publisher dbname=pub")


def test_the_databases_of_a_dead_run_are_reaped_with_their_subscriptions(
    pytester: pytest.Pytester, password_server: PasswordServer
) -> None:
    token = secrets.token_hex(4)
    name = f"pytest_atlas_{token}_0001"
    leftover(password_server, name)
    try:
        pytester.makepyfile("def test_nothing(atlas_postgres):\n    pass\n")
        result = pytester.runpytest("--atlas-dsn", password_server.url())
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"dropped 1 database(s) left by dead run {token}"])
        assert name not in plugin_databases(password_server)
    finally:
        drop_leftovers(password_server, [n for n in plugin_databases(password_server) if n == name])


def test_kept_remove_drops_a_kept_database_with_its_subscriptions(password_server: PasswordServer) -> None:
    token = secrets.token_hex(4)
    name = f"pytest_atlas_{token}_0001"
    leftover(password_server, name, kept_by=token)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest_atlas", "kept", "--remove", "--dsn", password_server.url()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert f"dropped {name}" in result.stdout.splitlines(), result.stdout + result.stderr
        assert name not in plugin_databases(password_server)
        assert not password_server.leaks(result.stdout + result.stderr)
    finally:
        drop_leftovers(password_server, [n for n in plugin_databases(password_server) if n == name])


def test_a_subscription_the_role_may_not_drop_leaves_the_database_with_a_line(
    pytester: pytest.Pytester, password_server: PasswordServer
) -> None:
    """The run's role (not a superuser) owns the database a dead run left, but the subscription in
    it is the superuser's: the role may not drop it, so the database stays, said in one line, and
    the subscription is as it was."""
    role = f"atlas_sub_{secrets.token_hex(3)}"
    token = secrets.token_hex(4)
    name = f"pytest_atlas_{token}_0001"
    with password_server.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD 'role-pass'").format(sql.Identifier(role)))
    try:
        leftover(password_server, name, owner=role)
        pytester.makepyfile("def test_nothing(atlas_postgres):\n    pass\n")
        dsn = PasswordServer(password_server.port, "role-pass").url(role)
        result = pytester.runpytest("--atlas-dsn", dsn)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [f'could not drop {name} left by a dead run: it holds subscription "atlas_left", which role *{role}*']
        )
        assert name in plugin_databases(password_server)
        with password_server.connect(name) as conn:
            row = conn.execute("SELECT subenabled, subslotname FROM pg_subscription WHERE subname = 'atlas_left'")
            assert row.fetchall() == [(False, "atlas_left")]
    finally:
        drop_leftovers(password_server, [n for n in plugin_databases(password_server) if n == name])
        with password_server.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
