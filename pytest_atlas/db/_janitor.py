"""Looking after what runs leave on purpose, without pytest: the cluster cache (``cache info``,
``cache clear``) and what ``--atlas-keep-db`` kept (``kept``, ``kept --remove``). Used by
``python -m pytest_atlas``.

Only what the plugin provably made is touched: folders of the invoking user's base folder
(``pytest-atlas-v2-<uid>``, ours, not a link) marked ``kept``, whose run is over (their lock is
free); cache entries no run is using (their lock is free); on an existing server, databases that
carry the plugin's ``keep`` label and whose run is over (its advisory lock is free).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_atlas._dsn import Dsn
from pytest_atlas._table import render_table
from pytest_atlas.db._cache import ClusterCache, EntryInfo, children, default_cache_dir, hot_usage, megabytes
from pytest_atlas.db._connect import connect_clearly
from pytest_atlas.db._external import connector, drop_kept, list_kept
from pytest_atlas.db._fs import FileLock, UnsafePathError, check_parent, create_private_file, read_regular, remove_tree
from pytest_atlas.db._processes import find_servers, stop_servers
from pytest_atlas.db._runtime import BASE_NAME, private_bases

__all__ = [
    "KEPT_MANIFEST",
    "CacheReport",
    "KeptRun",
    "base_folders",
    "cache_report",
    "clear_cache",
    "clear_cache_lines",
    "drop_kept_databases",
    "kept_databases",
    "kept_runs",
    "remove_kept",
    "write_kept_manifest",
]

#: the file in a kept run's folder that maps each kept database to the test that used it
KEPT_MANIFEST = "kept.json"
_SHM = Path("/dev/shm")


def base_folders(data_dir: Path | None = None) -> list[Path]:
    """The invoking user's base folders that exist (``--atlas-data-dir``, else /dev/shm and the
    temp folders, and private folders of runs that fell back), each a real folder of ours: never
    created here."""
    name = BASE_NAME.format(uid=os.geteuid())
    parents = [data_dir] if data_dir is not None else _default_parents()
    found: list[Path] = []
    for parent in dict.fromkeys(parents):
        path = parent / name
        if _is_base(path) and path not in found:
            found.append(path)
    if data_dir is None:  # and the private folders of runs whose usual one was refused
        found += [path for path in private_bases(parents) if path not in found]
    return found


def _default_parents() -> list[Path]:
    return [_SHM, Path(tempfile.gettempdir()), Path("/tmp")]


def _is_base(path: Path) -> bool:
    """Whether ``path`` is a base folder of the invoking user's (``pytest-atlas-v2-<uid>``, or a
    private one, ``pytest-atlas-v2-<uid>-*``): a real folder of ours nobody else may write in."""
    name = BASE_NAME.format(uid=os.geteuid())
    if path.name != name and not path.name.startswith(name + "-"):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _held_safely(base: Path) -> bool:
    """Whether nobody else can switch what the path ``base`` names: no folder on the way there is
    another account's link, and each is ours or root's and not writable by others unless sticky
    (a base folder named on the command line may lie anywhere)."""
    try:
        check_parent(base)
    except (UnsafePathError, OSError):
        return False
    return True


def _ours(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


# --------------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------------


@dataclass
class CacheReport:
    """What the cache holds: the persistent entries and the copies in memory."""

    root: Path
    entries: list[EntryInfo]
    hot: list[EntryInfo]

    def lines(self) -> list[str]:
        out = [f"persistent cache: {self.root} ({megabytes(sum(e.size for e in self.entries))} in {len(self.entries)})"]
        rows = [["tier", "entry", "size", "last used"]]
        rows += [["disk", e.key, megabytes(e.size), _when(e.used)] for e in self.entries]
        rows += [["memory", f"{e.path.parent.name}/{e.key}", megabytes(e.size), _when(e.used)] for e in self.hot]
        if len(rows) > 1:
            out.append(render_table(rows, right=[2]))
        out.append(f"hot cache in memory: {megabytes(sum(e.size for e in self.hot))} in {len(self.hot)} entries")
        return out


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def cache_report(cache_dir: Path | None = None, data_dir: Path | None = None) -> CacheReport:
    root = cache_dir or default_cache_dir()
    entries = ClusterCache(root).entries() if _ours(root) else []
    hot = [info for base in base_folders(data_dir) for info in hot_usage(base / "cache")]
    return CacheReport(root, entries, hot)


def clear_cache(cache_dir: Path | None = None, data_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """Remove every cache entry (both tiers) no run is using, with its lock file, and what
    interrupted stores left. Returns (removed, left in use)."""
    removed: list[str] = []
    busy: list[str] = []
    tiers: list[ClusterCache] = []
    root = cache_dir or default_cache_dir()
    if _ours(root):
        tiers.append(ClusterCache(root))
    for base in base_folders(data_dir):
        folder = base / "cache"
        if _ours(folder):
            tiers += [ClusterCache(tier) for tier in children(folder) if _ours(tier)]
    for tier in tiers:
        for info in tier.entries():
            (removed if tier.discard(info.key) else busy).append(str(info.path))
        removed += tier.reap_temporary()
    return removed, busy


def clear_cache_lines(cache_dir: Path | None = None, data_dir: Path | None = None) -> tuple[list[str], int]:
    """:func:`clear_cache` as printed lines, and the exit status (1 when an entry was in use)."""
    removed, busy = clear_cache(cache_dir, data_dir)
    lines = [f"removed {path}" for path in removed] + [f"left {path} (a run is using it)" for path in busy]
    lines.append(f"{len(removed)} removed, {len(busy)} in use")
    return lines, 1 if busy else 0


# --------------------------------------------------------------------------------------------------
# what --atlas-keep-db kept
# --------------------------------------------------------------------------------------------------


@dataclass
class KeptRun:
    """A kept run folder: its server (if it still runs) and the databases it kept."""

    path: Path
    running: bool
    #: [test id, database, connect command] per kept database
    rows: list[list[str]] = field(default_factory=list)


def write_kept_manifest(run_dir: Path, rows: list[list[str]]) -> None:
    """Record, in a kept run's folder, which test used which database and how to connect."""
    path = run_dir / KEPT_MANIFEST
    if not os.path.lexists(path):
        create_private_file(path, json.dumps(rows).encode("utf-8"))


def kept_runs(data_dir: Path | None = None) -> list[KeptRun]:
    return [run for base in base_folders(data_dir) for run in _kept_in(base)]


def _kept_in(base: Path) -> list[KeptRun]:
    found: list[KeptRun] = []
    for entry in children(base):
        if not entry.name.startswith(("run-", "dsn-")) or not _ours(entry) or not os.path.lexists(entry / "kept"):
            continue
        rows: list[list[str]] = []
        text = read_regular(entry / KEPT_MANIFEST)
        if text:
            try:
                data: Any = json.loads(text)
                rows = [[str(cell) for cell in row] for row in data if isinstance(row, list)]
            except ValueError:
                rows = []
        found.append(KeptRun(entry, bool(find_servers(entry)), rows))
    return found


def remove_kept(data_dir: Path | None = None, only: Sequence[Path] = ()) -> tuple[list[str], list[str]]:
    """Stop and remove every kept server folder whose run is over (with ``only``, just those
    folders). Returns (removed, left alone).

    Only processes :func:`~._processes.find_servers` proves to be the folder's servers are stopped
    (all of them: also one the server's account started again there); ``postmaster.pid`` is the
    server account's to write, so the id it holds is never used."""
    if only:
        wanted = [Path(os.path.abspath(path)) for path in only]
        bases = [base for base in dict.fromkeys(path.parent for path in wanted) if _is_base(base)]
        unsafe = {base for base in bases if not _held_safely(base)}
        runs = [run for base in bases if base not in unsafe for run in _kept_in(base)]
        runs = [run for run in runs if run.path in wanted]
        named = {run.path for run in runs}
        missing = [
            f"{path} (named through a link or folder another account could change: give its real path)"
            if path.parent in unsafe
            else f"{path} (not a kept server folder of yours)"
            for path in wanted
            if path not in named
        ]
    else:
        runs, missing = kept_runs(data_dir), []
    removed: list[str] = []
    left: list[str] = list(missing)
    for run in runs:
        lock = FileLock.try_acquire(run.path / "lock")
        if lock is None:
            left.append(f"{run.path} (its run is still going)")
            continue
        try:
            stopped = stop_servers(run.path)
            remove_tree(run.path)
        finally:
            lock.release()
        removed.append(f"{run.path}{' (stopped its server)' if stopped else ''}")
    return removed, left


def kept_databases(dsn: Dsn) -> list[list[str]]:
    """On an existing server: the databases runs kept there, ``[database, run, state, owner]``."""
    with connect_clearly(dsn.reveal(), shown=dsn.redacted, autocommit=True) as conn:
        return list_kept(conn)


def drop_kept_databases(dsn: Dsn) -> tuple[list[str], list[str]]:
    """On an existing server: drop every database a run that is over kept (``--atlas-keep-db``
    labels them) or left behind (a dead run's, which the next run's start would drop). Returns
    (dropped, left alone with why)."""
    with connect_clearly(dsn.reveal(), shown=dsn.redacted, autocommit=True) as conn:
        return drop_kept(conn, conn.info.server_version, connect=connector(dsn))
