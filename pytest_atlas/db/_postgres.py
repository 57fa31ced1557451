"""The server of a test run as the fixtures see it (:class:`AtlasPostgres`), and what the plugin does
with databases on it: templates, labels for kept databases, drops."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pytest_atlas._dsn import build_url, redact, scrub
from pytest_atlas.db._connect import SERVER_SETTING, STARTED_SERVER_LOGIN, connect_clearly, one_line
from pytest_atlas.errors import ProvisioningError, ServerUnavailable
from pytest_atlas.schema import SqlSource, load_sources

if TYPE_CHECKING:
    from pytest_atlas.db._cluster import LocalCluster
    from pytest_atlas.db._external import RunLock
    from pytest_atlas.db._runtime import Base, RunDir

__all__ = [
    "CANNOT_CONNECT",
    "AtlasPostgres",
    "clone_database",
    "create_template",
    "drop_database",
    "hold_run_lock",
    "label_kept",
    "left_line",
    "lock_key",
    "run_label",
]

#: first key of every pytest-atlas advisory lock (the two-key form): "atla"
LOCK_CLASS = 0x61746C61
#: the server's clock, in seconds since the epoch (heartbeats are judged by it, never the local one)
SERVER_EPOCH = sql.SQL("extract(epoch FROM statement_timestamp())::float8")


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_key(token: str) -> tuple[int, int]:
    """The advisory lock (two int4 keys) that says run ``token`` is alive."""
    return LOCK_CLASS, _int4(int(token, 16))


def run_label(token: str, *, keep: bool, alive: float | None = None, ended: bool = False) -> str:
    """The comment of a database a run made on an existing server: its token, whether it is kept
    (``--atlas-keep-db``), and on its templates its heartbeat: the server's time when the run last
    showed it was alive (``alive``), and whether it ended (then its lock alone says it is over)."""
    label: dict[str, object] = {"token": token, "keep": keep}
    if alive is not None:
        label["alive"] = alive
    if ended:
        label["ended"] = True
    return json.dumps({"pytest-atlas": label})


def hold_run_lock(conn: psycopg.Connection[Any], token: str) -> None:
    """Take run ``token``'s lock (shared) on ``conn`` too, for as long as it is open: a database
    made and labelled on it is never seen by a reaper unlabelled while the run lives. Waits for a
    reaper that holds it a moment (10 s at most)."""
    try:
        conn.execute(
            sql.SQL("SET lock_timeout = '10s'; SELECT pg_advisory_lock_shared({}, {}); RESET lock_timeout").format(
                *map(sql.Literal, lock_key(token))
            )
        )
    except psycopg.errors.LockNotAvailable:
        raise ProvisioningError(
            f"another session has held the lock of run {token} on the server for 10 s",
            hint="a role that may connect there can take pytest-atlas's advisory locks; see pg_locks",
        ) from None


@dataclass
class AtlasPostgres:
    """The PostgreSQL server of this test run (the ``atlas_postgres`` fixture).

    ``source`` says how it was obtained; ``cache`` says whether the cluster came from the cache.
    Build DSNs with :meth:`dsn` (a ``postgresql://`` URL) and connections with :meth:`connect`.
    No DSN it hands out carries a password: a started server is reached through its private unix
    socket (``host`` is then the socket's folder) or, with ``--atlas-tcp``, through 127.0.0.1 with
    the password in ``passfile``; on an existing server whose DSN has a password, that password is
    in ``passfile`` too.
    """

    host: str
    port: int
    user: str
    version: str
    version_num: int
    source: str
    cache: str
    #: True when the plugin started this server (and removes it at the end of the run)
    owned: bool
    #: prefix of the databases the plugin creates on this server
    db_prefix: str
    #: name of the ready-made template database (schema loaded), or None
    template: str | None = None
    data_dir: Path | None = None
    log_file: Path | None = None
    account: str | None = None
    maintenance_db: str = "postgres"
    #: the 0600 passfile every DSN of this server names, or None when no password is needed
    passfile: Path | None = None
    #: True when a started server also listens on 127.0.0.1 (``--atlas-tcp``)
    tcp: bool = False
    #: this run's token: part of every database name the plugin creates on an existing server
    token: str = ""
    #: what clean-up did or left alone (one line each, shown in the terminal summary)
    notes: list[str] = field(default_factory=list)
    _params: dict[str, str] = field(default_factory=dict, repr=False)
    _admin: dict[str, str] = field(default_factory=dict, repr=False)
    _cluster: LocalCluster | None = field(default=None, repr=False)
    _run: RunDir | None = field(default=None, repr=False)
    _base: Base | None = field(default=None, repr=False)
    _lock: RunLock | None = field(default=None, repr=False)

    def dsn(self, dbname: str | None = None) -> str:
        """A ``postgresql://`` URL for ``dbname`` (default: the maintenance database). It carries no
        password, so it may be printed; psycopg, asyncpg, SQLAlchemy and Atlas accept it."""
        return build_url({**self._params, "dbname": dbname or self.maintenance_db})

    def redacted_dsn(self, dbname: str | None = None) -> str:
        """The same URL with any password replaced by ``***`` (for messages)."""
        return redact(self.dsn(dbname))

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq ``key=value`` string for ``dbname``."""
        return make_conninfo("", **{**self._params, "dbname": dbname or self.maintenance_db})

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new ``psycopg.Connection`` to ``dbname`` (keyword arguments go to ``psycopg.connect``).
        While the server restarts after a crashed backend, connecting is retried for a few seconds."""
        return connect_clearly(
            self.conninfo(dbname), alive=self.alive, login_hint=self._login_hint, setting=self._setting, **kwargs
        )

    def admin_connect(
        self, dbname: str | None = None, *, retry_for: float = 10.0, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """A connection for the plugin's own work (on a started server: through its socket)."""
        params = {**(self._admin or self._params), "dbname": dbname or self.maintenance_db}
        return connect_clearly(
            make_conninfo("", **params),
            retry_for=retry_for,
            alive=self.alive,
            login_hint=self._login_hint,
            setting=self._setting,
            **kwargs,
        )

    def drop_connect(self, dbname: str) -> psycopg.Connection[Any]:
        """A connection of the plugin's to a database it is about to drop (to drop what keeps
        PostgreSQL from dropping it: see :func:`drop_database`); no retry."""
        return self.admin_connect(dbname, autocommit=True, retry_for=0)

    @property
    def _setting(self) -> str:
        """Where a connection problem's cause is to be found, for hints: the DSN the user gave, or the
        log of the server this run started (no DSN was given then)."""
        if not self.owned:
            return SERVER_SETTING
        return f"the log of the server pytest-atlas started ({self.log_file})" if self.log_file else "its log"

    @property
    def _login_hint(self) -> str | None:
        return STARTED_SERVER_LOGIN if self.owned else None

    def alive(self) -> bool:
        """False once a server this run started has exited (then nothing is worth retrying)."""
        cluster = self._cluster
        return cluster is None or cluster.process is None or cluster.running()

    def made_template(self, name: str) -> None:
        """Tell the run's lock that template ``name`` is finished (it must stay until the run ends)."""
        if self._lock is not None:
            self._lock.made_template(name)

    def check_run(self) -> None:
        """Raise when a later run dropped this run's databases on an existing server while this one
        had lost its lock on both connections (see :class:`~pytest_atlas.db._external.RunLock`)."""
        if self._lock is not None and self._lock.failure is not None:
            raise self._lock.failure

    @property
    def run_dir(self) -> Path | None:
        """This run's folder (server files, passfile), or None."""
        return self._run.path if self._run is not None else None

    @property
    def keeps_running(self) -> bool:
        return self.owned and self._cluster is not None and self._cluster.process is None

    def stop(self) -> None:
        """Stop a server the plugin started and remove its files; on an existing server, give up
        the run's lock (no-op otherwise)."""
        self._release_lock()
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None
        if self._run is not None:
            self._run.remove()
            self._run = None
        if self._base is not None:
            from pytest_atlas.db._runtime import remove_private_base

            remove_private_base(self._base)
            self._base = None

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def detach(self) -> None:
        """Leave a started server running after the run (``--atlas-keep-db``); its folder (or, on an
        existing server, the folder of the passfile) is marked kept, so no later run reaps it."""
        self._release_lock()
        if self._cluster is not None:
            self._cluster.detach()
            self._cluster = None
        if self._run is not None:
            self._run.mark_kept()
            self._run.release()


def create_template(server: AtlasPostgres, name: str, sources: Sequence[SqlSource], *, keep: bool = False) -> None:
    """Create database ``name`` from template0, load ``sources`` into it, and close it to connections
    (so that it can always be cloned). On a load error the database is dropped again.

    On an existing server the template carries the run's label (:func:`run_label`), written on
    the connection that created it, which holds the run's lock meanwhile: it is where the run's
    heartbeat is kept."""
    with server.admin_connect(autocommit=True) as admin:
        if not server.owned:
            hold_run_lock(admin, server.token)
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        if not server.owned:
            row = admin.execute(sql.SQL("SELECT {}").format(SERVER_EPOCH)).fetchone()
            assert row is not None
            label = run_label(server.token, keep=keep, alive=float(row[0]))
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))
        try:
            with server.admin_connect(name) as conn:
                load_sources(conn, sources)
        except BaseException:
            drop_database(admin, name, server.version_num, connect=server.drop_connect)
            raise
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
    server.made_template(name)


def label_kept(admin: psycopg.Connection[Any], server: AtlasPostgres, name: str, *, keep: bool) -> None:
    """On an existing server, mark a database kept with --atlas-keep-db, so that no later run drops
    it. (Every other database is recognised by the run token in its name.)"""
    if server.owned or not keep:
        return
    label = run_label(server.token, keep=True)
    admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))


def clone_database(
    admin: psycopg.Connection[Any], server: AtlasPostgres, name: str, template: str, *, keep: bool
) -> None:
    """Create ``name`` as a copy of ``template`` (file copy on PostgreSQL 15+, the faster of the
    two strategies for a small database), labelled kept on an existing server with ``keep``."""
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    if server.version_num >= 150000:
        query = sql.SQL("{} STRATEGY FILE_COPY").format(query)
    admin.execute(query)
    label_kept(admin, server, name, keep=keep)


#: a connection to a database, for :func:`drop_database` (given the database's name)
Connector = Callable[[str], "psycopg.Connection[Any]"]

#: the connection string a subscription is given before it is dropped: libpq refuses it before it
#: connects anywhere (no such ``target_session_attrs``), so ``DROP SUBSCRIPTION``, which connects to
#: the publisher to drop the slots of tables not synchronised yet even without a slot of its own,
#: reaches no one. (A subscription of a role that is no superuser must name a password, so this one
#: names a placeholder: it is no secret.)
_NOWHERE = "target_session_attrs=pytest-atlas-reaches-no-publisher password=none"

#: the subscriptions in a database, by the database's name (these columns are readable by every role)
_SUBSCRIPTIONS_OF = (
    "SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = %s"
    " ORDER BY s.subname"
)


#: what :func:`drop_database` raises when the connection it needs to the database (to drop its
#: subscriptions) failed with a fault that passes (the server full, restarting): SQLSTATE 57P03,
#: which no statement on an open connection raises, so callers can tell it apart (retry it later;
#: it says nothing about the drop itself). A login the server refuses is a fault that stays (55000).
CANNOT_CONNECT = psycopg.errors.CannotConnectNow


def left_line(name: str, exc: BaseException, *, owned: bool) -> str:
    """The summary's line for database ``name``, left in place because dropping it raised ``exc``.
    A fault that is no ``psycopg.Error`` is pytest-atlas's own (or the machine's): the line says so,
    with the exception's kind, and how the database goes all the same (with the server this run
    started; on an existing server, the next run's reaper drops it: this run is over by then)."""
    if isinstance(exc, psycopg.Error):
        return f"left {name} in place (could not drop it: {one_line(exc)})"
    how = (
        "it goes with the server this run started"
        if owned
        else "the next pytest-atlas run on this server drops it as it starts"
    )
    return (
        f"left {name} in place (could not drop it: {type(exc).__name__}: {scrub(one_line(exc))}: a fault of "
        f"pytest-atlas's own, not the server's; please report it); {how}"
    )


def drop_database(conn: psycopg.Connection[Any], name: str, version_num: int, *, connect: Connector) -> None:
    """Drop a database the plugin created, disconnecting whatever code under test left connected.

    PostgreSQL refuses to drop a database that holds a subscription (``CREATE SUBSCRIPTION`` in a
    test); those are dropped first, on a connection ``connect(name)`` opens to the database,
    without contacting their publishers (see :func:`_drop_subscriptions`). What cannot be done is a
    ``psycopg.Error`` saying why (the callers leave the database, with a line); one that may pass is
    transient by :func:`~._connect.is_transient` (a failed connection: :data:`CANNOT_CONNECT`). Any
    other exception is a fault of pytest-atlas's own: the callers catch it too (the database is
    never lost to it: tried again or left with :func:`left_line`)."""
    try:
        _drop(conn, name, version_num)
        return
    except psycopg.errors.ObjectInUse:
        if not conn.execute(_SUBSCRIPTIONS_OF, (name,)).fetchall():
            raise  # in use for another reason
    _drop_subscriptions(conn, name, connect)
    _drop(conn, name, version_num)


def _drop(conn: psycopg.Connection[Any], name: str, version_num: int) -> None:
    ident = sql.Identifier(name)
    if version_num >= 130000:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


def _drop_subscriptions(admin: psycopg.Connection[Any], name: str, connect: Connector) -> None:
    """Drop every subscription in database ``name`` (one the plugin made, about to be dropped): each is
    disabled (its workers stop), detached from its replication slot (``slot_name = NONE``: the slot,
    if there is one, stays the publisher's), pointed at a connection string libpq refuses before it
    connects, then dropped. Nothing here connects to a publisher. A template closed to connections
    (``ALLOW_CONNECTIONS false``, or a connection limit) is opened first: it is dropped next."""
    ident = sql.Identifier(name)
    row = admin.execute("SELECT datallowconn, datconnlimit FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if row is not None and (not row[0] or row[1] >= 0):
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT -1").format(ident))
    try:
        db = connect(name)
    except ProvisioningError as exc:
        # said as a psycopg error (what the callers handle), of a kind that keeps whether the fault
        # passes: a server that is full, restarting or (a moment, between its stop and its start) not
        # listening: try again later; or a login it refuses: leave the database
        passes = isinstance(exc, ServerUnavailable) or exc.problem.startswith("cannot reach")
        kind = CANNOT_CONNECT if passes else psycopg.errors.ObjectNotInPrerequisiteState
        raise kind(
            f"it holds subscriptions, and connecting to it to drop them failed: {exc.problem.splitlines()[0]}"
        ) from None
    with db:
        # names as text whatever the database's own client encoding (a test may have set it to
        # SQL_ASCII, in which psycopg decodes no text: a name outside ASCII would come as bytes)
        db.execute("SET client_encoding TO 'UTF8'")
        role = str(db.info.user)
        for (subname,) in db.execute(_SUBSCRIPTIONS_OF, (name,)).fetchall():
            sub = sql.Identifier(subname)
            steps = [
                sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sub),
                sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(sub),
                sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(sub, sql.Literal(_NOWHERE)),
                sql.SQL("DROP SUBSCRIPTION {}").format(sub),
            ]
            try:
                for step in steps:
                    db.execute(step)
            except psycopg.Error as exc:
                if db.broken:
                    raise
                raise type(exc)(
                    f"it holds subscription {sub.as_string(db)}, which role {role!r} could not drop: {one_line(exc)}"
                ) from exc
