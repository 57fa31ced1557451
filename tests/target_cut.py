"""Cutting a read of the checked database mid-query, in this process (for the library calls; the
plugin's inner runs do the same from their conftest, see tests/test_target_faults.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg

#: every Atlas table: a read of any of them waits for the lock
TABLES = "sessions, plans, step_results, step_attempts, trajectory_events, discovery_runs, learning_registry"


@contextlib.contextmanager
def cut_the_first_waiting_read(admin_dsn: str) -> Iterator[list[int]]:
    """While inside, the Atlas tables are locked; the first backends that wait for the lock are
    terminated (as a server restart or an administrator does) and the lock is released. Yields the
    list of terminated backends' pids (filled when it happens: the test checks a read was cut)."""
    killed: list[int] = []
    locker = psycopg.connect(admin_dsn)
    locker.execute(f"LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE")

    def kill() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not killed:
                rows = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchall()
                for (pid,) in rows:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    killed.append(pid)
                time.sleep(0.02)
        locker.rollback()

    killer = threading.Thread(target=kill, name="cut-the-first-waiting-read")
    killer.start()
    try:
        yield killed
    finally:
        killer.join()
        locker.close()


@contextlib.contextmanager
def cut_right_after_connecting(admin_dsn: str, times: int = 1) -> Iterator[list[int]]:
    """While inside, the first ``times`` connections :func:`pytest_atlas.db.connect_target` opens
    are terminated by the server (``pg_terminate_backend``, as an administrator or a restart does)
    right after they were opened, before their first statement: the server is real, only the
    moment is chosen. Yields the terminated backends' pids."""
    from pytest_atlas.db import _target

    killed: list[int] = []
    opened = _target.connect_clearly

    def connect_and_cut(*args: object, **kwargs: object) -> psycopg.Connection[object]:
        conn = opened(*args, **kwargs)  # type: ignore[arg-type]
        if len(killed) < times:
            pid = conn.info.backend_pid
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                deadline = time.monotonic() + 10
                while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                    assert time.monotonic() < deadline, "the backend outlived pg_terminate_backend"
                    time.sleep(0.01)
            killed.append(pid)
        return conn

    _target.connect_clearly = connect_and_cut  # type: ignore[assignment]
    try:
        yield killed
    finally:
        _target.connect_clearly = opened
