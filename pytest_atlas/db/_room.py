"""The room separate runs of one account share in a data folder: reservations.

Each run checks the free space of its data folder before its servers grow (to choose /dev/shm or
the disk, to keep the cache's copy in memory or not, to refuse a folder too small for its
servers). Two runs started at once (two CI jobs on one machine) would both see the room the other
is about to take. So a run decides with the folder's room lock held, and before it lets the lock go
it records what it will need (its reservation); a run that decides later subtracts from the free
space what the other live runs reserved and have not used yet. Layout, in the base folder (see
:mod:`._runtime`)::

    rooms/                  ours, 0700 (made and checked by :func:`~._fs.ensure_dir`)
      lock                  the room lock: flock held around "read the reservations, decide, record"
      <token>.json          one live run's reservation: flock held by that run for its whole life
      .draft-<token>        a reservation being written (only while its writer holds the room lock)

A reservation is live while its file's lock is held: the lock dies with its process (the liveness
signal of run folders, see :mod:`._fs`); a reservation whose lock can be taken is a dead run's, and
is removed by the next run that reads the reservations. What a live run has used already is what
its server folders (``run-*``, each naming its reservation in a ``room`` file) hold, and its copy in
memory once that exists; only the rest is subtracted, so the free space that run's files already
took is not counted twice.

Reservations live in a base folder of one account (``pytest-atlas-v2-<uid>``): runs of another
account use a base folder of their own and do not see them. Those runs (and any other program
writing to the same file system) are only seen by what they have written so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_atlas.db._fs import FileLock, create_private_file, ensure_dir, free_bytes, read_regular, size_text

__all__ = [
    "ROOM_FILE",
    "Holder",
    "Ledger",
    "Reservation",
    "held_note",
    "holders_text",
    "open_ledger",
    "tag_run",
]

_FOLDER = "rooms"
_LOCK = "lock"
_SUFFIX = ".json"
_DRAFT = ".draft-"
#: the file in a run folder that names the reservation its server's room is counted in
ROOM_FILE = "room"


@dataclass(frozen=True)
class Holder:
    """Another live run's reservation: who it is (no secret: no command line) and its room."""

    pid: int
    host: str
    started: float
    folder: str
    reserved: int
    #: what it reserved and has not used yet (subtracted from the free space)
    unused: int

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.started))
        return f"pytest, pid {self.pid} on {self.host}, started {when} in {self.folder}"


def holders_text(holders: list[Holder]) -> str:
    """The live runs that hold room, as messages name them."""
    if len(holders) == 1:
        return f"another live run of yours ({holders[0].describe()})"
    return f"{len(holders)} other live runs of yours ({'; '.join(holder.describe() for holder in holders)})"


@dataclass
class Reservation:
    """This run's reservation in a base folder, held until :meth:`release` (or the process ends)."""

    token: str
    path: Path
    base: Path
    _lock: FileLock | None = field(default=None, repr=False)

    def release(self) -> None:
        """Remove the record and drop its lock (idempotent)."""
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while its lock is held: nobody judges it meanwhile
        self._lock.release()
        self._lock = None


@dataclass
class Ledger:
    """The room lock of one base folder, held, and the live reservations of the other runs there."""

    base: Path
    others: list[Holder]
    _lock: FileLock | None = field(default=None, repr=False)

    @property
    def held(self) -> int:
        """The bytes other live runs reserved and have not used yet."""
        return sum(holder.unused for holder in self.others)

    def free(self) -> int | None:
        """The free space of the folder's file system less :attr:`held` (None when unknown)."""
        free = free_bytes(self.base)
        return None if free is None else free - self.held

    def reserve(self, size: int, *, hot: str = "", hot_size: int = 0) -> Reservation | None:
        """Record this run's reservation (``size`` bytes, of them ``hot_size`` for the copy in
        memory ``hot``, a path below the base folder's ``cache``), then let the room lock go. None
        when the record cannot be written (the folder is full): the run reserves nothing."""
        assert self._lock is not None, "the room lock was let go already"
        try:
            token = secrets.token_hex(8)
            folder = self.base / _FOLDER
            draft = folder / f"{_DRAFT}{token}"
            record = {
                "reserved": max(size, 0),
                "hot": hot,
                "hot_size": max(hot_size, 0),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.time(),
                "folder": os.getcwd(),
            }
            try:
                create_private_file(draft, json.dumps(record).encode("utf-8"))  # O_EXCL, never through a link
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(draft)
                return None
            try:
                lock = FileLock.acquire(draft, create=False)
                assert lock is not None
                path = folder / f"{token}{_SUFFIX}"
                os.rename(draft, path)  # locked before anyone may judge it (they hold the room lock)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(draft)
                raise
            lock.path = path
            return Reservation(token, path, self.base, lock)
        finally:
            self.release()

    def release(self) -> None:
        """Let the room lock go without a reservation (idempotent)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def open_ledger(base: Path) -> Ledger:
    """Take the room lock of ``base`` (waiting for a run that is deciding) and read the other live
    runs' reservations there; a dead run's is removed. The caller decides, then calls
    :meth:`Ledger.reserve` or :meth:`Ledger.release`."""
    folder = ensure_dir(base / _FOLDER, 0o700)
    lock = FileLock.acquire(folder / _LOCK)
    assert lock is not None
    try:
        others = _live_reservations(base, folder)
    except BaseException:
        lock.release()
        raise
    return Ledger(base, others, lock)


def _live_reservations(base: Path, folder: Path) -> list[Holder]:
    used = _used_by_reservation(base)
    holders: list[Holder] = []
    for entry in _entries(folder):
        path = folder / entry.name
        if entry.name.startswith(_DRAFT):  # its writer died while holding the room lock
            _remove_dead(path)
            continue
        if not entry.name.endswith(_SUFFIX) or not _regular_of_ours(entry):
            continue
        dead = FileLock.try_acquire(path)
        if dead is not None:  # its run is over (however it ended)
            with contextlib.suppress(OSError):
                os.unlink(path)
            dead.release()
            continue
        record = _record(path)
        if record is None:
            continue
        token = entry.name[: -len(_SUFFIX)]
        reserved, hot, hot_size = record["reserved"], record["hot"], record["hot_size"]
        spent = used.get(token, 0)
        if hot and hot_size and os.path.lexists(base / "cache" / hot / "atlas-cache.json"):
            spent += hot_size  # its copy in memory is made: part of the free space already
        holders.append(
            Holder(
                pid=record["pid"],
                host=record["host"],
                started=record["started"],
                folder=record["folder"],
                reserved=reserved,
                unused=max(reserved - spent, 0),
            )
        )
    holders.sort(key=lambda holder: holder.started)
    return holders


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as found:
            return sorted(found, key=lambda entry: entry.name)
    except OSError:
        return []


def _regular_of_ours(entry: os.DirEntry[str]) -> bool:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()


def _remove_dead(path: Path) -> None:
    lock = FileLock.try_acquire(path)
    if lock is None:
        return
    with contextlib.suppress(OSError):
        os.unlink(path)
    lock.release()


def _record(path: Path) -> dict[str, Any] | None:
    """A reservation's fields, checked (None for a record that is not one)."""
    try:
        data: Any = json.loads(read_regular(path, limit=4096) or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ints = ("reserved", "hot_size", "pid")
    texts = ("hot", "host", "folder")
    if not all(isinstance(data.get(name), int) for name in ints):
        return None
    if not all(isinstance(data.get(name), str) for name in texts):
        return None
    if not isinstance(data.get("started"), (int, float)):
        return None
    if ".." in Path(data["hot"]).parts or os.path.isabs(data["hot"]):
        return None
    return data


def _used_by_reservation(base: Path) -> dict[str, int]:
    """The bytes the server folders in ``base`` hold, by the reservation each names."""
    used: dict[str, int] = {}
    for entry in _entries(base):
        if not entry.name.startswith(("run-", ".new-")):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        token = (read_regular(base / entry.name / ROOM_FILE, limit=64) or "").strip()
        if token:
            used[token] = used.get(token, 0) + _tree_bytes(base / entry.name)
    return used


def _tree_bytes(top: Path) -> int:
    """The bytes the files under ``top`` take on their file system, never following a link (the
    data folder below it is the server account's)."""
    total = 0
    for entry in _walk(top):
        with contextlib.suppress(OSError):
            total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


def _walk(top: Path) -> Iterator[os.DirEntry[str]]:
    stack = [top]
    while stack:
        folder = stack.pop()
        for entry in _entries(folder):
            yield entry
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    stack.append(folder / entry.name)


def tag_run(run_dir: Path, token: str) -> None:
    """Name, in a new run folder of ours, the reservation its server's room is counted in."""
    create_private_file(run_dir / ROOM_FILE, token.encode("ascii"))


def held_note(ledger: Ledger) -> str:
    """For the header: the room other live runs hold in the folder, or ""."""
    if not ledger.others:
        return ""
    return f"~{size_text(ledger.held)} of its free space is held by {holders_text(ledger.others)}"
