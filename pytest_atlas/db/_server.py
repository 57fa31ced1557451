"""The server of a test run that the plugin starts: planned (binaries, account, data folder, cache
entry) without starting anything, then started from the cache or from initdb.

:func:`plan_server` tells what a run would do (for the report header); :func:`start_server` does
it. An existing server given by DSN is attached in :mod:`._external`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from pytest_atlas._config import AtlasSettings
from pytest_atlas._dsn import Dsn, passfile_line
from pytest_atlas.db._access import new_password, set_password
from pytest_atlas.db._account import ServerAccount, current_user_name, server_account
from pytest_atlas.db._binaries import PgInstall, find_install, reachable_install
from pytest_atlas.db._cache import (
    HOT_BUDGET,
    CacheEntry,
    CacheUnavailable,
    ClusterCache,
    DamagedEntry,
    copy_entry,
    default_cache_dir,
    enforce_budget,
    hot_usage,
    is_tmpfs,
    largest_database,
    make_room,
    megabytes,
    prune_tiers,
)
from pytest_atlas.db._cluster import (
    CLUSTER_SIZE,
    INITDB_ARGS,
    SUPERUSER,
    LocalCluster,
    PortInUseError,
    no_space_fix,
    out_of_space,
    server_room,
)
from pytest_atlas.db._connect import one_line, passfile_first
from pytest_atlas.db._external import probe_server
from pytest_atlas.db._fs import (
    NoSpaceError,
    UnsafePathError,
    ensure_dir,
    free_bytes,
    no_space,
    remove_tree,
    size_text,
)
from pytest_atlas.db._postgres import AtlasPostgres, create_template
from pytest_atlas.db._reset import isolation_header
from pytest_atlas.db._room import Holder, Reservation, held_note, holders_text
from pytest_atlas.db._runtime import Base, RunDir, choose_base, reap_stale
from pytest_atlas.errors import ProvisioningError
from pytest_atlas.schema import SqlSource, fingerprint

__all__ = ["TEMPLATE", "ServerPlan", "plan_server", "refuse_crowded", "start_server"]

#: the template database of a cached cluster (schema.sql + extra SQL already loaded)
TEMPLATE = "atlas_template"

_SETTINGS_TEXT = "initdb " + " ".join(INITDB_ARGS) + " | settings outside the data folder"


@dataclass
class ServerPlan:
    """What a run will do to get its server, found without starting anything."""

    settings: AtlasSettings
    sources: tuple[SqlSource, ...] = field(repr=False)
    dsn: Dsn | None = None
    dsn_source: str | None = None
    install: PgInstall | None = None
    account: ServerAccount | None = None
    base: Base | None = None
    cache: ClusterCache | None = None
    cache_key: str | None = None
    cache_state: str = "disabled (--atlas-no-cache)"
    #: why the in-memory tier is not used in this run (the data folder has no room for it), or ""
    hot_state: str = ""
    #: the servers the run starts in the data folder at once: one per pytest-xdist worker
    servers: int = 1
    #: whether the in-memory tier is used, as decided for the whole run ("": used; else why not),
    #: or None when there was none to decide on (no cache, no tmpfs): what the xdist controller
    #: hands its workers, so that a worker does not weigh the copy against its own server only
    hot_decision: str | None = None
    #: the data folder's free space when the run decided (None: unknown), and what other live runs
    #: of this account had reserved there and not used yet (see :mod:`._room`)
    room_free: int | None = None
    room_held: int = 0
    holders: list[Holder] = field(default_factory=list, repr=False)
    #: for the header: the room other live runs hold in the data folder, or ""
    room_note: str = ""
    #: this run's reservation in the data folder (its controller's, on a pytest-xdist worker: then
    #: only its token is known), released at the end of the run
    reservation: Reservation | None = field(default=None, repr=False)
    room_token: str | None = None

    def release_room(self) -> None:
        """Let this run's reservation go (the end of the run; idempotent)."""
        if self.reservation is not None:
            self.reservation.release()
        if self.base is not None and self.base.ledger is not None:
            self.base.ledger.release()

    @property
    def tcp(self) -> bool:
        """Whether a started server also listens on TCP (``--atlas-tcp``, or a port was given)."""
        return self.settings.tcp or self.settings.port != 0

    def header(self) -> list[str]:
        """Lines for pytest's report header."""
        isolation = isolation_header(
            self.settings.isolation,
            data_dir=self.base.path if self.base is not None else None,
            keep=self.settings.keep_db,
        )
        if self.dsn is not None:
            return [
                f"atlas: existing server {self.dsn.redacted} (from {self.dsn_source}): {probe_server(self.dsn)}",
                isolation,
            ]
        assert self.install is not None
        assert self.account is not None
        assert self.base is not None
        users = ", ".join(repr(name) for name in dict.fromkeys([current_user_name(), self.account.name]))
        if self.tcp:
            port = self.settings.port or "a free port"
            access = (
                f"unix socket (peer login for {users}) and 127.0.0.1:{port} (scram-sha-256, a password made "
                "for this run, in a 0600 passfile)"
            )
        else:
            access = f"unix socket only, in a private folder (peer login for {users})"
        lines = [
            f"atlas: PostgreSQL {self.install.version} from {self.install.bindir} ({self.install.source})",
            f"atlas: cluster cache: {self.cache_state}; {self.account.reason}",
            f"atlas: access: {access}; data in {self.base.path}",
        ]
        if self.hot_state:
            lines.append(f"atlas: hot cache in memory: {self.hot_state}")
        elif self.cache is not None and self.cache.hot is not None:
            folder = self.cache.hot.root.parent
            held = hot_usage(folder)
            entries = f"{len(held)} entr{'y' if len(held) == 1 else 'ies'}"
            size = megabytes(sum(info.size for info in held))
            lines.append(f"atlas: hot cache in memory: {size} in {entries} ({folder}), at most {megabytes(HOT_BUDGET)}")
        if self.base.note:
            lines.append(f"atlas: data folder: {self.base.note}")
        if self.room_note:
            lines.append(f"atlas: data folder: {self.room_note}")
        return [*lines, isolation]


def plan_server(
    settings: AtlasSettings,
    sources: tuple[SqlSource, ...],
    *,
    servers: int = 1,
    hot_decision: str | None = None,
    decide: bool = True,
    follow: str | None = None,
    room_token: str | None = None,
) -> ServerPlan:
    """Decide where the server comes from (existing DSN, or which binaries, account, data folder and
    cache entry). Creates the data and cache folders (checked) but starts nothing.

    ``servers``: how many servers the run starts in the data folder at once (one per pytest-xdist
    worker); the in-memory tier is used only if its copy leaves room for all of them.
    ``hot_decision``: that decision as the run's controller made it (see
    :attr:`ServerPlan.hot_decision`): a worker takes it as it is (the free space it sees is what
    the other workers' servers left it).

    ``decide``: the run decides on its data folder's room and reserves it (see :mod:`._room`), with
    that folder's room lock held from choosing the folder to the reservation, so that another run
    of the account deciding at once counts it. A pytest-xdist worker does not: it takes the folder
    its controller chose (``follow``) and counts its server in the controller's reservation
    (``room_token``)."""
    plan = ServerPlan(settings=settings, sources=sources, servers=max(servers, 1))
    if settings.dsn is not None:
        plan.dsn = settings.dsn
        plan.dsn_source = settings.sources.get("dsn", "settings")
        return plan
    plan.install = find_install(settings.pg_bin)
    plan.account = server_account(settings.run_as)
    # the default folder is /dev/shm only if it holds the servers of every worker
    plan.base = choose_base(
        settings.data_dir,
        plan.account,
        room=plan.servers * (CLUSTER_SIZE + server_room()),
        decide=decide,
        follow=Path(follow) if follow else None,
    )
    plan.room_token = room_token
    try:
        _plan_cache(plan, hot_decision=hot_decision)
        _reserve(plan)
    finally:
        if plan.base.ledger is not None:
            plan.base.ledger.release()  # (reserved by now, unless planning failed)
    return plan


def _plan_cache(plan: ServerPlan, *, hot_decision: str | None) -> None:
    """The cache part of :func:`plan_server`: the entry, and whether the in-memory tier is used."""
    settings, sources = plan.settings, plan.sources
    assert plan.install is not None
    assert plan.base is not None
    if settings.cache:
        cache = ClusterCache(settings.cache_dir or default_cache_dir())
        plan.cache_key = key = ClusterCache.key(plan.install, _SETTINGS_TEXT, fingerprint(sources))
        try:
            cache.prepare()
        except CacheUnavailable as exc:
            plan.cache_state = f"unavailable: {exc}; starting without a cache"
            return
        plan.cache = cache
        base = plan.base
        if not base.private and is_tmpfs(base.path) and not is_tmpfs(cache.root):
            # one hot tier per persistent cache folder, so --atlas-cache-dir keeps its meaning
            tier = hashlib.sha256(str(cache.root.resolve()).encode()).hexdigest()[:8]
            try:
                tiers = ensure_dir(base.path / "cache", 0o700)
                hot = ClusterCache(tiers / tier, max_entries=2, persistent=False)
                hot.budget = HOT_BUDGET
                hot.prepare()
                cache.hot = hot
                prune_tiers(tiers, keep=tier)
                enforce_budget(tiers, HOT_BUDGET)
            except (CacheUnavailable, UnsafePathError, OSError):
                cache.hot = None
        hit, damage = cache.check(key)
        if cache.hot is not None:
            if hot_decision is None:
                plan.hot_state = _fit_in_memory(cache, base, plan.servers)
            else:  # the controller's decision, for every worker alike
                cache.hot_room = _room_for(cache.checked)
                if hot_decision:
                    cache.hot = None
                plan.hot_state = hot_decision
            plan.hot_decision = plan.hot_state
            if plan.hot_state and cache.checked is not None and not cache.checked.persistent:
                hit, damage = cache.check(key)  # the run is served from the persistent entry, if any
        plan.cache_state = damage if damage and not hit else f"{'hit' if hit else 'miss'} ({_where(cache, key)})"
        if damage and hit:
            plan.cache_state += f"; {damage}"
        if cache.cleaned:
            plan.cache_state += f"; removed {len(cache.cleaned)} folder(s) of interrupted cache stores"


def _needs(plan: ServerPlan) -> tuple[int, int, int]:
    """What the run's servers need in the data folder: (the cluster's size, the room a server needs
    besides it, all of it: every server, and the copy in memory the first server makes)."""
    entry = plan.cache.checked if plan.cache is not None else None
    size = entry.size if entry is not None else CLUSTER_SIZE
    room = _room_for(entry)
    needed = plan.servers * (size + room)
    if plan.cache is not None and plan.cache.hot is not None and (entry is None or entry.persistent):
        needed += size  # the copy in memory the first server makes (kept only when all fit beside it)
    return size, room, needed


def _reserve(plan: ServerPlan) -> None:
    """With the data folder's room lock held: note what other live runs hold there, and record
    this run's reservation if its servers fit beside them (a run that does not fit reserves
    nothing: it is refused, or its server start says the folder is full)."""
    base = plan.base
    assert base is not None
    ledger = base.ledger
    if ledger is None:
        return
    plan.room_free = free_bytes(base.path)
    plan.room_held = ledger.held
    plan.holders = list(ledger.others)
    plan.room_note = held_note(ledger)
    size, _room, needed = _needs(plan)
    free = ledger.free()
    if free is not None and free < needed:
        ledger.release()
        return
    hot, hot_size = "", 0
    cache, entry = plan.cache, plan.cache.checked if plan.cache is not None else None
    if cache is not None and cache.hot is not None and plan.cache_key and (entry is None or entry.persistent):
        with contextlib.suppress(ValueError):
            hot = str((cache.hot.root / plan.cache_key).relative_to(base.path / "cache"))
            hot_size = size
    plan.reservation = ledger.reserve(needed, hot=hot, hot_size=hot_size)
    if plan.reservation is not None:
        plan.room_token = plan.reservation.token


def _room_for(entry: CacheEntry | None) -> int:
    """The bytes a server started from ``entry`` (or from initdb: None) needs in its data folder
    besides its cluster: its first WAL and files, and the test databases it holds at once."""
    return server_room(largest_database(entry.manifest) if entry is not None else 0)


def _fit_in_memory(cache: ClusterCache, base: Base, servers: int = 1) -> str:
    """Keep the in-memory tier (on the file system of the run's data) only if the data folder has
    room for a copy there and for the run's ``servers`` beside it (one per pytest-xdist worker: each
    its copy of the cluster, and :func:`_room_for`); else the run goes without it (its copies in
    memory that no run uses are removed as far as the servers need their room). Returns why it is
    not used, or ""."""
    hot = cache.hot
    assert hot is not None
    entry = cache.checked
    size = entry.size if entry is not None else CLUSTER_SIZE
    room = _room_for(entry)
    cache.hot_room = room
    needed = servers * (size + room)  # the servers, without the copy in memory
    held = base.ledger.held if base.ledger is not None else 0  # what other live runs reserved there
    free = free_bytes(base.path)
    if free is not None:
        free -= held
    if entry is not None and not entry.persistent:
        if free is None or free >= needed:
            return ""  # the copy in memory is there already, and the servers fit beside it
        free += size  # the servers' room if the copy in memory goes
    if free is None or free >= size + needed:
        return ""
    cache.hot = None
    total = size_text(size + needed)
    them = (
        f"this run's server (~{size_text(size + room)})"
        if servers == 1
        else f"the {servers} servers of -n {servers} (~{size_text(size + room)} each)"
    )
    shown = size_text(free_bytes(base.path) or 0)
    if held and base.ledger is not None:
        shown += f" (~{size_text(held)} of it held by {holders_text(base.ledger.others)})"
    note = (
        f"not used: {base.path} has {shown} free, a copy in memory "
        f"({size_text(size)}) and {them} need ~{total}; give --atlas-data-dir a tmpfs with ~{total} free to "
        "keep clusters in memory"
    )
    # the copies in memory go only if that lets the servers fit (else the run fails anyway, saying so)
    copies = sum(info.size for info in hot_usage(hot.root.parent))
    avail = (free_bytes(base.path) or 0) - held
    removed = make_room(hot.root.parent, needed + held) if avail + copies >= needed else []
    if removed:
        note += f"; removed {len(removed)} cop{'y' if len(removed) == 1 else 'ies'} in memory no run was using"
    return note


def refuse_crowded(plan: ServerPlan, where: str) -> None:
    """Before any test: raise NoSpaceError unless the data folder has room for the servers of all
    the run's pytest-xdist workers at once (each worker checks only its own when it starts, and all
    would start, then run out of space mid-run), beside what other live runs of the account
    reserved there and have not used yet (they decided before this run, counting on it). ``where``
    names the setting of the folder (``--atlas-data-dir``, the ini key), or says it is the default
    one. A run alone on a folder too small for its one server is not refused here: its server start
    says so."""
    base = plan.base
    if plan.dsn is not None or base is None or (plan.servers <= 1 and not plan.room_held):
        return
    size, room, needed = _needs(plan)
    each = size + room
    free = plan.room_free if plan.room_free is not None else free_bytes(base.path)  # as the run decided
    if free is None or free - plan.room_held >= needed:
        return
    shown = f"{size_text(free)} free"
    others = ""
    if plan.room_held:
        others = holders_text(plan.holders)
        shown += f", but ~{size_text(plan.room_held)} of it is held by {others}"
    fits = max(free - plan.room_held, 0) // each
    if plan.servers <= 1:
        raise NoSpaceError(
            f"{where}: {base.path} has {shown}, and this run's server needs ~{size_text(each)} "
            f"({size_text(size)} for the cluster, {size_text(room)} for its WAL and test databases)",
            hint="wait for that run to end (runs of one account share the folder's room), or give "
            "--atlas-data-dir another folder with room, or a larger tmpfs",
        )
    fewer = f"-n {fits} fits" if fits >= 1 else "not even one server fits"
    joint = "; and " if plan.room_held else ", but "
    raise NoSpaceError(
        f"{where}: {base.path} has {shown}{joint}-n {plan.servers} starts {plan.servers} servers "
        f"there, ~{size_text(each)} each ({size_text(size)} for the cluster, {size_text(room)} for its WAL and "
        f"test databases): ~{size_text(needed)} in all",
        hint=f"give it ~{size_text(needed)} free (a larger tmpfs), run fewer workers ({fewer}), "
        + ("wait for the other run to end, " if plan.room_held else "")
        + "or give --atlas-data-dir another folder with room",
    )


def _where(cache: ClusterCache, key: str) -> str:
    """Where the entry of ``key`` is (for the header): the copy a hit is served from (in memory, or
    the persistent entry) and the persistent entry; for a miss, where it will be stored."""
    stored = cache.root / key
    served = cache.checked
    if served is None:
        return str(stored)
    if served.persistent:
        return f"{stored}, copied into memory first" if cache.hot is not None else str(stored)
    if not os.path.lexists(stored / "pgdata"):
        return f"in memory: {served.pgdata.parent}; its persistent entry {stored} is gone"
    return f"in memory: {served.pgdata.parent}, a copy of {stored}"


def start_server(plan: ServerPlan) -> AtlasPostgres:
    """Start a throwaway server as the plan says: from the cache when it can, else from initdb."""
    settings = plan.settings
    assert plan.install is not None
    assert plan.account is not None
    assert plan.base is not None
    account, base = plan.account, plan.base
    reaped = reap_stale(base.path)
    install = reachable_install(plan.install, account, base.path)
    try:
        run = RunDir.create(base.path, account, keep=settings.keep_db, room=plan.room_token)
    except OSError as exc:
        if out_of_space(exc):
            needed = CLUSTER_SIZE + server_room()
            raise no_space(base.path, needed, no_space_fix(needed)) from None
        raise
    cluster = LocalCluster(install, account, run)
    started = time.perf_counter()
    try:
        try:
            run.server_dirs()
            cache_note = _start_cluster(plan, cluster, detached=settings.keep_db)
            passfile = None
            server_notes: list[str] = []
            if plan.tcp:
                # a password made for this run, set at every start (cached clusters have none)
                password = new_password()
                passfile = run.write_passfile(passfile_line(password))
                with _local(cluster).admin_connect(autocommit=True) as admin:
                    set_password(admin, SUPERUSER, password)
                del password
                server_notes = passfile_first()
        except (OSError, psycopg.Error) as exc:
            if out_of_space(exc):  # a file of the run folder, the server's config, a WAL file...
                raise cluster.no_space() from None
            raise
    except BaseException:
        cluster.stop()
        run.remove()
        raise
    socket = _socket_params(cluster)
    public = socket if passfile is None else {**_tcp_params(cluster), "passfile": str(passfile)}
    server = AtlasPostgres(
        host=public["host"],
        port=cluster.port,
        user=SUPERUSER,
        version=install.version,
        version_num=install.version_num,
        source=f"started from {install.bindir} ({install.source}) in {time.perf_counter() - started:.2f} s",
        cache=cache_note,
        owned=True,
        db_prefix="atlas_",
        template=TEMPLATE,
        data_dir=run.pgdata,
        log_file=run.log,
        account=account.name,
        passfile=passfile,
        tcp=plan.tcp,
        _params=public,
        _admin=socket,
        _cluster=cluster,
        _run=run,
        _base=base if base.private else None,
    )
    server.notes += server_notes
    if reaped:
        server.cache += f"; removed {len(reaped)} server folder(s) left by killed runs"
        server.notes += [f"removed {line} (its run was gone)" for line in reaped]
    return server


def _socket_params(cluster: LocalCluster) -> dict[str, str]:
    return {"host": str(cluster.run.socket_dir), "port": str(cluster.port), "user": SUPERUSER}


def _tcp_params(cluster: LocalCluster) -> dict[str, str]:
    return {"host": "127.0.0.1", "port": str(cluster.port), "user": SUPERUSER}


def _local(cluster: LocalCluster) -> AtlasPostgres:
    """A handle on a cluster that is being prepared (before the run's AtlasPostgres exists)."""
    params = _socket_params(cluster)
    return AtlasPostgres(
        host=params["host"],
        port=cluster.port,
        user=SUPERUSER,
        version=cluster.install.version,
        version_num=cluster.install.version_num,
        source="",
        cache="",
        owned=True,
        db_prefix="atlas_",
        _params=params,
        _admin=params,
        _cluster=cluster,
    )


def _start_cluster(plan: ServerPlan, cluster: LocalCluster, *, detached: bool) -> str:
    """Bring up ``cluster`` with the template loaded; returns the cache outcome for the header."""
    port, tcp = plan.settings.port, plan.tcp
    cache, key = plan.cache, plan.cache_key
    if cache is None or key is None:
        _build(plan, cluster, port, tcp=tcp, detached=detached)
        return plan.cache_state
    with cache.lock(key, shared=True):  # copies of one entry run side by side
        outcome = _from_cache(cache, key, cluster, port, tcp=tcp, detached=detached)
    if outcome == "hit":
        return _skipped(cache, outcome)
    with cache.lock(key):
        if outcome is None:  # a miss: another run may have built it while we waited for the lock
            outcome = _from_cache(cache, key, cluster, port, tcp=tcp, detached=detached)
            if outcome == "hit":
                return _skipped(cache, outcome)
        if outcome is None:
            note = "miss: built and stored"
        else:
            cache.evict(key)
            note = f"rebuilt (the cached cluster was unusable: {outcome})"
        _build(plan, cluster, 0, tcp=False, detached=False)
        cluster.stop(clean=True)
        try:
            cache.store(key, cluster.run.pgdata, owner=cluster.account.uid)
        except (OSError, UnsafePathError) as exc:
            note = f"could not store the cluster ({one_line(exc)}); next run starts cold again"
    cluster.start(port, tcp=tcp, detached=detached)
    return _skipped(cache, note)


def _skipped(cache: ClusterCache, note: str) -> str:
    """The cache outcome, and why no copy was made in memory when the data folder had no room."""
    return f"{note}; {cache.hot_skipped}" if cache.hot_skipped else note


def _from_cache(
    cache: ClusterCache, key: str, cluster: LocalCluster, port: int, *, tcp: bool, detached: bool
) -> str | None:
    """Start ``cluster`` from the cache entry: "hit", None when there is no entry, else why the
    entry is unusable (it is damaged)."""
    pgdata = cluster.run.pgdata
    entry: CacheEntry | None = None
    try:
        entry = cache.lookup(key)
        if entry is None:
            return None
        # the copy, and room for the server to run (its WAL, the test databases): a folder without
        # it is full, the entry is fine; refused before anything is copied
        _check_room(cluster, entry.size, _room_for(entry))
        if entry.persistent or cache.hot is None:
            copy_entry(entry, pgdata)
        else:
            with cache.hot.lock(key, shared=True):  # no run removes the copy in memory meanwhile
                copy_entry(entry, pgdata)
        cluster.run.hand_over(pgdata)
        cluster.start(port, tcp=tcp, detached=detached)
        _check_template(cluster)
        return "hit"
    except PortInUseError:
        raise  # the user's port, not the cache, is the problem
    except (DamagedEntry, ProvisioningError, OSError, psycopg.Error) as exc:
        cluster.stop()
        remove_tree(pgdata)  # in this run's own new folder: a partial copy is this run's
        if out_of_space(exc):  # the data folder is full, not the entry damaged: it is kept
            if isinstance(exc, NoSpaceError):
                raise
            if entry is None:
                raise cluster.no_space() from None
            raise cluster.no_space(entry.size, _room_for(entry)) from None
        return one_line(exc)


def _check_room(cluster: LocalCluster, size: int, room: int) -> None:
    """Refuse a start whose cluster (``size`` bytes) and server (``room``) do not fit in the free
    space of the data folder, before anything is written."""
    free = free_bytes(cluster.run.path)
    if free is not None and free < size + room:
        raise cluster.no_space(size, room)


def _build(plan: ServerPlan, cluster: LocalCluster, port: int, *, tcp: bool, detached: bool) -> None:
    _check_room(cluster, CLUSTER_SIZE, _room_for(None))
    cluster.initdb()
    cluster.start(port, tcp=tcp, detached=detached)
    try:
        create_template(_local(cluster), TEMPLATE, plan.sources)
    except psycopg.Error as exc:
        if out_of_space(exc):
            raise cluster.no_space() from None
        raise ProvisioningError(f"could not create the template database: {one_line(exc)}") from None


def _check_template(cluster: LocalCluster) -> None:
    with _local(cluster).admin_connect(retry_for=0) as conn:
        row: Any = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone()
    if row is None:
        raise ProvisioningError(f"the cached cluster has no {TEMPLATE} database")
