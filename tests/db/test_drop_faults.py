"""Faults while the clone worker drops a used database, made for real on a small existing server.

A fault that passes (the server is full, so neither the worker's reconnect nor the connection a drop
needs to a database holding subscriptions is taken) puts the database back in the queue: it is
dropped once the server takes connections again, never lost and never left for that. A fault that
stays (the server refuses the login to that database) leaves it at once, with one line.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pytest_atlas.db import AtlasPostgres, ClonePool
from pytest_atlas.db._clones import _DROP_ATTEMPTS, drop_all
from pytest_atlas.db._external import attach_server
from pytest_atlas.db._postgres import create_template
from pytest_atlas.schema import default_sources
from tests.db.conftest import OwnServer, own_password_server
from tests.db.test_subscriptions import drop_leftovers, exists, subscribe, subscriptions_of

#: a hang guard for each wait below (each ends as soon as what it waits for happened)
_STUCK = 120.0
#: what PostgreSQL logs (and says) when every connection slot is taken
_FULL = "sorry, too many clients already"
_REJECTED = "pg_hba.conf rejects connection"


@pytest.fixture
def small() -> Iterator[tuple[OwnServer, AtlasPostgres, str]]:
    """A server of the test's own with 10 connection slots, attached as an existing server, with a
    template of the default schema: ``(server, atlas_postgres, template)``."""
    with own_password_server(max_connections=10) as server:
        atlas = attach_server(server.url(), "test")
        template = f"{atlas.db_prefix}tpl_faults"
        try:
            create_template(atlas, template, default_sources())
            yield server, atlas, template
        finally:
            drop_all(atlas, [template])
            atlas.stop()


def fill(server: OwnServer) -> list[psycopg.Connection[Any]]:
    """Connections taking every free slot of ``server`` (its superuser may use them all)."""
    taken: list[psycopg.Connection[Any]] = []
    while True:
        try:
            taken.append(server.connect())
        except psycopg.OperationalError as exc:
            if _FULL not in str(exc):
                raise
            return taken


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + _STUCK
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def worker_backend(ctl: psycopg.Connection[Any]) -> int:
    """The clone worker's connection (the other client besides ``ctl`` and the run's lock holders)."""
    rows = ctl.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        " AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
    ).fetchall()
    [(pid,)] = rows
    return int(pid)


def test_a_victim_whose_reconnect_the_full_server_refuses_is_dropped_later_not_lost(
    small: tuple[OwnServer, AtlasPostgres, str],
) -> None:
    """The worker's connection is cut and the server is full when a used database is to be dropped:
    the drop fails (a fault that passes), and so does reconnecting for the next try. The database
    stays queued, and is dropped once the server has room (it was lost: never dropped, no line)."""
    server, atlas, template = small
    pool = ClonePool(atlas, template, f"{atlas.db_prefix}lost{secrets.token_hex(2)}_", ahead=0)
    fillers: list[psycopg.Connection[Any]] = []
    try:
        used = pool.acquire()
        with server.connect() as ctl:
            worker = worker_backend(ctl)
            fillers += fill(server)
            ctl.execute("SELECT pg_terminate_backend(%s)", (worker,))
            wait_for(
                lambda: not ctl.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (worker,)).fetchone(),
                "the worker's backend did not end",
            )
            fillers += fill(server)  # (its slot too)
            refused = server.log().count(_FULL)
            pool.release(used)
            wait_for(lambda: server.log().count(_FULL) > refused, "the worker never tried to reconnect")
            for conn in fillers:
                conn.close()
            fillers = []
            pool.close(drop=True)
            assert pool.notes == []
            assert not exists(ctl, used), "the used database was lost: never dropped, and no line says so"
    finally:
        for conn in fillers:
            conn.close()
        pool.close(drop=True)


@contextlib.contextmanager
def used_with_subscription(small: tuple[OwnServer, AtlasPostgres, str], label: str) -> Iterator[tuple[ClonePool, str]]:
    """A pool of ``small``'s template and a database it handed out that holds a subscription (its drop
    needs a connection to it); afterwards the pool is closed and what is left of the database dropped."""
    server, atlas, template = small
    pool = ClonePool(atlas, template, f"{atlas.db_prefix}{label}{secrets.token_hex(2)}_", ahead=0)
    used = ""
    try:
        used = pool.acquire()
        with server.connect(used) as conn:
            subscribe(conn, f"atlas_{label}", "host=/nonexistent-atlas-publisher dbname=pub")
        yield pool, used
    finally:
        pool.close(drop=True)
        if used:
            with server.connect() as ctl:
                left = [used] if exists(ctl, used) else []
            drop_leftovers(server, left)


def test_a_drop_the_full_server_takes_no_connection_for_is_retried_until_it_can(
    small: tuple[OwnServer, AtlasPostgres, str],
) -> None:
    """A used database holding a subscription needs a connection to it to be dropped; while the server
    is full that connection is refused (a fault that passes), however often: the database stays
    queued (the refusals are no attempts at the drop), and is dropped once the server has room."""
    server = small[0]
    fillers: list[psycopg.Connection[Any]] = []
    with used_with_subscription(small, "full") as (pool, used), server.connect() as ctl:
        try:
            fillers += fill(server)
            refused = server.log().count(_FULL)
            pool.release(used)
            # more refusals than the attempts a drop gets (the worker's reconnects are refused too)
            wait_for(
                lambda: server.log().count(_FULL) > refused + _DROP_ATTEMPTS or pool.notes,
                "the worker stopped trying",
            )
            assert pool.notes == [], "the database was given up while the server was only full"
        finally:
            for filler in fillers:
                filler.close()
        pool.close(drop=True)
        assert pool.notes == []
        assert not exists(ctl, used)
        assert subscriptions_of(ctl, used) == []


def test_while_a_drop_waits_for_a_slot_the_next_test_gets_a_clone_and_the_worker_drops_it_later(
    small: tuple[OwnServer, AtlasPostgres, str],
) -> None:
    """While a drop waits for a connection slot (a used database holding a subscription, the server
    full), the next test still gets a clone (the worker's own connection, or the slot it frees, is
    enough for CREATE DATABASE), and the worker itself drops the used database once a slot is free,
    before the run ends."""
    server = small[0]
    fillers: list[psycopg.Connection[Any]] = []
    with used_with_subscription(small, "keep") as (pool, used), server.connect() as ctl:
        try:
            fillers += fill(server)
            refused = server.log().count(_FULL)
            pool.release(used)
            wait_for(lambda: server.log().count(_FULL) > refused, "the drop never asked for a connection")
            fresh = pool.acquire()  # the server is still full
            assert exists(ctl, fresh) and fresh != used
            assert exists(ctl, used), "the used database was dropped although no slot was free"
        finally:
            for filler in fillers:
                filler.close()
        # the worker itself drops it once a slot is free (not the run's end)
        wait_for(lambda: not exists(ctl, used), "the worker never dropped the used database")
        pool.release(fresh)
        pool.close(drop=True)
        assert pool.notes == []
        assert not exists(ctl, fresh)


def test_a_drop_whose_connection_the_server_refuses_leaves_the_database_at_once_with_a_line(
    small: tuple[OwnServer, AtlasPostgres, str],
) -> None:
    """pg_hba.conf rejects connections to a used database holding a subscription: a fault that stays.
    The database is left with one line after that one refusal (it was tried again as if the fault
    would pass, once per attempt), and the subscription is as it was."""
    server, atlas, template = small
    pool = ClonePool(atlas, template, f"{atlas.db_prefix}hba{secrets.token_hex(2)}_", ahead=0)
    hba = server.pgdata / "pg_hba.conf"
    original = hba.read_text()
    used = ""
    try:
        used = pool.acquire()
        with server.connect(used) as conn:
            subscribe(conn, "atlas_hba", "host=/nonexistent-atlas-publisher dbname=pub")
        with server.connect() as ctl:
            hba.write_text(f'host "{used}" all 127.0.0.1/32 reject\n' + original)
            ctl.execute("SELECT pg_reload_conf()")

            def refused() -> bool:
                try:
                    server.connect(used).close()
                except psycopg.OperationalError as exc:
                    return _REJECTED in str(exc)
                return False

            wait_for(refused, "the server did not take the new pg_hba.conf")
            before = server.log().count(_REJECTED)
            pool.release(used)
            wait_for(lambda: pool.notes, "the worker neither dropped the database nor gave up")
            [note] = pool.notes
            assert note.startswith(f"left {used} in place (could not drop it: it holds subscriptions"), note
            assert "pg_hba.conf" in note and not server.leaks(note), note
            assert server.log().count(_REJECTED) == before + 1, "a refused login was tried again"
            assert exists(ctl, used)
            assert subscriptions_of(ctl, used) == ["atlas_hba"]
    finally:
        pool.close(drop=True)
        hba.write_text(original)
        with server.connect() as ctl:
            ctl.execute("SELECT pg_reload_conf()")
            if used:

                def admitted() -> bool:
                    try:
                        server.connect(used).close()
                    except psycopg.OperationalError:
                        return not exists(ctl, used)
                    return True

                wait_for(admitted, "the server did not take pg_hba.conf back")
                left = [used] if exists(ctl, used) else []
        if used:
            drop_leftovers(server, left)
