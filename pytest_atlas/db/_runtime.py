"""Folders of throwaway servers, and reaping the ones a killed run left behind.

Layout (``<base>`` is one folder per user, ``pytest-atlas-v2-<uid>``, on /dev/shm when it has room,
else in the temp folder; every folder is created and checked by :func:`~._fs.ensure_dir`)::

    <base>/                     the invoking user's, 0711 when pytest is root (the server account
                                may pass through, not list), else 0700
      run-<token>/              one started server; the invoking user's, same mode
        lock                    flock held by the owning pytest process for its whole life
        born                    when (and in which boot) the folder was made: see _processes
        kept                    present with --atlas-keep-db: never reaped
        server.log              created by the invoking user (0600), given to the server as its
                                stdout/stderr descriptor: the server cannot point it elsewhere
        postgresql.conf, pg_hba.conf, pg_ident.conf
                                written for this run before every start; readable, not writable,
                                by the server account (config_file / hba_file / ident_file)
        pgpass                  0600 passfile, only when the server listens on TCP
        pgdata/                 the cluster: the server account's, 0700
        sock/                   the unix socket: the server account's, 0700
        room                    the reservation its room is counted in (see _room)
      dsn-<token>/              the passfile of a run on an existing server whose DSN has a password
      cache/<tier>/             the hot tier of the cluster cache (see _cache)
      rooms/                    the room live runs reserved in the folder (see _room)

Nothing root opens later lives in a folder the server account controls, except ``postmaster.pid``,
which is only read for the server's ``ready`` status while it starts, never through a link
(:func:`~._fs.read_regular`), and never to find a process to signal.

A run folder is dead when its ``lock`` can be taken: the lock dies with its process, whatever PID
namespace, container or host name that process had. The next run stops a server still running in
a dead folder (only processes :func:`~._processes.find_servers` proves to be its servers: of the
data folder's owner, started after the folder was made, with a command line that names that data
folder) and removes it. A folder is created as ``.new-<token>`` and renamed once its lock is held,
so no reaper ever sees a live folder without a held lock.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_atlas.db._account import ServerAccount
from pytest_atlas.db._fs import (
    FileLock,
    check_parent,
    check_usable,
    create_private_file,
    ensure_dir,
    free_bytes,
    make_private_dir,
    no_space,
    remove_tree,
    size_text,
)
from pytest_atlas.db._processes import FolderBirth, stop_servers
from pytest_atlas.db._room import Ledger, holders_text, open_ledger, tag_run
from pytest_atlas.errors import ProvisioningError

__all__ = [
    "BASE_NAME",
    "Base",
    "RunDir",
    "check_data_dir",
    "choose_base",
    "private_bases",
    "reap_private_bases",
    "reap_stale",
    "remove_private_base",
    "safe_parents",
]

#: the per-user base folder; "v2" is the layout (lock files, owners), so a plugin version with the
#: old layout never judges these folders by its rules, nor we its
BASE_NAME = "pytest-atlas-v2-{uid}"

_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 1 << 30  # 1 GiB: a cluster is ~40 MB, every test database ~8 MB while it lives
_NEW_GRACE_SECONDS = 60  # a ".new-" folder (a run killed while creating its folder) older than this is reaped
_LOCK = "lock"
_KEPT = "kept"


@dataclass(frozen=True)
class Base:
    """The folder that holds a run's server folder."""

    path: Path
    #: a private folder of this run only (the shared one was refused): removed with the run
    private: bool = False
    #: why the usual folder was not used (for the report header), or ""
    note: str = ""
    #: a private folder's ``lock``, held for the run's life: the folder is live while it is held
    lock: FileLock | None = field(default=None, repr=False, compare=False)
    #: the folder's room lock, held while the run decides (``decide``), with the room other live
    #: runs hold there (see :mod:`._room`); None for a private folder, or when not deciding
    ledger: Ledger | None = field(default=None, repr=False, compare=False)


def choose_base(
    configured: Path | None,
    account: ServerAccount,
    *,
    room: int = 0,
    decide: bool = False,
    follow: Path | None = None,
) -> Base:
    """The per-user base folder for server data: created if needed, checked (not a link, ours, not
    writable by others, reachable by ``account``), never chmod-ed if it already exists.

    A configured folder (``--atlas-data-dir``) that fails is an error saying why. Otherwise the
    candidates are /dev/shm (if it has room: 1 GiB, and ``room``, what the run's servers need, one
    per pytest-xdist worker), the temp folder and /tmp; if each is refused (say,
    another account planted a link at the name), the run uses a private folder of its own
    (like ``mkdtemp``), removed at its end, and the header says so.

    With ``decide`` the chosen folder's room lock is taken (:attr:`Base.ledger`: the caller
    reserves its room, or lets it go) and /dev/shm's room is what other live runs of this account
    have not reserved there (see :mod:`._room`). ``follow``: the base folder the run's controller
    chose (a pytest-xdist worker takes it as it is, when it is one of the candidates)."""
    mode = 0o700 if account.is_current else 0o711
    name = BASE_NAME.format(uid=os.geteuid())
    if configured is not None:
        path = _configured_base(Path(os.path.abspath(configured)), name, mode, account)
        _check_reachable(path, account)
        return Base(path, ledger=_ledger(path) if decide else None)
    shm = _shm_has_room() and (free_bytes(_SHM) or 0) >= room
    parents = ([_SHM] if shm else []) + _temp_folders()
    if follow is not None and follow.name == name and follow.parent in {_SHM, *_temp_folders()}:
        parents = [follow.parent, *parents]
    problems: list[str] = []
    for parent in dict.fromkeys(parents):
        try:
            path = ensure_dir(parent / name, mode)
            _check_reachable(path, account)
        except ProvisioningError as exc:
            problems.append(exc.problem)
            continue
        ledger = _ledger(path) if decide else None
        if ledger is not None and parent == _SHM and (ledger.free() or 0) < room:
            # what is free there is held by other live runs that have not used it yet
            held = f"~{size_text(ledger.held)} of its free space is held by {holders_text(ledger.others)}"
            problems.append(f"{_SHM}: {held}")
            ledger.release()
            continue
        note = f"not using {'; '.join(problems)}" if problems else ""
        return Base(path, note=note, ledger=ledger)
    safe = safe_parents(parents)  # where nobody else can rename a folder of ours away
    reaped = reap_private_bases(safe)  # what earlier runs that fell back too left when they were killed
    for parent in safe:
        try:
            path = make_private_dir(parent, name + "-", mode)  # mkdtemp, without following others' links
        except (OSError, ProvisioningError):
            continue
        try:
            _check_reachable(path, account)
        except ProvisioningError:
            remove_tree(path)
            continue
        # made under another name, locked, then renamed: a reaper never sees the lock file unlocked
        draft = path / f".{_LOCK}-{secrets.token_hex(4)}"
        lock = FileLock.acquire(draft)  # a new file in our new folder: never blocks
        os.rename(draft, path / _LOCK)
        note = f"using the private folder {path} ({'; '.join(problems)})"
        if reaped:
            note += f"; removed {len(reaped)} folder(s) that killed runs left"  # private ones and their runs
        return Base(path, private=True, note=note, lock=lock)
    raise ProvisioningError(
        "no folder to keep the test server's data in: " + "; ".join(problems),
        hint="give a folder of yours that the server account can reach with --atlas-data-dir",
    )


def _ledger(base: Path) -> Ledger | None:
    """The room lock of ``base`` with the other runs' reservations (see :mod:`._room`), or None
    when the folder cannot take its files (it is full, say): the run then decides on the free space
    alone, as a run of a version before reservations does."""
    try:
        return open_ledger(base)
    except (OSError, ProvisioningError):
        return None


_ELSEWHERE = "with --atlas-data-dir"


def _configured_base(folder: Path, name: str, mode: int, account: ServerAccount) -> Path:
    """``folder/name`` made (and ``folder`` too, if missing) and checked as :func:`ensure_dir`
    does; a folder that cannot hold a server's data is a ProvisioningError saying why. What
    ``account`` could not reach is refused before anything is made: the nearest folder on the way
    that exists must be searchable by it (the folders made below it are)."""
    check_usable(folder, elsewhere=_ELSEWHERE)  # before anything is made in it
    existing = folder / name
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    # else the folders made for it would be left behind unusable; another account's folder is
    # refused by ensure_dir below, for that reason, before anything is made in it
    if existing != folder / name and (existing != folder or os.lstat(folder).st_uid == os.geteuid()):
        _check_reachable(existing, account)
    try:
        return ensure_dir(folder / name, mode, parents=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(folder, None, _NO_SPACE_FIX) from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            check_usable(folder, elsewhere=_ELSEWHERE)  # says why (it changed since the check above)
        raise ProvisioningError(
            f"{folder} cannot hold the test server's data: {exc.strerror or exc}",
            hint=f"give another folder {_ELSEWHERE}",
        ) from None


#: how to fix a data folder that is full
_NO_SPACE_FIX = "free space there, or give a folder with room with --atlas-data-dir"


def check_data_dir(configured: Path, account: ServerAccount, where: str) -> Base:
    """The base folder in the data folder given by ``where`` (``--atlas-data-dir``, or the ini
    key), made and checked by :func:`choose_base` before the run starts: a folder that cannot be
    used is an error that names ``where`` (the plugin's usage error)."""
    try:
        return choose_base(configured, account)
    except ProvisioningError as exc:
        raise type(exc)(f"{where}: {exc.problem}", hint=exc.hint) from None


def _temp_folders() -> list[Path]:
    return [Path(tempfile.gettempdir()), Path("/tmp")]


def _check_reachable(path: Path, account: ServerAccount) -> None:
    if not account.can_traverse(path):
        raise ProvisioningError(
            f"{path}: the server account {account.name!r} cannot reach it (a parent folder is not searchable "
            "by that account)",
            hint="give a folder the server account can reach with --atlas-data-dir",
        )


def _shm_has_room() -> bool:
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return False
    return os.access(_SHM, os.W_OK) and st.f_bavail * st.f_frsize >= _SHM_MIN_FREE


@dataclass
class RunDir:
    """One run's folder (see the module docstring), locked by this process while it lives."""

    path: Path
    account: ServerAccount
    _lock: FileLock | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.path / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.path / "sock"

    @property
    def log(self) -> Path:
        return self.path / "server.log"

    @property
    def passfile(self) -> Path:
        return self.path / "pgpass"

    @property
    def kept(self) -> bool:
        return os.path.lexists(self.path / _KEPT)

    @classmethod
    def create(
        cls, base: Path, account: ServerAccount, *, keep: bool, kind: str = "run", room: str | None = None
    ) -> RunDir:
        """A new folder ``<kind>-<token>`` in ``base``, its lock held by this process; ``room``: the
        token of the reservation its room is counted in (see :mod:`._room`)."""
        token = secrets.token_hex(4)
        mode = 0o700 if account.is_current else 0o711
        new = base / f".new-{token}"
        os.mkdir(new, mode)
        os.chmod(new, mode)  # our own new folder: the mode asked for, whatever the umask
        lock = FileLock.acquire(new / _LOCK)
        assert lock is not None
        try:
            FolderBirth.now().write(new)  # before any server of it exists (see _processes)
            if keep:
                create_private_file(new / _KEPT)
            if room:
                tag_run(new, room)
            path = base / f"{kind}-{token}"
            os.rename(new, path)
        except BaseException:
            lock.release()
            remove_tree(new)
            raise
        lock.path = path / _LOCK
        return cls(path, account, lock)

    def server_dirs(self) -> None:
        """The socket folder, owned by the server account (0700). The data folder is made by
        :meth:`hand_over` once it is filled (or empty, for initdb)."""
        ensure_dir(self.socket_dir, 0o700)
        self._give(self.socket_dir)

    def hand_over(self, folder: Path) -> None:
        """Give a folder this run filled (the cluster) to the server account."""
        self.account.give(folder)

    def _give(self, folder: Path) -> None:
        if not self.account.is_current:
            os.chown(folder, self.account.uid, self.account.gid)

    def write_config(self, name: str, text: str) -> Path:
        """A file the server reads but may not change: ours, readable by its group (0640) when the
        server runs as another account, else 0600. Replaced atomically at every start."""
        path = self.path / name
        tmp = self.path / f".{name}.{secrets.token_hex(4)}"
        create_private_file(tmp, text.encode("utf-8"), mode=0o600)
        if not self.account.is_current:
            os.chown(tmp, os.geteuid(), self.account.gid)
            os.chmod(tmp, 0o640)
        os.replace(tmp, path)
        return path

    def write_passfile(self, line: str) -> Path:
        """The 0600 libpq passfile of this run (ours; nobody else may read it)."""
        tmp = self.path / f".pgpass.{secrets.token_hex(4)}"
        create_private_file(tmp, line.encode("utf-8"), mode=0o600)
        os.replace(tmp, self.passfile)
        return self.passfile

    def open_log(self) -> int:
        """A descriptor of the server log for appending (created 0600 on first use, never through a
        link); it becomes the server's stdout and stderr."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self.log, flags, 0o600)

    def mark_kept(self) -> None:
        if not self.kept:
            create_private_file(self.path / _KEPT)

    def release(self) -> None:
        """Drop the lock (the folder stays: a kept server's)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def remove(self) -> None:
        """Stop every server of this folder (also one the server's account started again in it,
        ``pg_ctl restart``) and remove the folder."""
        stop_servers(self.path)
        remove_tree(self.path)
        self.release()


def reap_stale(base: Path) -> list[str]:
    """Stop and remove the server folders of dead runs (their lock can be taken). Folders marked
    kept and folders of live runs, in any container, are left alone. One line per folder removed."""
    reaped: list[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return reaped
    me = os.geteuid()
    for entry in entries:
        if not entry.name.startswith(("run-", "dsn-", ".new-")):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != me:
            continue
        path = base / entry.name
        if os.path.lexists(path / _KEPT):
            continue
        young = time.time() - st.st_mtime < _NEW_GRACE_SECONDS
        if entry.name.startswith(".new-") and young:
            continue  # being created right now (its lock may not be held yet)
        lock = FileLock.try_acquire(path / _LOCK)
        if lock is None and (os.path.lexists(path / _LOCK) or not entry.name.startswith(".new-")):
            continue  # held: a live run (or not ours to judge)
        try:
            stopped = stop_servers(path)
            remove_tree(path)
        finally:
            if lock is not None:
                lock.release()
        reaped.append(f"{path}{' (stopped its server)' if stopped else ''}")
    return reaped


def remove_private_base(base: Base) -> None:
    """Remove a private base folder (this run's own) at the end of the run."""
    if base.private:
        remove_tree(base.path)
        if base.lock is not None:
            base.lock.release()  # idempotent


def safe_parents(parents: list[Path]) -> list[Path]:
    """Of ``parents``, those a folder of ours can be made in and stay ours (see
    :func:`~._fs.check_parent`: ours or root's and not writable by others, or sticky)."""
    name = BASE_NAME.format(uid=os.geteuid())
    safe: list[Path] = []
    for parent in dict.fromkeys(parents):
        try:
            check_parent(parent / name)
        except ProvisioningError:
            continue
        safe.append(parent)
    return safe


def private_bases(parents: list[Path]) -> list[Path]:
    """The private base folders (``pytest-atlas-v2-<uid>-*``) in those of ``parents`` that are safe:
    real folders of ours that nobody else may write to (links and others' folders are left out)."""
    prefix = BASE_NAME.format(uid=os.geteuid()) + "-"
    me = os.geteuid()
    found: list[Path] = []
    for parent in safe_parents(parents):
        try:
            entries = [entry for entry in os.scandir(parent) if entry.name.startswith(prefix)]
        except OSError:
            continue
        for entry in sorted(entries, key=lambda entry: entry.name):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_uid == me and not st.st_mode & 0o022:
                found.append(parent / entry.name)
    return found


def reap_private_bases(parents: list[Path]) -> list[str]:
    """Remove the private base folders (``pytest-atlas-v2-<uid>-*``) of runs that are over.

    A run whose usual folder was refused made one with ``mkdtemp`` and holds its ``lock`` for its
    whole life; a run killed before it removed the folder leaves it behind. Only real folders of
    ours that nobody else may write to, holding that lock file, are considered; one whose lock can
    be taken has its dead runs' servers stopped and folders removed (as :func:`reap_stale` does in
    the usual folder), then goes if nothing else is left in it. One line per folder removed."""
    reaped: list[str] = []
    for path in private_bases(parents):
        try:
            lock = FileLock.acquire(path / _LOCK, blocking=False, create=False)
        except OSError:
            continue
        if lock is None:  # held by its live run, or no lock file: not a folder we can judge
            continue
        try:
            reaped += reap_stale(path)
            if set(os.listdir(path)) - {_LOCK}:
                continue  # a kept run, or something that is not ours to remove
            remove_tree(path)
        except OSError:
            continue
        finally:
            lock.release()
        reaped.append(str(path))
    return reaped
