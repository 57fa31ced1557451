"""The server of a test run that the plugin starts: planned (binaries, account, data folder, cache
entry) without starting anything, then started from the cache or from initdb.

:func:`plan_server` tells what a run would do (for the report header); :func:`start_server` does
it. An existing server given by DSN is attached in :mod:`._external`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pytest_atlas._config import AtlasSettings
from pytest_atlas._dsn import Dsn, passfile_line
from pytest_atlas.db._access import new_password, set_password
from pytest_atlas.db._account import ServerAccount, current_user_name, server_account
from pytest_atlas.db._binaries import PgInstall, find_install, reachable_install
from pytest_atlas.db._cache import (
    HOT_BUDGET,
    CacheUnavailable,
    ClusterCache,
    DamagedEntry,
    copy_entry,
    default_cache_dir,
    enforce_budget,
    hot_usage,
    is_tmpfs,
    megabytes,
    prune_tiers,
)
from pytest_atlas.db._cluster import (
    CLUSTER_SIZE,
    INITDB_ARGS,
    NO_SPACE_FIX,
    SUPERUSER,
    LocalCluster,
    PortInUseError,
    out_of_space,
)
from pytest_atlas.db._connect import one_line, passfile_first
from pytest_atlas.db._external import probe_server
from pytest_atlas.db._fs import NoSpaceError, UnsafePathError, ensure_dir, free_bytes, no_space, remove_tree
from pytest_atlas.db._postgres import AtlasPostgres, create_template
from pytest_atlas.db._reset import isolation_header
from pytest_atlas.db._runtime import Base, RunDir, choose_base, reap_stale
from pytest_atlas.errors import ProvisioningError
from pytest_atlas.schema import SqlSource, fingerprint

__all__ = ["TEMPLATE", "ServerPlan", "plan_server", "start_server"]

#: the template database of a cached cluster (schema.sql + extra SQL already loaded)
TEMPLATE = "atlas_template"

#: free space a start from the cache needs besides the entry's files (the server's first WAL, its
#: pid and socket files)
_START_ROOM = 8 << 20

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
        if self.cache is not None and self.cache.hot is not None:
            folder = self.cache.hot.root.parent
            held = hot_usage(folder)
            entries = f"{len(held)} entr{'y' if len(held) == 1 else 'ies'}"
            size = megabytes(sum(info.size for info in held))
            lines.append(f"atlas: hot cache in memory: {size} in {entries} ({folder}), at most {megabytes(HOT_BUDGET)}")
        if self.base.note:
            lines.append(f"atlas: data folder: {self.base.note}")
        return [*lines, isolation]


def plan_server(settings: AtlasSettings, sources: tuple[SqlSource, ...]) -> ServerPlan:
    """Decide where the server comes from (existing DSN, or which binaries, account, data folder and
    cache entry). Creates the data and cache folders (checked) but starts nothing."""
    plan = ServerPlan(settings=settings, sources=sources)
    if settings.dsn is not None:
        plan.dsn = settings.dsn
        plan.dsn_source = settings.sources.get("dsn", "settings")
        return plan
    plan.install = find_install(settings.pg_bin)
    plan.account = server_account(settings.run_as)
    plan.base = choose_base(settings.data_dir, plan.account)
    if settings.cache:
        cache = ClusterCache(settings.cache_dir or default_cache_dir())
        plan.cache_key = key = ClusterCache.key(plan.install, _SETTINGS_TEXT, fingerprint(sources))
        try:
            cache.prepare()
        except CacheUnavailable as exc:
            plan.cache_state = f"unavailable: {exc}; starting without a cache"
            return plan
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
        plan.cache_state = damage if damage and not hit else f"{'hit' if hit else 'miss'} ({_where(cache, key)})"
        if damage and hit:
            plan.cache_state += f"; {damage}"
        if cache.cleaned:
            plan.cache_state += f"; removed {len(cache.cleaned)} folder(s) of interrupted cache stores"
    return plan


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
        run = RunDir.create(base.path, account, keep=settings.keep_db)
    except OSError as exc:
        if out_of_space(exc):
            raise no_space(base.path, CLUSTER_SIZE, NO_SPACE_FIX) from None
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
        return outcome
    with cache.lock(key):
        if outcome is None:  # a miss: another run may have built it while we waited for the lock
            outcome = _from_cache(cache, key, cluster, port, tcp=tcp, detached=detached)
            if outcome == "hit":
                return outcome
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
    return note


def _from_cache(
    cache: ClusterCache, key: str, cluster: LocalCluster, port: int, *, tcp: bool, detached: bool
) -> str | None:
    """Start ``cluster`` from the cache entry: "hit", None when there is no entry, else why the
    entry is unusable (it is damaged)."""
    pgdata = cluster.run.pgdata
    needed = 0
    try:
        entry = cache.lookup(key)
        if entry is None:
            return None
        # the copy, and room for the server to start: a folder without it is full, the entry is fine
        needed = sum(record.size for record in entry.manifest.values()) + _START_ROOM
        free = free_bytes(cluster.run.path)
        if free is not None and free < needed:
            raise cluster.no_space(needed)
        copy_entry(entry, pgdata)
        cluster.run.hand_over(pgdata)
        cluster.start(port, tcp=tcp, detached=detached)
        _check_template(cluster)
        return "hit"
    except PortInUseError:
        raise  # the user's port, not the cache, is the problem
    except (DamagedEntry, ProvisioningError, OSError, psycopg.Error) as exc:
        cluster.stop()
        remove_tree(pgdata)
        if out_of_space(exc):  # the data folder is full, not the entry damaged: it is kept
            raise exc if isinstance(exc, NoSpaceError) else cluster.no_space(needed or CLUSTER_SIZE) from None
        return one_line(exc)


def _build(plan: ServerPlan, cluster: LocalCluster, port: int, *, tcp: bool, detached: bool) -> None:
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
