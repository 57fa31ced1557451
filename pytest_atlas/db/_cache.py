"""The cache of initialised, schema-loaded clusters.

An entry is a stopped (cleanly shut down) cluster whose ``atlas_template`` database already holds
the schema. Its key covers everything that shapes the files: the cache format, the PostgreSQL
version and binaries, the initdb arguments, and the content of ``schema.sql`` and every extra SQL
file. Any change makes a new key, so a stale entry is never used.

Ownership: the cache belongs to the invoking user (folders 0700) and the server account can
neither read nor change it. A stopped cluster is stored by copying only its folders and regular
files, through descriptors, never through a link (:func:`~._fs.copy_regular_tree`): nothing the
server account planted in its data folder travels into the cache. A hit copies the entry into the
run folder (``cp -a``, reflinks where the file system has them) and then hands the copy to the
server account.

Damage: each entry carries a manifest (size and CRC-32 of every file) written when it is stored.
Before a run starts, the copy its hit would use is compared with it (files and sizes,
:meth:`ClusterCache.check`); the CRCs are checked whenever an entry is read from the persistent
tier (which is when a disk or a crash could have damaged it), in a thread while the copy runs. A
damaged entry is evicted and rebuilt, and the report header says so. The clusters are initialised
with data page checksums, so a page damaged in place is reported by PostgreSQL, not silently read.

Concurrency and clean-up: one lock file per key (``<key>.lock``, an ``flock``): lookups and copies
hold it shared, builds and evictions exclusive, so concurrent runs and xdist workers build an entry
once and never remove one that is being copied. Entries are written to ``.<key>.<token>.tmp`` and
renamed into place; a run killed while storing leaves that folder behind, and the next run removes
it once it can take the key's lock (its owner is then gone).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_atlas.db._binaries import PgInstall
from pytest_atlas.db._fs import (
    FileLock,
    FileRecord,
    UnsafePathError,
    copy_regular_tree,
    create_private_file,
    digest_file,
    ensure_dir,
    free_bytes,
    remove_tree,
    size_text,
)

__all__ = [
    "CACHE_FORMAT",
    "HOT_BUDGET",
    "CacheEntry",
    "CacheUnavailable",
    "ClusterCache",
    "DamagedEntry",
    "EntryInfo",
    "children",
    "copy_tree",
    "default_cache_dir",
    "enforce_budget",
    "hot_usage",
    "is_tmpfs",
    "largest_database",
    "make_room",
    "prune_tiers",
]

#: bump when the layout of an entry or the way clusters are initialised changes
CACHE_FORMAT = "4"
#: entries kept (least recently used ones beyond this are removed); each is ~35 MB
MAX_ENTRIES = 6
#: the most bytes the hot tiers of one user may hold together in memory (two entries of ~35 MB)
HOT_BUDGET = 96 << 20
_MARKER = "atlas-cache.json"
#: files of a stopped cluster that are not part of an entry
_NOT_CACHED = frozenset({"postmaster.pid", "postmaster.opts"})


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pytest-atlas"


def is_tmpfs(path: Path) -> bool:
    """Whether ``path`` lies on a memory file system (tmpfs/ramfs), from /proc/mounts."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    target = str(path.resolve())
    best, kind = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind in ("tmpfs", "ramfs")


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder tree of ours into the new path ``dst``, keeping modes (GNU cp when present:
    ~1.5x copytree; links are copied as links, never followed). ``dst`` must not exist: what a
    failed copy leaves there (a partial copy) is then provably this copy's, and is removed."""
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    cp = shutil.which("cp")
    if cp is not None:
        result = subprocess.run(
            [cp, "-a", "--reflink=auto", "--no-dereference", str(src), str(dst)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return
        remove_tree(dst)
        detail = (result.stderr or "").strip().splitlines()
        raise OSError(f"cp -a {src} {dst} failed: {detail[-1] if detail else result.returncode}")
    try:
        shutil.copytree(src, dst, symlinks=True)
    except BaseException:
        remove_tree(dst)
        raise


class CacheUnavailable(Exception):
    """The cache folder cannot be used (not writable, or unsafe); the run goes on without a cache."""


class DamagedEntry(Exception):
    """A cache entry does not match its manifest (a file missing, truncated or changed)."""


@dataclass(frozen=True)
class CacheEntry:
    """A complete entry: its cluster folder and manifest."""

    key: str
    pgdata: Path
    manifest: dict[str, FileRecord]
    #: True when the entry is on the persistent tier (its CRCs are checked when it is read)
    persistent: bool

    @property
    def size(self) -> int:
        """The bytes of its files (what a copy of it takes)."""
        return sum(record.size for record in self.manifest.values())


@dataclass(frozen=True)
class EntryInfo:
    """One complete entry as reports see it: its key, folder, size in bytes and time of last use."""

    key: str
    path: Path
    size: int
    used: float


class ClusterCache:
    """Entries under ``root``: ``<key>/pgdata`` plus ``<key>/atlas-cache.json`` (written last).

    ``hot`` is an optional second cache on a tmpfs (next to the servers' data): an entry found only
    in ``root`` is copied there once (after its CRCs are checked), and later runs copy from memory
    (~40 ms instead of 60-100 ms from the disk's page cache). ``root`` stays the persistent tier
    that survives reboots.
    """

    def __init__(
        self, root: Path, *, max_entries: int = 0, hot: ClusterCache | None = None, persistent: bool = True
    ) -> None:
        self.root = root
        self.max_entries = max_entries or MAX_ENTRIES
        self.persistent: bool = persistent
        self.hot = hot
        if hot is not None:
            hot.persistent = False
        #: on a hot tier: the most bytes all hot tiers beside it may hold together (0: no bound)
        self.budget = 0
        self._made = False
        #: what clean-up found (stale temporary folders removed), for the header
        self.cleaned: list[str] = []
        #: the entry :meth:`check` found usable last (on this tier or the hot one), for the header
        self.checked: CacheEntry | None = None
        #: with a hot tier on the file system of the run's data: the bytes the run's server needs
        #: there besides its copy of the cluster (WAL, test databases). A copy into memory is made
        #: only when it leaves that much room (and room for the run's copy); None: no such check
        self.hot_room: int | None = None
        #: why an entry was not copied into memory in this run (for the server's cache note), or ""
        self.hot_skipped = ""

    def prepare(self) -> None:
        """Create and check the cache folder (ours, 0700, no link, not writable by others), check
        that it is writable, and remove what interrupted stores left. CacheUnavailable says why not."""
        try:
            ensure_dir(self.root, 0o700, parents=True, parent_mode=0o700)
            self._made = True
            probe = self.root / f".probe-{secrets.token_hex(4)}"
            create_private_file(probe)
            probe.unlink()
        except UnsafePathError as exc:
            raise CacheUnavailable(f"cache folder refused: {exc.problem}; how to fix: {exc.hint}") from None
        except OSError as exc:
            raise CacheUnavailable(f"cache folder {self.root} is not writable ({exc.strerror or exc})") from None
        self.cleaned = self.reap_temporary()

    @staticmethod
    def key(install: PgInstall, settings_text: str, schema_fingerprint: str) -> str:
        digest = hashlib.sha256()
        for part in (CACHE_FORMAT, install.version, str(install.bindir), settings_text, schema_fingerprint):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return f"pg{install.version}-{digest.hexdigest()[:20]}"

    def _lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    @contextlib.contextmanager
    def lock(self, key: str, *, shared: bool = False) -> Iterator[None]:
        """Hold the lock of one key: shared to look up and copy, exclusive to build or evict.

        Another run may remove this whole folder meanwhile (an in-memory tier nobody held a lock in
        is pruned): then the folder is made again and the lock taken there."""
        for _attempt in range(10):
            if not self._made:
                ensure_dir(self.root, 0o700, parents=True, parent_mode=0o700)
                self._made = True
            try:
                lock = FileLock.acquire(self._lock_path(key), shared=shared)
            except FileNotFoundError:
                self._made = False
                continue
            break
        else:
            raise CacheUnavailable(f"{self.root} keeps disappearing: another run removes it while this one uses it")
        assert lock is not None
        try:
            yield
        finally:
            lock.release()

    # -- reading -------------------------------------------------------------------------------------

    def lookup(self, key: str) -> CacheEntry | None:
        """The complete entry for ``key`` (from the hot tier when it has or can take one), or None.
        Call with the key's lock held. A damaged entry raises DamagedEntry."""
        if self.hot is not None:
            with self.hot.lock(key, shared=True):
                found = self.hot._lookup(key)
            if found is not None:
                return found
        found = self._lookup(key)
        if found is not None and self.hot is not None and self._hot_has_room(found, run_copy=True):
            with contextlib.suppress(OSError, DamagedEntry, UnsafePathError):
                verify_digests(found)  # the disk copy is read anyway: check it before it spreads
                with self.hot.lock(key):
                    self.hot._store_entry(found)
                    promoted = self.hot._lookup(key)
                if promoted is not None:
                    return promoted  # its CRCs were checked just now
        return found

    def _lookup(self, key: str) -> CacheEntry | None:
        entry = self.root / key
        try:
            marker = json.loads((entry / _MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pgdata = entry / "pgdata"
        if not isinstance(marker, dict) or marker.get("key") != key or not isinstance(marker.get("files"), dict):
            return None
        manifest = {name: FileRecord(int(size), int(crc)) for name, (size, crc) in marker["files"].items()}
        with contextlib.suppress(OSError):
            os.utime(entry / _MARKER)  # last use, for pruning
        return CacheEntry(key, pgdata, manifest, self.persistent)

    def check(self, key: str) -> tuple[bool, str | None]:
        """Look for damage in the copy a hit would use, before anything starts (sizes only: cheap
        enough for the report header): a damaged copy on the hot tier is removed (the persistent
        entry is copied again), a damaged persistent entry is removed (it is rebuilt). Returns
        whether a usable entry is there, and what was found, or None; the usable entry is kept in
        :attr:`checked` (the header names the copy a hit is served from)."""
        found: str | None = None
        self.checked = None
        for tier in (self.hot, self):
            if tier is None:
                continue
            with tier.lock(key, shared=True):
                entry = tier._lookup(key)
                damage = None
                if entry is not None:
                    try:
                        verify_sizes(entry.manifest, entry.pgdata)
                    except DamagedEntry as exc:
                        damage = str(exc)
            if entry is None:
                continue
            if damage is None:
                self.checked = entry
                return True, found
            if tier is self:
                with self.lock(key):
                    self.evict(key)
                return False, f"damaged entry removed, rebuilt on first use ({damage})"
            with tier.lock(key):
                tier._evict(key)
            found = f"damaged copy in memory removed, copied again from the cache ({damage})"
        return False, found

    # -- writing -------------------------------------------------------------------------------------

    def store(self, key: str, pgdata: Path, *, owner: int) -> None:
        """Copy the stopped cluster ``pgdata`` (whose files belong to uid ``owner``) into the cache as
        the entry for ``key``, with its manifest. Call with the key's exclusive lock held."""
        tmp = self.root / f".{key}.{secrets.token_hex(4)}.tmp"
        os.mkdir(tmp, 0o700)
        try:
            records = copy_regular_tree(pgdata, tmp / "pgdata", owner=owner, skip=_NOT_CACHED)
            _write_marker(tmp, key, records)
            self._evict(key)
            os.rename(tmp, self.root / key)
        finally:
            remove_tree(tmp)
        self.prune(keep=key)
        if self.hot is not None:
            stored = self._lookup(key)
            if stored is not None and self._hot_has_room(stored, run_copy=False):
                with contextlib.suppress(OSError), self.hot.lock(key):
                    self.hot._store_entry(stored)

    def _hot_has_room(self, entry: CacheEntry, *, run_copy: bool) -> bool:
        """Whether a copy of ``entry`` into memory leaves the run's server its room (see
        :attr:`hot_room`): the copy, the run's own copy when it is still to be made (``run_copy``),
        and what the server needs besides. If not, :attr:`hot_skipped` says why."""
        if self.hot is None or self.hot_room is None:
            return True
        free = free_bytes(self.hot.root)
        needed = entry.size * (2 if run_copy else 1) + self.hot_room
        if free is None or free >= needed:
            return True
        self.hot_skipped = (
            f"not copied into memory: {self.hot.root} has {size_text(free)} free, the copy "
            f"({size_text(entry.size)}) and this run's server need ~{size_text(needed)}"
        )
        return False

    def _store_entry(self, entry: CacheEntry) -> None:
        """Copy a complete entry of another tier (ours, already checked) into this one."""
        ensure_dir(self.root, 0o700, parents=True, parent_mode=0o700)
        tmp = self.root / f".{entry.key}.{secrets.token_hex(4)}.tmp"
        os.mkdir(tmp, 0o700)
        try:
            copy_tree(entry.pgdata, tmp / "pgdata")
            _write_marker(tmp, entry.key, entry.manifest)
            self._evict(entry.key)
            os.rename(tmp, self.root / entry.key)
        finally:
            remove_tree(tmp)
        self.prune(keep=entry.key)
        if self.budget:
            enforce_budget(self.root.parent, self.budget, keep=self.root / entry.key)

    def prune(self, *, keep: str) -> None:
        """Remove the least recently used entries beyond ``max_entries`` (never ``keep``, never one
        another run is using: its lock must be free)."""
        entries: list[tuple[float, str]] = []
        for marker in self.root.glob(f"*/{_MARKER}"):
            with contextlib.suppress(OSError):
                entries.append((marker.stat().st_mtime, marker.parent.name))
        entries.sort(reverse=True)
        for _mtime, name in entries[self.max_entries :]:
            if name == keep:
                continue
            lock = FileLock.acquire(self._lock_path(name), blocking=False)
            if lock is None:
                continue
            try:
                self._evict(name)
                self._lock_path(name).unlink(missing_ok=True)  # gone with a tier another run removed
            finally:
                lock.release()
            if self.hot is not None:
                self.hot.discard(name)  # its copy in memory goes with it

    def discard(self, key: str) -> bool:
        """Remove the entry for ``key`` and its lock file for good, unless a run is using it (its
        lock is held). True when nothing of it is left."""
        if not os.path.lexists(self.root / key) and not os.path.lexists(self._lock_path(key)):
            return True
        try:
            lock = FileLock.acquire(self._lock_path(key), blocking=False)
        except FileNotFoundError:  # another run removed the whole tier meanwhile: nothing is left
            return True
        if lock is None:
            return False
        try:
            self._evict(key)
            self._lock_path(key).unlink(missing_ok=True)  # gone with a tier another run removed
        finally:
            lock.release()
        return True

    def entries(self) -> list[EntryInfo]:
        """The complete entries of this tier, most recently used first (for pruning and reports)."""
        found: list[EntryInfo] = []
        for marker in self.root.glob(f"*/{_MARKER}"):
            try:
                data = json.loads(marker.read_text(encoding="utf-8"))
                size = sum(int(record[0]) for record in data["files"].values())
                used = marker.stat().st_mtime
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                continue
            found.append(EntryInfo(marker.parent.name, marker.parent, size, used))
        found.sort(key=lambda info: info.used, reverse=True)
        return found

    def evict(self, key: str) -> None:
        """Remove the entry for ``key`` from both tiers (a damaged one, before rebuilding it). Call
        with the key's exclusive lock held."""
        if self.hot is not None:
            with self.hot.lock(key):
                self.hot._evict(key)
        self._evict(key)

    def _evict(self, key: str) -> None:
        entry = self.root / key
        if os.path.lexists(entry):
            trash = self.root / f".{key}.{secrets.token_hex(4)}.trash"
            try:
                os.rename(entry, trash)
            except OSError:
                trash = entry
            remove_tree(trash)

    def remove_all(self) -> bool:
        """Remove this whole cache folder if no run is using any of its entries (an old hot tier)."""
        locks: list[FileLock] = []
        try:
            for lock_path in self.root.glob("*.lock"):
                lock = FileLock.acquire(lock_path, blocking=False)
                if lock is None:
                    return False
                locks.append(lock)
            remove_tree(self.root)
            return True
        finally:
            for lock in locks:
                lock.release()

    def reap_temporary(self) -> list[str]:
        """Remove temporary and trash folders of stores and evictions whose run is gone (the key's
        lock is free), and lock files of keys that have no entry any more."""
        removed: list[str] = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return removed
        for name in names:
            path = self.root / name
            if name.startswith(".") and name.endswith((".tmp", ".trash")) and name.count(".") >= 3:
                key = name[1:].rsplit(".", 2)[0]
                try:
                    lock = FileLock.acquire(self._lock_path(key), blocking=False)
                except FileNotFoundError:  # another run removed the whole tier meanwhile
                    return removed
                if lock is None:
                    continue  # a store or an eviction of that key is running
                try:
                    if os.path.isdir(path) and not os.path.islink(path):
                        remove_tree(path)
                        removed.append(str(path))
                finally:
                    lock.release()
            elif name.endswith(".lock") and not os.path.lexists(self.root / name[: -len(".lock")]):
                lock = FileLock.acquire(path, blocking=False, create=False)
                if lock is None:
                    continue
                try:
                    path.unlink(missing_ok=True)
                finally:
                    lock.release()
        return removed


def _write_marker(folder: Path, key: str, records: dict[str, FileRecord]) -> None:
    files = {name: [record.size, record.crc] for name, record in sorted(records.items())}
    marker = {"key": key, "created": time.time(), "files": files}
    create_private_file(folder / _MARKER, json.dumps(marker).encode("utf-8"))


def verify_sizes(manifest: dict[str, FileRecord], pgdata: Path) -> None:
    """Raise DamagedEntry unless ``pgdata`` holds exactly the manifest's files, with their sizes."""
    found: dict[str, int] = {}
    root = str(pgdata)
    for folder, _dirs, files in os.walk(pgdata):
        rel = folder[len(root) + 1 :]
        for name in files:
            path = os.path.join(folder, name)
            found[f"{rel}/{name}" if rel else name] = os.lstat(path).st_size
    missing = sorted(set(manifest) - set(found))
    if missing:
        raise DamagedEntry(f"{pgdata / missing[0]} is missing ({len(missing)} file(s) missing)")
    extra = sorted(set(found) - set(manifest))
    if extra:
        raise DamagedEntry(f"{pgdata / extra[0]} is not in the entry's manifest")
    for name, record in manifest.items():
        if found[name] != record.size:
            raise DamagedEntry(f"{pgdata / name} has {found[name]} bytes, the manifest says {record.size}")


def verify_digests(entry: CacheEntry) -> None:
    """Raise DamagedEntry unless every file of the entry has the size and CRC-32 of its manifest."""
    verify_sizes(entry.manifest, entry.pgdata)
    for name, record in entry.manifest.items():
        actual = digest_file(entry.pgdata / name)
        if actual != record:
            raise DamagedEntry(f"{entry.pgdata / name} has changed since it was cached (CRC-32 differs)")


def copy_entry(entry: CacheEntry, dst: Path) -> None:
    """Copy an entry into the new folder ``dst``, checking it on the way: the CRCs of the source
    (in a thread, while ``cp`` runs, so a warm start pays little for it) and, for the persistent
    tier, the copy's sizes. Both tiers are checked: a page changed in place keeps its file's size
    (and a zeroed page passes PostgreSQL's page checksums as a new page)."""
    failure: list[BaseException] = []

    def check() -> None:
        try:
            verify_digests(entry)
        except (DamagedEntry, OSError) as exc:
            failure.append(exc)

    checker = threading.Thread(target=check, name="pytest-atlas cache check", daemon=True)
    checker.start()
    try:
        copy_tree(entry.pgdata, dst)
        if entry.persistent:
            verify_sizes(entry.manifest, dst)
    finally:
        checker.join()
    if failure:
        raise DamagedEntry(str(failure[0]))


def largest_database(manifest: dict[str, FileRecord]) -> int:
    """The bytes of the largest database of a cluster (``base/<oid>/``): about what a clone of its
    template takes (the template holds the schema, so it is the largest)."""
    sizes: dict[str, int] = {}
    for name, record in manifest.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "base":
            sizes[parts[1]] = sizes.get(parts[1], 0) + record.size
    return max(sizes.values(), default=0)


def make_room(folder: Path, needed: int) -> list[EntryInfo]:
    """Remove copies in memory (entries of the hot tiers under ``folder``), least recently used
    first, until the file system has ``needed`` bytes free; never one a run is using (its lock is
    held). They are copies of the persistent cache, made by the plugin (real folders of ours, see
    :meth:`ClusterCache.discard`). Returns those removed."""
    removed: list[EntryInfo] = []
    for info in reversed(hot_usage(folder)):
        free = free_bytes(folder)
        if free is None or free >= needed:
            break
        if ClusterCache(info.path.parent).discard(info.key):
            removed.append(info)
    return removed


def prune_tiers(folder: Path, *, keep: str, max_tiers: int = 3) -> None:
    """Keep the ``max_tiers`` most recently used hot tiers under ``folder`` (one per persistent cache
    folder that was used), and ``keep``; remove the others (those no run is using)."""
    tiers: list[tuple[float, Path]] = []
    for tier in folder.glob("*"):
        if tier.is_dir() and not tier.is_symlink() and tier.name != keep:
            used = [marker.stat().st_mtime for marker in tier.glob(f"*/{_MARKER}")]
            tiers.append((max(used, default=0.0), tier))
    tiers.sort(reverse=True)
    for _used, tier in tiers[max(max_tiers - 1, 0) :]:
        ClusterCache(tier).remove_all()


def megabytes(size: int) -> str:
    """A size as reports show it ("38 MB")."""
    return f"{size / (1 << 20):.0f} MB"


def children(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; none when another run removed it meanwhile."""
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def hot_usage(folder: Path) -> list[EntryInfo]:
    """Every entry of every hot tier under ``folder`` (what the hot cache holds in memory)."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = [
        info
        for tier in children(folder)
        if tier.is_dir() and not tier.is_symlink()
        for info in ClusterCache(tier).entries()
    ]
    found.sort(key=lambda info: info.used, reverse=True)
    return found


def enforce_budget(folder: Path, budget: int, *, keep: Path | None = None) -> None:
    """Remove the least recently used entries of the hot tiers under ``folder`` (never ``keep`` nor the
    most recently used one, never one a run is using) until they hold at most ``budget`` bytes."""
    entries = hot_usage(folder)
    total = sum(info.size for info in entries)
    for info in reversed(entries[1:]):
        if total <= budget:
            return
        if info.path == keep:
            continue
        if ClusterCache(info.path.parent).discard(info.key):
            total -= info.size
