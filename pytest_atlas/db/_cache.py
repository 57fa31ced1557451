"""The cache of initialised, schema-loaded clusters.

An entry is a stopped (cleanly shut down) cluster whose ``atlas_template`` database already holds
the schema. Its key covers everything that shapes the files: the cache format, the PostgreSQL
version and binaries, the initdb arguments and server settings, and the content of ``schema.sql``
and every extra SQL file. Any change makes a new key, so a stale entry is never used.

A cache hit copies the entry (``cp -a``, reflinks where the file system has them) instead of
running initdb and loading the schema. Entries are written to a temporary folder and renamed into
place, under a file lock, so concurrent runs and xdist workers build each entry once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pytest_atlas.db._binaries import PgInstall

__all__ = ["CACHE_FORMAT", "ClusterCache", "copy_tree", "default_cache_dir", "is_tmpfs", "prune_tiers"]

#: bump when the layout of an entry or the way clusters are initialised changes
CACHE_FORMAT = "3"
#: entries kept (least recently used ones beyond this are removed); each is ~30 MB
MAX_ENTRIES = 6
_MARKER = "atlas-cache.json"


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
    """Copy a cluster folder preserving owners and modes (GNU cp when present: ~1.5x copytree)."""
    cp = shutil.which("cp")
    if cp is not None:
        result = subprocess.run(
            [cp, "-a", "--reflink=auto", str(src), str(dst)], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return
        shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)
    st = src.stat()
    with contextlib.suppress(PermissionError):
        for root, dirs, files in os.walk(dst):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.lchown(name, st.st_uid, st.st_gid)


def prune_tiers(folder: Path, *, keep: str, max_tiers: int = 3) -> None:
    """Keep the ``max_tiers`` most recently used hot tiers under ``folder`` (one per persistent cache
    folder that was used), and ``keep``; remove the others."""
    tiers: list[tuple[float, Path]] = []
    for tier in folder.glob("*"):
        if tier.is_dir() and tier.name != keep:
            used = [marker.stat().st_mtime for marker in tier.glob(f"*/{_MARKER}")]
            tiers.append((max(used, default=0.0), tier))
    tiers.sort(reverse=True)
    for _used, tier in tiers[max(max_tiers - 1, 0) :]:
        shutil.rmtree(tier, ignore_errors=True)


class CacheUnavailable(Exception):
    """The cache folder cannot be used (not writable); the run goes on without a cache."""


class ClusterCache:
    """Entries under ``root``: ``<key>/pgdata`` plus ``<key>/atlas-cache.json`` (written last).

    ``hot`` is an optional second cache on a tmpfs (next to the servers' data): an entry found only
    in ``root`` is copied there once, and later runs copy from memory (~40 ms instead of 60-100 ms
    from the disk's page cache). ``root`` stays the persistent tier that survives reboots.
    """

    def __init__(self, root: Path, *, max_entries: int = 0, hot: ClusterCache | None = None) -> None:
        self.root = root
        self.max_entries = max_entries or MAX_ENTRIES
        self.hot = hot

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise CacheUnavailable(f"cache folder {self.root} is not writable ({exc.strerror or exc})") from None

    @staticmethod
    def key(install: PgInstall, settings_text: str, schema_fingerprint: str) -> str:
        digest = hashlib.sha256()
        for part in (CACHE_FORMAT, install.version, str(install.bindir), settings_text, schema_fingerprint):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return f"pg{install.version}-{digest.hexdigest()[:20]}"

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive lock on one key while it is looked up or built."""
        with open(self.root / f"{key}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lookup(self, key: str) -> Path | None:
        """The ``pgdata`` folder of a complete entry for ``key`` (from the hot tier when it has or
        can take one), or None."""
        if self.hot is not None:
            found = self.hot.lookup(key)
            if found is not None:
                return found
        found = self._lookup(key)
        if found is not None and self.hot is not None:
            with contextlib.suppress(OSError):
                self.hot.store(key, found)
                return self.hot._lookup(key) or found
        return found

    def _lookup(self, key: str) -> Path | None:
        entry = self.root / key
        try:
            marker = json.loads((entry / _MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pgdata = entry / "pgdata"
        if marker.get("key") != key or not (pgdata / "PG_VERSION").is_file():
            return None
        with contextlib.suppress(OSError):
            os.utime(entry / _MARKER)  # last use, for pruning
        return pgdata

    def store(self, key: str, pgdata: Path) -> None:
        """Copy a stopped cluster into the cache as the entry for ``key``."""
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        try:
            copy_tree(pgdata, tmp / "pgdata")
            with contextlib.suppress(FileNotFoundError):
                (tmp / "pgdata" / "postmaster.pid").unlink()
            (tmp / _MARKER).write_text(json.dumps({"key": key, "created": time.time()}), encoding="utf-8")
            self._evict(key)
            tmp.rename(self.root / key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.prune(keep=key)
        if self.hot is not None:
            with contextlib.suppress(OSError):
                self.hot.store(key, pgdata)

    def prune(self, *, keep: str) -> None:
        """Remove the least recently used entries beyond ``max_entries`` (never ``keep``)."""
        entries: list[tuple[float, str]] = []
        for marker in self.root.glob(f"*/{_MARKER}"):
            with contextlib.suppress(OSError):
                entries.append((marker.stat().st_mtime, marker.parent.name))
        entries.sort(reverse=True)
        for _mtime, name in entries[self.max_entries :]:
            if name != keep:
                self._evict(name)

    def evict(self, key: str) -> None:
        """Remove the entry for ``key`` from both tiers (a corrupted one, before rebuilding it)."""
        if self.hot is not None:
            self.hot.evict(key)
        self._evict(key)

    def _evict(self, key: str) -> None:
        entry = self.root / key
        if entry.exists():
            trash = self.root / f".{key}.{os.getpid()}.trash"
            with contextlib.suppress(OSError):
                entry.rename(trash)
                entry = trash
            shutil.rmtree(entry, ignore_errors=True)
