"""Per-test databases: cloned from a template ahead of need, dropped behind, in a background thread.

pytest-postgresql's janitor clones and drops synchronously inside each test's setup and teardown
(55-240 ms per test measured here). Here a worker thread with its own connection keeps one clone
ready (``CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY`` on PostgreSQL 15+, the faster of the
two strategies) and drops used databases while the next test runs, so a test only waits for a
clone when tests come faster than the server can copy.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas.db._server import AtlasPostgres, _label, create_template, drop_database
from pytest_atlas.errors import AtlasError, ProvisioningError
from pytest_atlas.schema import SqlSource, fingerprint

__all__ = ["ClonePool", "DatabaseManager"]

_WAIT_TIMEOUT = 300.0
#: used databases waiting to be dropped before the worker drops one ahead of the next clone
_MAX_PENDING_DROPS = 4


class ClonePool:
    """Databases cloned from ``template``; :meth:`acquire` hands one out, :meth:`release` drops it."""

    def __init__(
        self, server: AtlasPostgres, template: str, prefix: str, *, ahead: int = 1, keep: bool = False
    ) -> None:
        self.server = server
        self.template = template
        self.prefix = prefix
        self.ahead = ahead
        self.keep = keep
        self.kept: list[str] = []
        self._names = (f"{prefix}{n:04d}" for n in itertools.count(1))
        self._ready: deque[str] = deque()
        self._drops: deque[str] = deque()
        self._waiting = 0
        self._stopping = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=f"pytest-atlas clones of {template}", daemon=True)
        self._thread.start()

    # -- used by the fixtures ----------------------------------------------------------------------

    def acquire(self) -> str:
        """The name of a fresh clone of the template (waits while one is being made)."""
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not self._ready:
                    if self._error is not None:
                        raise self._as_error(self._error)
                    if not self._thread.is_alive():
                        raise ProvisioningError("the database cloning thread has stopped")
                    if not self._cond.wait(timeout=_WAIT_TIMEOUT):
                        raise ProvisioningError(
                            f"no clone of {self.template} became ready within {_WAIT_TIMEOUT:.0f} s",
                            hint="the server may be overloaded or out of disk space; see its log",
                        )
                name = self._ready.popleft()
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
            self._drops.append(name)
            self._cond.notify_all()

    def close(self, *, drop: bool = True) -> None:
        """Stop the worker; with ``drop``, drop every database it made that is not kept."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=60)
        if not drop:
            return
        leftovers = [*self._ready, *self._drops]
        self._ready.clear()
        self._drops.clear()
        if leftovers:
            with self.server.connect(autocommit=True) as admin:
                for name in leftovers:
                    drop_database(admin, name, self.server.version_num)

    # -- the worker thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            with self.server.connect(autocommit=True) as admin:
                while True:
                    with self._cond:
                        while not self._stopping and not self._task_due():
                            self._cond.wait()
                        if self._stopping:
                            return
                        wanted = self._waiting > 0 or len(self._ready) < self.ahead
                        # creating comes first, but used databases may not pile up (disk space)
                        create = wanted and len(self._drops) < _MAX_PENDING_DROPS
                        victim = None if create else self._drops.popleft()
                    if create:
                        name = next(self._names)
                        self._clone(admin, name)
                        with self._cond:
                            self._ready.append(name)
                            self._cond.notify_all()
                    elif victim is not None:
                        drop_database(admin, victim, self.server.version_num)
        except BaseException as exc:  # handed to the test that waits for a clone
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _task_due(self) -> bool:
        return self._waiting > 0 or len(self._ready) < self.ahead or bool(self._drops)

    def _clone(self, admin: psycopg.Connection[Any], name: str) -> None:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(self.template))
        if self.server.version_num >= 150000:
            query = sql.SQL("{} STRATEGY FILE_COPY").format(query)
        admin.execute(query)
        _label(admin, self.server, name, keep=self.keep)

    def _as_error(self, exc: BaseException) -> AtlasError:
        if isinstance(exc, AtlasError):
            return exc
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ProvisioningError(
            f"could not create a test database from {self.template} on {self.server.redacted_dsn()}: {message}",
            hint="see the server log; free disk space or reduce parallel workers (-n)",
        )


class DatabaseManager:
    """Templates and clone pools of one server, one per set of schema sources (fixture variants)."""

    def __init__(self, server: AtlasPostgres, default_sources: Sequence[SqlSource], *, keep: bool) -> None:
        self.server = server
        self.keep = keep
        self._default_key = fingerprint(default_sources)
        self._templates: dict[str, str] = {}
        self._pools: dict[str, ClonePool] = {}
        self._shared: dict[str, str] = {}
        self._lock = threading.Lock()
        if server.template is not None:
            self._templates[self._default_key] = server.template

    def _template(self, sources: Sequence[SqlSource]) -> tuple[str, str]:
        key = fingerprint(sources)
        if key not in self._templates:
            name = f"{self.server.db_prefix}tpl_{key[:10]}"
            create_template(self.server, name, sources)
            self._templates[key] = name
        return key, self._templates[key]

    def pool(self, sources: Sequence[SqlSource]) -> ClonePool:
        """The clone pool for databases with ``sources`` loaded (the template is built on first use)."""
        with self._lock:
            key, template = self._template(sources)
            if key not in self._pools:
                variant = "" if key == self._default_key else f"{key[:6]}_"
                self._pools[key] = ClonePool(self.server, template, f"{self.server.db_prefix}{variant}", keep=self.keep)
            return self._pools[key]

    def shared(self, sources: Sequence[SqlSource]) -> str:
        """One database per run for ``sources``, used by the rolled-back ``atlas_tx`` fixtures."""
        pool = self.pool(sources)
        key = fingerprint(sources)
        with self._lock:
            if key not in self._shared:
                self._shared[key] = pool.acquire()
            return self._shared[key]

    def kept(self) -> list[str]:
        names = [name for pool in self._pools.values() for name in pool.kept]
        return names + list(self._shared.values())

    def close(self) -> None:
        """Stop the workers. On an existing server, drop every database the run made (except kept
        ones); a started server is removed as a whole, so nothing is dropped one by one."""
        external = not self.server.owned
        for pool in self._pools.values():
            pool.close(drop=external)
        if external and not self.keep:
            with self.server.connect(autocommit=True) as admin:
                for name in [*self._shared.values(), *self._templates.values()]:
                    drop_database(admin, name, self.server.version_num)
