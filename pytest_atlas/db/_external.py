"""An existing server given by DSN (``--atlas-dsn``): attaching, the run's lock, and reaping what
killed runs left there.

Every database a run creates is named ``pytest_atlas_<token>_...`` (the token is random per run),
so even one interrupted in the middle of ``CREATE DATABASE`` is recognisable. While a run lives,
two dedicated connections of it hold the session-level advisory lock derived from its token, in
shared mode (:class:`RunLock`); PostgreSQL drops that lock when the sessions end, however the run
died. Those connections also keep the run's heartbeat on the server: every few seconds the server's
own time is written into the label of the run's first template (``COMMENT ON DATABASE``), which
outlives the connections and a restart of the server. A later run drops a token's databases only
after taking that lock itself and finding the heartbeat older than :data:`HEARTBEAT_GRACE` (by the
server's clock, and counted from the server's start when it restarted since), or the run ended; so
a run in another container, with the same host name and the same PIDs, is never mistaken for a dead
one, nor is a live run whose two connections were cut at once. Databases marked kept
(``--atlas-keep-db``) are never dropped; those of another role are left alone with one line in the
summary.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import Dsn, passfile_line, scrub
from pytest_atlas.db._account import ServerAccount, current_user_name, server_account
from pytest_atlas.db._connect import Backoff, connect_clearly, one_line, passfile_first
from pytest_atlas.db._postgres import (
    LOCK_CLASS,
    SERVER_EPOCH,
    AtlasPostgres,
    Connector,
    drop_database,
    lock_key,
    run_label,
)
from pytest_atlas.db._runtime import Base, RunDir, choose_base, reap_stale, remove_private_base
from pytest_atlas.errors import ProvisioningError

__all__ = ["EXTERNAL_PREFIX", "RunLock", "attach_server", "connector", "drop_kept", "list_kept", "lock_key"]

#: prefix of every database the plugin creates on an existing server
EXTERNAL_PREFIX = "pytest_atlas_"
_TOKEN = re.compile(r"^pytest_atlas_([0-9a-f]{8})_")
#: how often a run writes its heartbeat (the server's time) into its first template's label
HEARTBEAT_EVERY = 5.0
#: a run whose lock is free is taken for dead only once its heartbeat is at least this old (by the
#: server's clock; counted from the server's start when it restarted since): well above the time a
#: run needs to take its lock again after losing both connections (at most 2 s between attempts)
#: plus :data:`HEARTBEAT_EVERY`. A run that ended says so in its label and is over at once.
#: (tests change it)
HEARTBEAT_GRACE = 120.0
#: a run whose lock was lost for at least this long before it took it again says so in its summary
#: (the lock is retaken however long that lasts: this only decides what is worth a line; tests shorten it)
LOCK_LOST_NOTE_AFTER = 60.0
#: a heartbeat waits this long at most for the template's lock (a clone being made from it holds one)
_BEAT_LOCK_TIMEOUT = "500ms"
#: how a kept database's owner is shown when its owning role cannot be found
UNKNOWN_OWNER = "unknown"


class RunLock:
    """Holds this run's advisory lock, shared, on two connections of its own for the whole run, and
    keeps its heartbeat on the server.

    A reaper takes the lock exclusively, which it cannot while either connection holds it, so a
    killed backend (``pg_terminate_backend``) leaves the run alive: the other one still holds it.
    A thread watches both: a connection that died is replaced, and the lock taken again on it,
    with a backoff capped at 2 s, for as long as the run lives (the server restarting or refusing
    connections included): the lock, the run's liveness signal, never ends before :meth:`close`.

    The same thread writes the server's time, every :data:`HEARTBEAT_EVERY` s, into the label of
    the run's first template (its beacon; none before the run made one), so that the run is not
    taken for dead while both connections are gone at once (a reaper waits for the heartbeat to be
    :data:`HEARTBEAT_GRACE` old). When it takes the lock again after losing it on both, it checks
    that its templates are all still there: if one went, ``failure`` says so (and the run's next
    test fails with it). When neither held the lock for :data:`LOCK_LOST_NOTE_AFTER` or more,
    ``notes`` says so."""

    HOLDERS = 2

    def __init__(self, conninfo: str, token: str, notes: list[str] | None = None) -> None:
        self.conninfo = conninfo
        self.token = token
        self.notes = notes if notes is not None else []
        self._conns: list[psycopg.Connection[Any] | None] = [None] * self.HOLDERS
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False
        self.retaken = 0
        #: the template whose label holds the heartbeat (None until the run made one)
        self.beacon: str | None = None
        #: why the run cannot go on: its databases were dropped while its lock was lost
        self.failure: ProvisioningError | None = None
        #: the run's finished templates, as last seen (those that must still be there)
        self._templates: set[str] = set()
        self._last_beat = -math.inf
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
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(_BEAT_LOCK_TIMEOUT)))
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
                        self._drop(slot)
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
                    gap = time.monotonic() - lost
                    lost = None
                    self._beat(check=True)
                    self._note_gap(gap)
            if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY:
                self._beat()
            missing = not all(self._alive(slot) for slot in range(self.HOLDERS))
            if not missing:
                backoff.reset()
            fds = [self._stop_r] + [conn.fileno() for conn in self._conns if conn is not None and not conn.closed]
            next_beat = max(0.05, self._last_beat + HEARTBEAT_EVERY - time.monotonic())
            wait = next_beat
            if missing:  # (while neither holds the lock, no heartbeat can be written: only the backoff)
                delay = backoff.next_delay() or 0.0
                wait = min(delay, next_beat) if any(self._alive(slot) for slot in range(self.HOLDERS)) else delay
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except (OSError, ValueError):
                ready = []
            if self._closed or self._stop_r in ready:
                return

    def _drop(self, slot: int) -> None:
        conn = self._conns[slot]
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._conns[slot] = None

    def _beat(self, *, check: bool = False, ended: bool = False) -> None:
        """Write the server's time into the beacon's label, on a connection that holds the lock
        (with ``ended``: and that the run ended). With ``check`` (the lock was just taken again
        after it was lost on both), a finished template that went since it was last seen means a
        reaper took this run for dead: ``failure`` says so."""
        for slot, conn in enumerate(self._conns):
            if conn is None or conn.closed:
                continue
            try:
                self._beat_on(conn, check=check, ended=ended)
            except psycopg.Error:
                if conn.broken or conn.closed:
                    self._drop(slot)  # (replaced by the watch, which beats again then)
                    continue
                self._last_beat = time.monotonic() - HEARTBEAT_EVERY + 1.0  # busy or gone: again in 1 s
            return

    def _beat_on(self, conn: psycopg.Connection[Any], *, check: bool, ended: bool) -> None:
        rows = conn.execute(
            sql.SQL(
                "SELECT datname, shobj_description(oid, 'pg_database'), NOT datallowconn, {}, EXISTS (SELECT 1"
                " FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_database'::regclass AND objid = d.oid)"
                " FROM pg_database d WHERE datname LIKE %s AND pg_has_role(datdba, 'USAGE') ORDER BY oid"
            ).format(SERVER_EPOCH),
            (_like(f"{EXTERNAL_PREFIX}{self.token}_tpl_") + "%",),
        ).fetchall()
        busy = {str(row[0]) for row in rows if row[4]}
        ours = [(str(name), label, bool(done)) for name, comment, done, *_ in rows if (label := _run_label(comment))]
        ours = [(name, label, done) for name, label, done in ours if label.get("token") == self.token]
        finished = {name for name, _, done in ours if done}
        if check and self.failure is None and (gone := sorted(self._templates - finished)) and not self._closed:
            self.failure = ProvisioningError(
                f"this run's databases on the server were dropped while it had lost its lock ({', '.join(gone)}"
                " went): another run took it for dead",
                hint="run the tests again; if it keeps happening, see why the server refused this run's "
                "connections for so long (its log)",
            )
            self.notes.append(f"this run's databases on the server were dropped while it had lost its lock: {gone[0]}")
        self._templates |= finished
        beacons = [(name, label) for name, label, _ in ours if isinstance(label.get("alive"), (int, float))]
        self._last_beat = time.monotonic()
        if not beacons:
            self.beacon = None
            return
        name, label = beacons[0]
        if name in busy:  # a clone of it is being made (its COMMENT would wait, and hold clones up): soon
            self._last_beat = time.monotonic() - HEARTBEAT_EVERY + 0.5
            return
        now = float(rows[0][3])
        comment = run_label(self.token, keep=label.get("keep") is True, alive=now, ended=ended)
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
        self.beacon = name

    def made_template(self, name: str) -> None:
        """Template ``name`` of this run is finished: it must be there until the run ends."""
        self._templates.add(name)

    def _note_gap(self, gap: float) -> None:
        if gap >= LOCK_LOST_NOTE_AFTER:
            self.notes.append(
                f"this run's lock on the server was lost for {gap:.0f} s before it could take it again "
                f"(a later run takes a run whose lock is free for dead once it has been silent for "
                f"{HEARTBEAT_GRACE:.0f} s)"
            )

    def backend_pids(self) -> list[int]:
        return [conn.info.backend_pid for conn in self._conns if conn is not None and not conn.closed]

    def close(self) -> None:
        """Give the lock up (the sessions end), after saying in the beacon's label that the run
        ended: a later run need not wait for its heartbeat to age (kept databases)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._beat(ended=True)
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
        try:
            with connect_clearly(conninfo, retry_for=0, autocommit=True) as conn:
                notes += reap_external(conn, int(version_num), own=token, connect=connector(Dsn(conninfo)))
        except BaseException:
            lock.close()
            raise
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
#: the server's time, when the server started, and the labels of a run's databases (of the roles
#: this one has the rights of: those it may drop; another role's label is no evidence about them)
_HEARTBEAT = sql.SQL(
    "SELECT {}, extract(epoch FROM pg_postmaster_start_time())::float8,"
    " array(SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE %s"
    " AND pg_has_role(datdba, 'USAGE'))"
).format(SERVER_EPOCH)


@dataclass(frozen=True)
class Verdict:
    """Whether a run is over, and when not though its lock is free: since when it has been silent
    (``since``, the server's time of its last heartbeat, or of the server's start when that is
    later: ``restarted``) and the server's time now."""

    over: bool
    since: float | None = None
    now: float = 0.0
    restarted: bool = False

    def __bool__(self) -> bool:
        return self.over

    @property
    def why_not(self) -> str:
        """Why a run whose lock is free is not over yet, and when it will be (for a line)."""
        assert self.since is not None
        ago = max(0.0, self.now - self.since)
        when = datetime.fromtimestamp(self.since + HEARTBEAT_GRACE, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        seen = (
            f"the server started {ago:.0f} s ago, after its last heartbeat"
            if self.restarted
            else f"it was alive {ago:.0f} s ago"
        )
        return (
            f"its lock is free, but {seen} and it may be reconnecting: taken for dead from {when} "
            "(server time) on, if it stays silent"
        )


@contextlib.contextmanager
def _run_over(conn: psycopg.Connection[Any], token: str) -> Iterator[Verdict]:
    """Whether run ``token`` is over: its lock could be taken here, no session holds (or waits for)
    it in another database, and it ended, or left no heartbeat (an older version's run, or one
    killed before it labelled its first template), or its heartbeat is :data:`HEARTBEAT_GRACE`
    old (from the server's start, when that is later). Holds its lock meanwhile, so two reapers in
    one database never both drop, and no heartbeat or database of the run is written meanwhile
    (the run writes them only on connections that hold the lock); two in different databases each
    see the other's lock and leave it for later."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock_key(token)).fetchone()
    if not row or not row[0]:
        yield Verdict(False)  # that run is alive
        return
    try:
        held = conn.execute(_HELD_ELSEWHERE, (LOCK_CLASS, int(token, 16))).fetchone()
        if held and held[0]:
            yield Verdict(False)
            return
        beat = conn.execute(_HEARTBEAT, (_like(f"{EXTERNAL_PREFIX}{token}_") + "%",)).fetchone()
        assert beat is not None
        now, started, comments = float(beat[0]), float(beat[1]), beat[2]
        labels = [label for comment in comments if (label := _run_label(comment)) and label.get("token") == token]
        beats = [label for label in labels if isinstance(label.get("alive"), (int, float))]
        if not beats:
            yield Verdict(True)
            return
        last = max(beats, key=lambda label: float(label["alive"]))
        since = max(float(last["alive"]), started)
        ended = last.get("ended") is True
        yield Verdict(ended or now - since >= HEARTBEAT_GRACE, since, now, restarted=since > float(last["alive"]))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock_key(token))


def reap_external(conn: psycopg.Connection[Any], version_num: int, *, connect: Connector, own: str = "") -> list[str]:
    """Drop the databases of dead runs (see :func:`_run_over`), except kept ones and those of other
    roles (``connect`` opens a database, to drop the subscriptions in it first). Returns one line
    per thing done or left alone."""
    by_token, others = _ours_by_token(conn, kept=False, own=own)
    notes = [
        f"left {len(names)} database(s) of role {owner!r} alone (not ours to drop): {', '.join(names[:3])}"
        + (" ..." if len(names) > 3 else "")
        for owner, names in others.items()
    ]
    for token, names in by_token.items():
        with _run_over(conn, token) as over:
            if not over:
                if over.since is not None:
                    notes.append(f"left {len(names)} database(s) of run {token} alone: {over.why_not}")
                continue
            dropped = []
            for name in names:
                try:
                    drop_database(conn, name, version_num, connect=connect)
                    dropped.append(name)
                except Exception as exc:  # never a reason to fail this run (nor is a bug of ours): say so, go on
                    notes.append(f"could not drop {name} left by a dead run: {_why(exc)}")
            if dropped:
                notes.append(f"dropped {len(dropped)} database(s) left by dead run {token}")
    return notes


def _why(exc: Exception) -> str:
    """Why a drop failed: the server's message, or, for a fault that is no database error (a bug of
    pytest-atlas's own), its kind and message, said to be ours."""
    if isinstance(exc, psycopg.Error):
        return one_line(exc)
    return f"{type(exc).__name__}: {scrub(one_line(exc))} (a fault of pytest-atlas's own; please report it)"


def drop_kept(conn: psycopg.Connection[Any], version_num: int, *, connect: Connector) -> tuple[list[str], list[str]]:
    """Drop the databases runs kept (``--atlas-keep-db`` labels them) whose run is over (see
    :func:`_run_over`: a run still going may be using them), and those dead runs left unkept (what
    the next run's start would reap), of this very role only (not every role a superuser has the
    rights of); ``connect`` opens a database, to drop the subscriptions in it first. Returns
    (dropped, left alone with why): a live run's unkept databases are neither (they are in use)."""
    kept, others = _ours_by_token(conn, kept=True, owned=True)
    leftovers, _ = _ours_by_token(conn, kept=False, owned=True)
    dropped: list[str] = []
    left = [f"{name} (of role {owner!r}, not ours to drop)" for owner, names in others.items() for name in names]
    for token in sorted(kept.keys() | leftovers.keys()):
        mine, theirs = kept.get(token, []), leftovers.get(token, [])
        with _run_over(conn, token) as over:
            if not over:
                why = "its run is still going" if over.since is None else over.why_not
                left += [f"{name} ({why})" for name in mine]
                if over.since is not None:  # a run that may be reconnecting: said, as for a kept one
                    left += [f"{name} (left by run {token}: {why})" for name in theirs]
                continue
            for name in mine + theirs:
                try:
                    drop_database(conn, name, version_num, connect=connect)
                    dropped.append(name if name in mine else f"{name} (left by dead run {token})")
                except Exception as exc:  # one that cannot be dropped (a bug of ours too) does not stop the others
                    left.append(f"{name} (could not drop it: {_why(exc)})")
    return sorted(dropped), sorted(left)


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


def _like(prefix: str) -> str:
    """``prefix`` as the start of a LIKE pattern (its ``_`` matched as itself)."""
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def _run_label(comment: object) -> dict[str, Any] | None:
    """A database's pytest-atlas label (see :func:`~pytest_atlas.db._postgres.run_label`), or None."""
    try:
        label = json.loads(str(comment))["pytest-atlas"]
    except (TypeError, ValueError, KeyError):
        return None
    return label if isinstance(label, dict) else None


def _keep_label(comment: object) -> str | None:
    """The token a database's ``--atlas-keep-db`` label names, or None when it has no such label."""
    label = _run_label(comment)
    return str(label["token"]) if label is not None and label.get("keep") is True and "token" in label else None
