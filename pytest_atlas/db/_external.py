"""An existing server given by DSN (``--atlas-dsn``): attaching, the run's lock, and reaping what
killed runs left there.

Every database a run creates is named ``pytest_atlas_<token>_...`` (the token is random per run),
so even one interrupted in the middle of ``CREATE DATABASE`` is recognisable. While a run lives,
two dedicated connections of it hold the session-level advisory lock derived from its token, in
shared mode (:class:`RunLock`); PostgreSQL drops that lock when the sessions end, however the run
died. A later run drops a token's databases only after taking that lock itself, so a run in another
container, with the same host name and the same PIDs, is never mistaken for a dead one. Databases
marked kept (``--atlas-keep-db``) are never dropped; those of another role are left alone with one
line in the summary.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import Dsn, passfile_line
from pytest_atlas.db._account import ServerAccount, current_user_name, server_account
from pytest_atlas.db._connect import Backoff, connect_clearly, one_line, passfile_first
from pytest_atlas.db._postgres import AtlasPostgres, Connector, drop_database
from pytest_atlas.db._runtime import Base, RunDir, choose_base, reap_stale, remove_private_base
from pytest_atlas.errors import ProvisioningError

__all__ = ["EXTERNAL_PREFIX", "RunLock", "attach_server", "connector", "drop_kept", "list_kept", "lock_key"]

#: prefix of every database the plugin creates on an existing server
EXTERNAL_PREFIX = "pytest_atlas_"
_TOKEN = re.compile(r"^pytest_atlas_([0-9a-f]{8})_")
#: first key of every pytest-atlas advisory lock (the two-key form): "atla"
_LOCK_CLASS = 0x61746C61
#: a run whose lock was lost for at least this long before it took it again says so in its summary
#: (while the lock is free a second job may take the run for dead). The lock is retaken however
#: long that lasts: this only decides what is worth a line (tests shorten it)
LOCK_LOST_NOTE_AFTER = 300.0
#: how a kept database's owner is shown when its owning role cannot be found
UNKNOWN_OWNER = "unknown"


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_key(token: str) -> tuple[int, int]:
    """The advisory lock (two int4 keys) that says run ``token`` is alive."""
    return _LOCK_CLASS, _int4(int(token, 16))


class RunLock:
    """Holds this run's advisory lock, shared, on two connections of its own for the whole run.

    A reaper takes the lock exclusively, which it cannot while either connection holds it, so a
    killed backend (``pg_terminate_backend``) leaves the run alive: the other one still holds it.
    A thread watches both: a connection that died is replaced, and the lock taken again on it,
    with a backoff capped at 2 s, for as long as the run lives (the server restarting or refusing
    connections included): the lock, the run's liveness signal, never ends before :meth:`close`.
    When neither held it for :data:`LOCK_LOST_NOTE_AFTER` or more, ``notes`` says so."""

    HOLDERS = 2

    def __init__(self, conninfo: str, token: str, notes: list[str] | None = None) -> None:
        self.conninfo = conninfo
        self.token = token
        self.notes = notes if notes is not None else []
        self._conns: list[psycopg.Connection[Any] | None] = [None] * self.HOLDERS
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False
        self.retaken = 0
        try:
            for slot in range(self.HOLDERS):
                self._take(slot)
        except BaseException:
            self._close_connections()
            raise
        self._thread = threading.Thread(target=self._watch, name=f"pytest-atlas run lock {token}", daemon=True)
        self._thread.start()

    def _take(self, slot: int) -> None:
        params = conninfo_to_dict(self.conninfo)
        params["application_name"] = f"pytest-atlas run {self.token}"
        conn = connect_clearly(make_conninfo("", **params), autocommit=True)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock_shared(%s, %s)", lock_key(self.token)).fetchone()
        except BaseException:
            conn.close()
            raise
        if not row or not row[0]:  # a reaper holds it right now (it will find the run alive and let go)
            conn.close()
            raise ProvisioningError(f"another session holds the lock of run {self.token} on the server")
        self._conns[slot] = conn

    def _alive(self, slot: int) -> bool:
        conn = self._conns[slot]
        return conn is not None and not conn.closed

    def _watch(self) -> None:
        backoff = Backoff(budget=math.inf)  # never gives up: the lock must last as long as the run
        lost: float | None = None  # since when no connection held the lock
        ready: list[int] = []
        while not self._closed:
            for slot, conn in enumerate(self._conns):  # the backend said something (a FATAL, usually)
                if conn is not None and not conn.closed and conn.fileno() in ready:
                    try:
                        conn.execute("SELECT 1")
                    except psycopg.Error:
                        with contextlib.suppress(Exception):
                            conn.close()
                        self._conns[slot] = None
            if lost is None and not any(self._alive(slot) for slot in range(self.HOLDERS)):
                lost = time.monotonic()
            for slot in range(self.HOLDERS):
                if self._closed or self._alive(slot):
                    continue
                try:
                    self._take(slot)
                except (psycopg.Error, ProvisioningError):
                    continue
                self.retaken += 1
                if lost is not None:
                    self._note_gap(time.monotonic() - lost)
                    lost = None
            missing = not all(self._alive(slot) for slot in range(self.HOLDERS))
            if not missing:
                backoff.reset()
            fds = [self._stop_r] + [conn.fileno() for conn in self._conns if conn is not None and not conn.closed]
            try:
                ready, _, _ = select.select(fds, [], [], (backoff.next_delay() or 0.0) if missing else 5.0)
            except (OSError, ValueError):
                ready = []
            if self._closed or self._stop_r in ready:
                return

    def _note_gap(self, gap: float) -> None:
        if gap >= LOCK_LOST_NOTE_AFTER:
            self.notes.append(
                f"this run's lock on the server was lost for {gap:.0f} s before it could take it again: "
                "a run that started meanwhile may have taken this one for dead and dropped its databases"
            )

    def backend_pids(self) -> list[int]:
        return [conn.info.backend_pid for conn in self._conns if conn is not None and not conn.closed]

    def close(self) -> None:
        """Give the lock up (the sessions end)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        self._close_connections()

    def _close_connections(self) -> None:
        for slot, conn in enumerate(self._conns):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conns[slot] = None
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def probe_server(dsn: Dsn) -> str:
    """An existing server's version, or why it cannot be reached (for the header; 3 s, no retry)."""
    try:
        with connect_clearly(dsn.reveal(), retry_for=0, connect_timeout=3, shown=dsn.redacted) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except ProvisioningError as exc:
        return f"not reachable ({exc.problem.splitlines()[0].rsplit(': ', 1)[-1]})"
    return f"PostgreSQL {str(version[0]).split()[0] if version else '?'}"


def attach_server(dsn: Dsn | str, source: str, *, data_dir: Path | None = None) -> AtlasPostgres:
    """Use the existing server at ``dsn``: check the login and the right to create databases, take
    this run's lock, and drop databases left by dead runs of pytest-atlas (only those).

    A password in the DSN goes into a 0600 passfile of this run (in its own folder under the data
    folder), which every DSN handed to tests names instead."""
    dsn = dsn if isinstance(dsn, Dsn) else Dsn(dsn)
    params = dsn.params()
    password = params.pop("password", None)
    run: RunDir | None = None
    base: Base | None = None
    if password:
        account = _folder_account()
        base = choose_base(data_dir, account)
        reap_stale(base.path)
        run = RunDir.create(base.path, account, keep=False, kind="dsn")
        params["passfile"] = str(run.write_passfile(passfile_line(password)))
    early_notes = passfile_first() if password else []
    conninfo = make_conninfo("", **params)
    try:
        with connect_clearly(conninfo, retry_for=0, shown=dsn.redacted, autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_user, current_database(), current_setting('server_version_num')::int,"
                " current_setting('server_version'),"
                " (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user)"
            ).fetchone()
            assert row is not None
            user, dbname, version_num, version, can_create = row
            if not can_create:
                raise ProvisioningError(
                    f"the role {user!r} at {dsn.redacted} may not create databases, and pytest-atlas creates "
                    "one database per test there",
                    hint=f"run 'ALTER ROLE {user} CREATEDB' as a superuser, or use a role that has CREATEDB",
                )
            host, port = conn.info.host, conn.info.port
        token = secrets.token_hex(4)
        notes = list(early_notes)
        lock = RunLock(conninfo, token, notes)  # (its thread adds a line there if the lock was lost long)
        with connect_clearly(conninfo, retry_for=0, autocommit=True) as conn:
            notes += reap_external(conn, int(version_num), own=token, connect=connector(Dsn(conninfo)))
    except BaseException:
        if run is not None:
            run.remove()
        if base is not None:
            remove_private_base(base)
        raise
    return AtlasPostgres(
        host=host,
        port=int(port),
        user=user,
        version=str(version).split()[0],
        version_num=int(version_num),
        source=f"existing server {dsn.redacted} ({source})",
        cache="not used (existing server)",
        owned=False,
        db_prefix=f"{EXTERNAL_PREFIX}{token}_",
        maintenance_db=dbname,
        passfile=run.passfile if run is not None else None,
        token=token,
        notes=notes,
        _params=params,
        _run=run,
        _lock=lock,
        _base=base if base is not None and base.private else None,
    )


def connector(dsn: Dsn) -> Connector:
    """How :func:`~._postgres.drop_database` connects to a database of the server of ``dsn`` (held
    as a :class:`~pytest_atlas._dsn.Dsn`: a frame of it shows no password)."""

    def connect(dbname: str) -> psycopg.Connection[Any]:
        return connect_clearly(
            make_conninfo(dsn.reveal(), dbname=dbname), retry_for=0, shown=dsn.redacted, autocommit=True
        )

    return connect


def _folder_account() -> ServerAccount:
    """The account a started server would run as: the passfile's folder goes into the same base
    folder as a started server's, created the way such a run needs it."""
    try:
        return server_account(None)
    except ProvisioningError:
        return ServerAccount(current_user_name(), os.geteuid(), os.getegid(), True, "")


def _ours_by_token(
    conn: psycopg.Connection[Any], *, kept: bool, own: str = "", owned: bool = False
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The plugin's databases on the server, kept ones (``kept``) or the others, not of run
    ``own``: those this role may drop by token, and those of other roles by owner. ``owned``:
    only databases this very role owns count as its own (a superuser has the rights of every role).

    A database is kept when its label says so and names the token of its name (as
    ``--atlas-keep-db`` writes it); one labelled kept with another token is neither dropped as kept
    nor reaped as a dead run's."""
    rows = conn.execute(
        "SELECT datname, CASE WHEN %s THEN datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        " ELSE pg_has_role(datdba, 'USAGE') END, coalesce((SELECT rolname FROM pg_roles WHERE oid = datdba), %s),"
        " shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE %s ORDER BY datname",
        (owned, UNKNOWN_OWNER, EXTERNAL_PREFIX.replace("_", r"\_") + "%"),
    ).fetchall()
    by_token: dict[str, list[str]] = {}
    others: dict[str, list[str]] = {}
    for name, mine, owner, comment in rows:
        match = _TOKEN.match(name)
        if match is None or match.group(1) == own:
            continue
        label = _keep_label(comment)
        if (label != match.group(1)) if kept else (label is not None):
            continue
        if not mine:
            others.setdefault(str(owner), []).append(name)
            continue
        by_token.setdefault(match.group(1), []).append(name)
    return by_token, others


#: whether a session other than this one holds a run's lock, in any database of the server (an
#: advisory lock belongs to the database its session is in, and two jobs' DSNs may name different
#: ones); pg_locks shows every database's locks to every role. The int4 keys read as oids there.
_HELD_ELSEWHERE = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::bigint::oid"
    " AND objid = %s::bigint::oid AND objsubid = 2 AND pid <> pg_backend_pid())"
)


@contextlib.contextmanager
def _run_over(conn: psycopg.Connection[Any], token: str) -> Iterator[bool]:
    """Whether run ``token`` is over: its lock could be taken here, and no session holds (or waits
    for) it in another database. Holds its lock meanwhile, so two reapers in one database never
    both drop; two in different databases each see the other's lock and leave it for later."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock_key(token)).fetchone()
    if not row or not row[0]:
        yield False  # that run is alive
        return
    try:
        held = conn.execute(_HELD_ELSEWHERE, (_LOCK_CLASS, int(token, 16))).fetchone()
        yield not (held and held[0])
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock_key(token))


def reap_external(conn: psycopg.Connection[Any], version_num: int, *, connect: Connector, own: str = "") -> list[str]:
    """Drop the databases of dead runs (their token's lock can be taken), except kept ones and
    those of other roles (``connect`` opens a database, to drop the subscriptions in it first).
    Returns one line per thing done or left alone."""
    by_token, others = _ours_by_token(conn, kept=False, own=own)
    notes = [
        f"left {len(names)} database(s) of role {owner!r} alone (not ours to drop): {', '.join(names[:3])}"
        + (" ..." if len(names) > 3 else "")
        for owner, names in others.items()
    ]
    for token, names in by_token.items():
        with _run_over(conn, token) as over:
            if not over:
                continue
            dropped = []
            for name in names:
                try:
                    drop_database(conn, name, version_num, connect=connect)
                    dropped.append(name)
                except psycopg.Error as exc:  # never a reason to fail this run: say so and go on
                    notes.append(f"could not drop {name} left by a dead run: {one_line(exc)}")
            if dropped:
                notes.append(f"dropped {len(dropped)} database(s) left by dead run {token}")
    return notes


def drop_kept(conn: psycopg.Connection[Any], version_num: int, *, connect: Connector) -> tuple[list[str], list[str]]:
    """Drop the databases runs kept (``--atlas-keep-db`` labels them) whose run is over (its
    token's lock can be taken: a run still going may be using them), of this very role only (not
    every role a superuser has the rights of); ``connect`` opens a database, to drop the
    subscriptions in it first. Returns (dropped, left alone with why)."""
    by_token, others = _ours_by_token(conn, kept=True, owned=True)
    dropped: list[str] = []
    left = [f"{name} (of role {owner!r}, not ours to drop)" for owner, names in others.items() for name in names]
    for token, names in by_token.items():
        with _run_over(conn, token) as over:
            if not over:
                left += [f"{name} (its run is still going)" for name in names]
                continue
            for name in names:
                try:
                    drop_database(conn, name, version_num, connect=connect)
                    dropped.append(name)
                except psycopg.Error as exc:  # one that cannot be dropped does not stop the others
                    left.append(f"{name} (could not drop it: {one_line(exc)})")
    return dropped, sorted(left)


def list_kept(conn: psycopg.Connection[Any]) -> list[list[str]]:
    """The databases runs kept on this server: ``[database, run token, "going" | "ended", owner]``
    per database, by name. The owner is the role that owns the database (the role of the run that
    kept it: that run created it), or "unknown" when no role of the server owns it; whether its run
    is still going is read from the token's lock."""
    by_token, others = _ours_by_token(conn, kept=True, owned=True)
    row = conn.execute("SELECT current_user").fetchone()
    owners = {name: str(row[0]) if row else UNKNOWN_OWNER for names in by_token.values() for name in names}
    owners.update({name: owner for owner, names in others.items() for name in names})
    tokens: dict[str, list[str]] = {}
    for name in owners:
        match = _TOKEN.match(name)
        assert match is not None  # (only such names are the plugin's)
        tokens.setdefault(match.group(1), []).append(name)
    rows: list[list[str]] = []
    for token, names in tokens.items():
        with _run_over(conn, token) as over:
            rows += [[name, token, "ended" if over else "going", owners[name]] for name in names]
    return sorted(rows)


def _keep_label(comment: object) -> str | None:
    """The token a database's ``--atlas-keep-db`` label names, or None when it has no such label."""
    try:
        label = json.loads(str(comment))["pytest-atlas"]
        return str(label["token"]) if label["keep"] is True else None
    except (TypeError, ValueError, KeyError):
        return None
