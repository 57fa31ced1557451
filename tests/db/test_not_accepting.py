"""A server that is up but not accepting connections for a while (a standby before it is promoted,
a server starting up) is a fault that passes: the clone pool retries it with its backoff and serves
the next test once the server takes connections again, instead of remembering it as a fault that
stays and failing every later test."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from pytest_atlas.db import AtlasPostgres, ClonePool
from pytest_atlas.db._connect import connection_error, is_transient
from pytest_atlas.errors import ServerUnavailable
from tests.db.conftest import OwnServer, as_account, own_password_server

NOT_ACCEPTING = "the database system is not accepting connections"


def _handle(server: OwnServer) -> AtlasPostgres:
    """The plugin's handle on the test's own server (as the fixtures make one), with its password."""
    params = {"host": "127.0.0.1", "port": str(server.port), "user": "postgres", "password": server.password}
    return AtlasPostgres(
        host="127.0.0.1",
        port=server.port,
        user="postgres",
        version="",
        version_num=150000,
        source="",
        cache="",
        owned=False,
        db_prefix="atlas_",
        _params=params,
        _admin=params,
    )


def _as_standby(server: OwnServer) -> Path:
    """Restart ``server`` as a standby without hot standby: up, and refusing every connection with
    'not accepting connections' until it is promoted. Returns its data folder."""
    pgdata = Path(server.command[server.command.index("-D") + 1])
    server.stop()
    subprocess.run([*_as_owner(), "touch", str(pgdata / "standby.signal")], check=True, cwd="/")
    server.proc = subprocess.Popen(
        [*server.command, "-c", "hot_standby=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/"
    )
    deadline = time.monotonic() + 60
    while True:
        assert server.proc.poll() is None, "the standby exited"
        assert time.monotonic() < deadline, "the standby did not come up"
        try:
            server.connect().close()
        except psycopg.OperationalError as exc:
            if NOT_ACCEPTING in str(exc):
                return pgdata
        else:
            pytest.fail("the standby accepted a connection")
        time.sleep(0.05)


def _as_owner() -> list[str]:
    """The prefix that runs a command as the server's account (own_password_server's: 'postgres'
    when the tests run as root, else this account)."""
    return as_account("postgres") if os.geteuid() == 0 else []


def _promote(pgdata: Path) -> None:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(
        [*_as_owner(), f"{bindir}/pg_ctl", "promote", "-w", "-D", str(pgdata)], check=True, capture_output=True, cwd="/"
    )


def test_not_accepting_connections_is_a_fault_that_passes() -> None:
    with own_password_server() as server:
        _as_standby(server)
        with pytest.raises(psycopg.OperationalError) as refused:
            server.connect()
        assert NOT_ACCEPTING in str(refused.value)
        assert is_transient(refused.value)
        error = connection_error(refused.value, server.url())
        assert isinstance(error, ServerUnavailable), error
        assert "is not accepting connections" in error.problem and server.password not in str(error)


def test_the_clone_pool_waits_for_a_server_that_does_not_accept_connections_yet() -> None:
    with own_password_server() as server:
        with server.connect() as admin:
            admin.execute("CREATE DATABASE pool_standby_tpl")
        handle = _handle(server)
        pool = ClonePool(handle, "pool_standby_tpl", "standby_", ahead=0)
        promoter: threading.Thread | None = None
        try:
            first = pool.acquire()
            pool.release(first)
            pgdata = _as_standby(server)  # every session of the pool ends; reconnecting is refused
            tried = threading.Event()

            def promote_later() -> None:
                # once the pool has met the refusal (its worker reconnects for the drop), let it in
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not _pool_tried(pool):
                    time.sleep(0.05)
                tried.set()
                _promote(pgdata)

            promoter = threading.Thread(target=promote_later, daemon=True)
            promoter.start()
            second = pool.acquire()  # served once the server takes connections again
            assert tried.is_set()
            assert second != first
            with server.connect(second) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (second,)
            pool.release(second)
        finally:
            if promoter is not None:
                promoter.join(timeout=90)
            pool.close(drop=True)


def _pool_tried(pool: ClonePool) -> bool:
    """Whether the pool's worker has failed at least once since the restart (it met the refusal):
    read from its counters, only to know when to promote."""
    return pool._failures > 0 or pool._error is not None
