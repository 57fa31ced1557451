"""Folders of throwaway servers, and reaping the ones a killed run left behind.

Every started server lives in its own ``run-<token>`` folder under one base folder per user
(``pytest-atlas-<uid>``), on /dev/shm when it has room (a tmpfs: stable and fast), else in the temp
folder. The folder holds ``owner.json`` naming the pytest process that owns it. A later run that
finds a folder whose owner is gone stops any server still running in it and removes it. Folders
marked ``keep`` (``--atlas-keep-db``) are left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_atlas.db._account import ServerAccount
from pytest_atlas.errors import ProvisioningError

__all__ = ["RunDir", "choose_base", "owner_gone", "process_alive", "process_start", "reap_stale", "stop_postmaster"]

_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 1 << 30  # 1 GiB: a cluster is ~40 MB, every test database ~8 MB while it lives
_ORPHAN_GRACE_SECONDS = 600  # a folder without owner.json is only reaped when older than this


def choose_base(configured: Path | None, account: ServerAccount) -> Path:
    """The per-user base folder for server data, created if needed and reachable by ``account``."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    else:
        if _shm_has_room():
            candidates.append(_SHM)
        candidates.append(Path(tempfile.gettempdir()))
        candidates.append(Path("/tmp"))
    problems: list[str] = []
    for parent in candidates:
        base = parent / f"pytest-atlas-{os.geteuid()}"
        try:
            base.mkdir(parents=configured is not None, exist_ok=True)
            st = base.stat()
            if st.st_uid != os.geteuid():
                problems.append(f"{base} belongs to another user")
                continue
            # root: others may traverse (the server account reaches its own run folder), not list
            os.chmod(base, 0o711 if not account.is_current else 0o700)
        except OSError as exc:
            problems.append(f"{base}: {exc.strerror or exc}")
            continue
        if not account.can_traverse(base):
            problems.append(
                f"{base}: the server account {account.name!r} cannot reach it "
                "(a parent folder is not searchable by that account)"
            )
            continue
        return base
    raise ProvisioningError(
        "no folder to keep the test server's data in: " + "; ".join(problems),
        hint="give a writable folder that the server account can reach with --atlas-data-dir",
    )


def _shm_has_room() -> bool:
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return False
    return os.access(_SHM, os.W_OK) and st.f_bavail * st.f_frsize >= _SHM_MIN_FREE


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process (to tell a reused pid), "" when it runs but cannot be
    read, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None if not process_alive(pid) else ""


def owner_gone(pid: int, recorded_start: object) -> bool:
    """Whether the process that recorded ``(pid, recorded_start)`` has ended (pid reuse included)."""
    start = process_start(pid)
    if start is None:
        return True
    return bool(recorded_start) and bool(start) and start != recorded_start


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunDir:
    """One started server's folder: ``pgdata/`` (the cluster), the socket, the log, ``owner.json``."""

    path: Path

    @property
    def pgdata(self) -> Path:
        return self.path / "pgdata"

    @property
    def log(self) -> Path:
        return self.path / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.path

    @classmethod
    def create(cls, base: Path, account: ServerAccount, *, keep: bool, kind: str = "run") -> RunDir:
        path = base / f"{kind}-{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        run = cls(path)
        run.write_owner(keep=keep)
        account.give(path)
        return run

    def write_owner(self, *, keep: bool) -> None:
        pid = os.getpid()
        owner = {"pid": pid, "start": process_start(pid), "keep": keep, "created": time.time()}
        tmp = self.path / "owner.json.tmp"
        tmp.write_text(json.dumps(owner), encoding="utf-8")
        tmp.replace(self.path / "owner.json")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def stop_postmaster(pgdata: Path, *, timeout: float = 10.0) -> bool:
    """Stop the server running on ``pgdata``, if any (immediate shutdown, then SIGKILL).

    Only a process whose command line names this data folder is signalled.
    """
    try:
        pid = int((pgdata / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if b"postgres" not in cmdline or str(pgdata).encode() not in cmdline:
        return False
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGKILL, timeout)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(pid) or _is_zombie(pid):
                return True
            time.sleep(0.02)
    return not process_alive(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def reap_stale(base: Path) -> list[str]:
    """Stop and remove servers whose pytest process is gone. Returns one line per folder removed."""
    reaped: list[str] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return reaped
    for path in entries:
        if not path.is_dir() or not path.name.startswith(("run-", "build-")):
            continue
        if not _is_stale(path):
            continue
        stopped = stop_postmaster(path / "pgdata")
        shutil.rmtree(path, ignore_errors=True)
        reaped.append(f"{path}{' (stopped its server)' if stopped else ''}")
    return reaped


def _is_stale(path: Path) -> bool:
    try:
        owner = json.loads((path / "owner.json").read_text(encoding="utf-8"))
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - path.stat().st_mtime > _ORPHAN_GRACE_SECONDS
        except OSError:
            return False
    if owner.get("keep"):
        return False
    return owner_gone(pid, owner.get("start"))
