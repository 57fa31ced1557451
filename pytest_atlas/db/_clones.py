"""Per-test databases: cloned from a template ahead of need, dropped behind, in a background thread.

pytest-postgresql's janitor clones and drops synchronously inside each test's setup and teardown
(55-240 ms per test measured here). Here a worker thread with its own connection keeps one clone
ready (``CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY`` on PostgreSQL 15+, the faster of the
two strategies) and drops used databases while the next test runs, so a test only waits for a
clone when tests come faster than the server can copy.

Faults: the worker survives what passes. A killed backend, a server restarting or recovering after
a crashed backend, a template briefly in use: it reconnects and tries again with a bounded backoff
(:class:`~._connect.Backoff`). Tests waiting meanwhile get the fault only once the streak has
lasted its budget, then each only after one more attempt of its own failed; the worker keeps
trying, and the first success clears it. A drop that
fails is tried again later and, after a few attempts, left (one line in the summary; a started
server is removed as a whole anyway). Only a fault that stays (the template is missing, the role
lacks a right, the server process is gone) stops the pool, with the real cause in the message.

A fault that is no database error (a bug of pytest-atlas's own, an ``OSError``, memory) kills no
thread and loses no database: a drop it fails is tried once more, then the database is left with a
line saying so (:func:`~._postgres.left_line`); a reset it fails drops the database instead (a
fresh clone follows, as for any reset that cannot be proved); a clone it fails is dropped, and the
waiting tests are told (the thread goes on dropping). ``KeyboardInterrupt`` and ``SystemExit`` are
never swallowed.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg

from pytest_atlas._dsn import scrub
from pytest_atlas.db._connect import Backoff, is_transient, one_line
from pytest_atlas.db._fs import free_bytes, size_text
from pytest_atlas.db._postgres import (
    CANNOT_CONNECT,
    AtlasPostgres,
    clone_database,
    create_template,
    drop_database,
    left_line,
)
from pytest_atlas.db._reset import Resetter
from pytest_atlas.db._seed import Seed, create_seeded_template
from pytest_atlas.errors import AtlasError, ProvisioningError, SeedError, ServerUnavailable
from pytest_atlas.schema import SqlSource, fingerprint

__all__ = ["ClonePool", "DatabaseManager"]

_WAIT_TIMEOUT = 300.0
#: used databases waiting to be dropped before the worker drops one ahead of the next clone
_MAX_PENDING_DROPS = 4
#: attempts at dropping one database before it is left to the end of the run
_DROP_ATTEMPTS = 5
#: how long a streak of faults that pass may last before waiting tests are told (later streaks:
#: the shorter one, until a success)
_FIRST_BUDGET = 30.0
_LATER_BUDGET = 3.0
#: the pause between attempts once waiting tests have been told
_RETRY_PAUSE = 2.0
#: with reset isolation: threads resetting used databases at once, and the hand-outs after which a
#: pool keeps one more database (so that, while a test runs, two used databases are being reset)
_RESET_THREADS = 2
_BUSY_AFTER = 2
#: how long the first clone waits for the backend that wrote the template's cache file to exit
_WARM_WAIT = 1.0


class ClonePool:
    """Databases cloned from ``template``; :meth:`acquire` hands one out, :meth:`release` drops it."""

    def __init__(
        self,
        server: AtlasPostgres,
        template: str,
        prefix: str,
        *,
        ahead: int = 1,
        keep: bool = False,
        reset: bool = False,
    ) -> None:
        self.server = server
        self.template = template
        self.prefix = prefix
        self.ahead = ahead
        self.keep = keep
        self.kept: list[str] = []
        #: one line per thing the worker could not do (databases it had to leave), for the summary
        self.notes: list[str] = []
        self._numbers = itertools.count(1)
        self._ready: deque[str] = deque()
        self._drops: deque[tuple[str, int]] = deque()
        #: with reset isolation: used databases to reset (or, failing that, drop) for the next test
        self.resetter = Resetter(server) if reset and not keep else None
        self._resets: deque[str] = deque()
        #: used databases being reset now
        self._resetting = 0
        self._handed = 0
        self._warmed = False
        self._waiting = 0
        self._stopping = False
        self._error: AtlasError | None = None
        self._fatal = False
        self._failures = 0
        #: databases whose drop a fault that is no database error failed once (tried once more)
        self._retried: set[str] = set()
        self._backoff = Backoff(_FIRST_BUDGET)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=f"pytest-atlas clones of {template}", daemon=True)
        self._thread.start()
        self._reset_threads = [
            threading.Thread(target=self._reset_work, name=f"pytest-atlas resets of {template} ({n})", daemon=True)
            for n in range(_RESET_THREADS if self.resetter is not None else 0)
        ]
        for thread in self._reset_threads:
            thread.start()

    # -- used by the fixtures ----------------------------------------------------------------------

    def acquire(self) -> str:
        """The name of a fresh clone of the template (waits while one is being made)."""
        self.server.check_run()
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            failures = self._failures
            try:
                while not self._ready:
                    # a fault that stays is told at once; one that passes only after the worker has
                    # tried again for this test (and failed): the next test is not told by memory
                    if self._error is not None and (self._fatal or self._failures > failures):
                        raise self._error
                    if not self._thread.is_alive():
                        raise ProvisioningError("the database cloning thread has stopped")
                    if not self._cond.wait(timeout=_WAIT_TIMEOUT):
                        raise ServerUnavailable(
                            f"no clone of {self.template} became ready within {_WAIT_TIMEOUT:.0f} s",
                            hint="the server may be overloaded; see its log, or reduce parallel workers (-n)",
                        )
                name = self._ready.popleft()
                self._handed += 1
            finally:
                self._waiting -= 1
            self._cond.notify_all()
            return name

    def release(self, name: str) -> None:
        """Give a used database back: it is dropped in the background (kept with --atlas-keep-db)."""
        if self.keep:
            self.kept.append(name)
            return
        with self._cond:
            if self.resetter is not None:
                self._resets.append(name)
            else:
                self._drops.append((name, 0))
            self._cond.notify_all()

    def close(self, *, drop: bool = True) -> None:
        """Stop the worker; with ``drop``, drop every database it made that is not kept."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=60)
        for thread in self._reset_threads:
            thread.join(timeout=60)
        if self.resetter is not None:
            self.notes += self.resetter.summary()
        if not drop:
            return
        leftovers = [*self._ready, *self._resets, *(name for name, _ in self._drops)]
        self._ready.clear()
        self._resets.clear()
        self._drops.clear()
        self.notes += drop_all(self.server, leftovers)

    # -- the worker thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        admin: psycopg.Connection[Any] | None = None
        try:
            while True:
                with self._cond:
                    while not self._stopping and not self._task_due():
                        self._cond.wait()
                    if self._stopping:
                        return
                    # creating comes first, but used databases may not pile up (disk space)
                    create = self._creates() and len(self._drops) < _MAX_PENDING_DROPS
                    victim = None if create else self._drops.popleft()
                name: str | None = None
                dropping: tuple[str, int] | None = None
                try:
                    if admin is None or admin.closed or admin.broken:
                        admin = self.server.admin_connect(autocommit=True, retry_for=0)
                    if create:
                        if not self._warmed:
                            self._warm(admin)
                        name = self._new_name()
                        self._clone(admin, name)
                        with self._cond:
                            self._ready.append(name)
                    elif victim is not None:
                        dropping, victim = victim, None  # from here on _drop requeues it or says why not
                        self._drop(admin, *dropping)
                        dropping = None
                    self._succeeded()
                except (psycopg.Error, ProvisioningError) as exc:
                    if admin is not None:
                        admin.close()
                    admin = None
                    with self._cond:
                        if name is not None:
                            # the clone may exist (the fault came after CREATE): drop it later
                            self._drops.append((name, 0))
                        if victim is not None:
                            # reconnecting failed before the drop was tried: it is not lost, and the
                            # try does not count (nothing was tried)
                            self._drops.append(victim)
                    if not self._survive(exc):
                        return
                except Exception as exc:  # no database error: a bug of ours, an OSError, memory...
                    if admin is not None:
                        admin.close()  # (its state is unknown)
                    admin = None
                    for task in (victim, dropping):
                        if task is not None:
                            self._bug_in_drop(*task, exc)
                    if create:
                        with self._cond:
                            if name is not None:
                                self._drops.append((name, 0))
                        # told to the tests that wait; the thread goes on dropping
                        self._publish(self._bug_in_clone(exc), fatal=True)
        except BaseException as exc:  # a bug outside a task, KeyboardInterrupt, SystemExit: tests are told
            self._publish(ProvisioningError(f"the database cloning thread failed: {one_line(exc)}"), fatal=True)
            if not isinstance(exc, Exception):
                raise
        finally:
            if admin is not None:
                admin.close()

    def _wanted(self) -> bool:
        """Whether one more ready database is needed: for a test that waits and has none coming yet
        (a database made for a waiting test is ready before that test wakes up; a used database
        being reset is coming), or to keep ``ahead`` ready or coming (one more once a reset pool
        serves a stream of tests, so that two used databases are reset while a test runs)."""
        coming = len(self._ready) + len(self._resets) + self._resetting
        ahead = self.ahead
        if self.resetter is not None and ahead and self._handed >= _BUSY_AFTER:
            ahead += _RESET_THREADS - 1
        return self._waiting > coming or coming < ahead

    def _creates(self) -> bool:
        """Whether the worker is to clone now (never after a fault that stays: waiting tests are told)."""
        return not self._fatal and self._wanted()

    def _task_due(self) -> bool:
        return self._creates() or bool(self._drops)

    def _reset_work(self) -> None:
        """A reset thread: resets used databases for the next tests, on a connection of its own."""
        admin: psycopg.Connection[Any] | None = None
        try:
            while True:
                with self._cond:
                    while not self._stopping and not self._resets:
                        self._cond.wait()
                    if self._stopping:
                        return
                    used = self._resets.popleft()
                    self._resetting += 1
                try:
                    if admin is None or admin.closed or admin.broken:
                        admin = self.server.admin_connect(autocommit=True, retry_for=0)
                    self._reset(admin, used)
                    self._succeeded()
                except (psycopg.Error, ProvisioningError) as exc:
                    if admin is not None:
                        admin.close()
                    admin = None
                    with self._cond:
                        self._drops.append((used, 0))
                    if not self._survive(exc):
                        return
                except Exception as exc:  # no database error: a bug of ours, an OSError, memory...
                    if admin is not None:
                        admin.close()  # (its state is unknown)
                    admin = None
                    # dropped instead, as any reset that cannot be proved (a fresh clone follows);
                    # _reset has sent its new name to be dropped too (the rename may have happened)
                    assert self.resetter is not None
                    self.resetter.failed(exc)
                    with self._cond:
                        self._drops.append((used, 0))
                finally:
                    with self._cond:
                        self._resetting -= 1
                        self._cond.notify_all()
        except BaseException as exc:  # a bug outside a task, KeyboardInterrupt, SystemExit: tests are told
            self._publish(ProvisioningError(f"the database reset thread failed: {one_line(exc)}"), fatal=True)
            if not isinstance(exc, Exception):
                raise
        finally:
            if admin is not None:
                admin.close()

    def _reset(self, admin: psycopg.Connection[Any], name: str) -> None:
        """Reset a used database under a new name for the next test, or drop it (a fresh clone
        follows, as for any missing ready database)."""
        assert self.resetter is not None
        new_name = self._new_name()
        try:
            outcome = self.resetter.reset(admin, name, new_name)
        except BaseException:
            with self._cond:  # the rename may or may not have happened
                self._drops.append((new_name, 0))
            raise
        with self._cond:
            if outcome.ready is not None:
                self._ready.append(outcome.ready)
            elif outcome.drop is not None:
                self._drops.append((outcome.drop, 0))

    def _new_name(self) -> str:
        """A database name not used before in this pool (the threads take them at once)."""
        with self._cond:
            return f"{self.prefix}{next(self._numbers):04d}"

    def _warm(self, admin: psycopg.Connection[Any]) -> None:
        """Connect to the template once before its first clone. The first backend of a database
        writes PostgreSQL's relation cache file into it (``pg_internal.init``, removed at every
        server start, so a cached template has none), and a clone copies it: the first connection
        to each clone then reads the file instead of building the cache from the catalogs."""
        self._warmed = True
        try:
            self.server.admin_connect(self.template, retry_for=0).close()
        except (psycopg.Error, ProvisioningError):
            return  # only a cache: the clone is made without it
        # the clone is refused while that backend is still exiting
        deadline = time.monotonic() + _WARM_WAIT
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        while time.monotonic() < deadline:
            row = admin.execute(query, (self.template,)).fetchone()
            if row is None or not row[0]:
                return
            time.sleep(0.002)

    def _clone(self, admin: psycopg.Connection[Any], name: str) -> None:
        clone_database(admin, self.server, name, self.template, keep=self.keep)
        if self.resetter is not None:
            self.resetter.fresh(admin, name)

    def _drop(self, admin: psycopg.Connection[Any], name: str, attempts: int) -> None:
        """Drop ``name``; a fault that passes puts it back (behind the others) and is raised (the
        worker pauses); one that stays, or the last of :data:`_DROP_ATTEMPTS`, leaves it, with a note.
        Like a failed reconnect, a connection to the database the server would not take yet (full,
        restarting) does not count as an attempt: the drop was not tried."""
        try:
            drop_database(admin, name, self.server.version_num, connect=self.server.drop_connect)
        except psycopg.Error as exc:
            unreached = isinstance(exc, CANNOT_CONNECT)
            if not is_transient(exc) or (not unreached and attempts + 1 >= _DROP_ATTEMPTS):
                self.notes.append(left_line(name, exc, owned=self.server.owned))
                if admin.broken:
                    raise
                return
            with self._cond:
                self._drops.append((name, attempts if unreached else attempts + 1))
            raise

    def _bug_in_drop(self, name: str, attempts: int, exc: Exception) -> None:
        """A drop of ``name`` failed by a fault that is no database error: it is tried once more
        (behind the others), then left, with a line that says so."""
        with self._cond:
            if name not in self._retried:
                self._retried.add(name)
                self._drops.append((name, attempts))
                self._cond.notify_all()
                return
        self.notes.append(left_line(name, exc, owned=self.server.owned))

    def _bug_in_clone(self, exc: Exception) -> AtlasError:
        return ProvisioningError(
            f"could not create a test database from {self.template}: {type(exc).__name__}: "
            f"{scrub(one_line(exc))} (a fault of pytest-atlas's own, not the server's)",
            hint="please report it, with this message; rerun",
        )

    def _succeeded(self) -> None:
        with self._cond:
            if self._error is not None and not self._fatal:
                self._error = None
            self._backoff.reset()
            self._backoff.budget = _FIRST_BUDGET
            self._cond.notify_all()

    def _survive(self, exc: BaseException) -> bool:
        """After a failed task: True to go on (after a pause), False when the fault stays."""
        # a fault of the connection itself (reconnecting failed, a cut connection) passes as long as
        # the server process is there; a fault in a statement passes only if its kind does
        cut = isinstance(exc, ServerUnavailable) or (
            isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None
        )
        cut = cut or (isinstance(exc, ProvisioningError) and exc.problem.startswith("cannot reach"))
        if not self.server.alive() or not (cut or is_transient(exc)):
            self._publish(self._as_error(exc), fatal=True)
            return False
        with self._cond:  # (the threads of a reset pool share the streak)
            self._failures += 1
            self._cond.notify_all()
            delay = self._backoff.next_delay()
            if delay is None:
                self._backoff.reset()
                self._backoff.budget = _LATER_BUDGET
        if delay is None:
            # waiting tests are told; the worker keeps trying, and the next success clears it
            self._publish(self._as_error(exc, transient=True), fatal=False)
            delay = _RETRY_PAUSE
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=delay)
            return not self._stopping

    def _publish(self, error: AtlasError, *, fatal: bool) -> None:
        with self._cond:
            self._error = error
            self._fatal = fatal
            self._cond.notify_all()

    def _as_error(self, exc: BaseException, *, transient: bool = False) -> AtlasError:
        where = f"on {self.server.redacted_dsn()}"
        if not self.server.alive():
            cluster = self.server._cluster
            log = f"; its log says:\n{cluster.log_tail()}" if cluster is not None else ""
            return ProvisioningError(
                f"the test server has stopped, so no test database can be created{log}",
                hint="see the server log; the next run starts a new server",
            )
        if isinstance(exc, AtlasError) and not transient:
            return exc
        message = one_line(exc)
        state = getattr(exc, "sqlstate", None)
        if state == "53100":
            folder = self.server.data_dir if self.server.owned else None
            if folder is not None:
                # a server of this run: its data folder, on a file system --atlas-data-dir chose
                free = free_bytes(folder)
                shown = "free space unknown" if free is None else f"{size_text(free)} free"
                message = f"no space left on {folder} ({shown}): {message}"
                hint = (
                    "free space on that file system, give --atlas-data-dir a folder with more room, or run "
                    "fewer pytest-xdist workers (-n): each worker's server clones its test databases there"
                )
            else:
                hint = (
                    "the server's disk is full (the file system of its data_directory, on the server's "
                    "machine): free space there, or run fewer pytest-xdist workers (-n)"
                )
        elif state == "3D000" or "does not exist" in message:
            hint = "the template database is gone: something dropped it; rerun"
        elif state == "42501":
            hint = "the role lacks a right it needs (CREATEDB, or ownership of the template)"
        elif transient:
            hint = (
                "the server kept failing (killed connections, restarting or recovering) for "
                f"{_FIRST_BUDGET:.0f} s; see its log. Later tests try again"
            )
        else:
            hint = "see the server log"
        kind = ServerUnavailable if transient else ProvisioningError
        return kind(f"could not create a test database from {self.template} {where}: {message}", hint=hint)


def drop_all(server: AtlasPostgres, names: Sequence[str]) -> list[str]:
    """Drop databases the run made (at its end); what cannot be dropped is left, with a line."""
    if not names:
        return []
    notes: list[str] = []
    try:
        with server.admin_connect(autocommit=True) as admin:
            for name in names:
                try:
                    drop_database(admin, name, server.version_num, connect=server.drop_connect)
                except Exception as exc:  # no database error too (a bug of ours): said, and on to the next
                    notes.append(left_line(name, exc, owned=server.owned))
    except ProvisioningError as exc:
        notes.append(f"left {len(names)} database(s) in place (the server could not be reached: {exc.problem})")
    return notes


class DatabaseManager:
    """Templates and clone pools of one server, one per set of schema sources (fixture variants)."""

    def __init__(
        self, server: AtlasPostgres, default_sources: Sequence[SqlSource], *, keep: bool, reset: bool = False
    ) -> None:
        self.server = server
        self.keep = keep
        #: reset isolation (see :mod:`._reset`) for the per-test pools
        self.reset = reset
        self._default_key = fingerprint(default_sources)
        self._templates: dict[str, str] = {}
        self._pools: dict[str, ClonePool] = {}
        self._shared: dict[str, str] = {}
        self._lock = threading.Lock()
        self._notes: list[str] = []
        self._seed_failures: dict[str, SeedError] = {}
        if server.template is not None:
            self._templates[self._default_key] = server.template

    def _template(self, sources: Sequence[SqlSource], seed: Seed | None) -> tuple[str, str]:
        key = fingerprint(sources)
        if key not in self._templates:
            name = f"{self.server.db_prefix}tpl_{key[:10]}"
            create_template(self.server, name, sources, keep=self.keep)
            self._templates[key] = name
        if seed is None:
            return key, self._templates[key]
        base = self._templates[key]
        key = f"{key}|{seed.key}"
        if key in self._seed_failures:
            raise self._seed_failures[key]
        if key not in self._templates:
            name = f"{self.server.db_prefix}tpl_{hashlib.sha256(key.encode()).hexdigest()[:10]}"
            try:
                create_seeded_template(self.server, name, base, seed, keep=self.keep)
            except SeedError as exc:
                self._seed_failures[key] = exc  # the fill is the user's code: it fails the same way again
                raise
            self._templates[key] = name
        return key, self._templates[key]

    def pool(self, sources: Sequence[SqlSource], seed: Seed | None = None) -> ClonePool:
        """The clone pool for databases with ``sources`` loaded and, with ``seed``, what its fill
        wrote (each template is built on first use, once per server)."""
        with self._lock:
            key, template = self._template(sources, seed)
            if key not in self._pools:
                variant = "" if key == self._default_key else f"{hashlib.sha256(key.encode()).hexdigest()[:6]}_"
                self._pools[key] = ClonePool(
                    self.server, template, f"{self.server.db_prefix}{variant}", keep=self.keep, reset=self.reset
                )
            return self._pools[key]

    def shared(self, sources: Sequence[SqlSource], seed: Seed | None = None) -> str:
        """One database per run for ``sources`` (and ``seed``), used by the rolled-back ``atlas_tx``
        fixtures."""
        self.server.check_run()
        pool = self.pool(sources, seed)
        key = fingerprint(sources) + (f"|{seed.key}" if seed is not None else "")
        with self._lock:
            if key not in self._shared:
                self._shared[key] = pool.acquire()
            return self._shared[key]

    def replace_shared(self, sources: Sequence[SqlSource], seed: Seed | None = None) -> None:
        """Give up the shared database of ``sources`` (and ``seed``): a test committed to it, which no
        rollback undoes. It goes back to its pool, which proves it resettable or drops it; the next
        :meth:`shared` call takes a fresh clone. Its connections must be closed first."""
        key = fingerprint(sources) + (f"|{seed.key}" if seed is not None else "")
        with self._lock:
            name = self._shared.pop(key, None)
        if name is not None:
            self.pool(sources, seed).release(name)

    def kept(self) -> list[str]:
        names = [name for pool in self._pools.values() for name in pool.kept]
        return names + list(self._shared.values())

    def notes(self) -> list[str]:
        return [note for pool in self._pools.values() for note in pool.notes] + self._notes

    def close(self) -> None:
        """Stop the workers. On an existing server, drop every database the run made (except kept
        ones); a started server is removed as a whole, so nothing is dropped one by one."""
        external = not self.server.owned
        for pool in self._pools.values():
            pool.close(drop=external)
        if external and not self.keep:
            self._notes += drop_all(self.server, [*self._shared.values(), *self._templates.values()])
