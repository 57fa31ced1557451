"""Finding and stopping the servers of a run folder by what the plugin itself knows, never by a
process id read from a file another account can write.

``postmaster.pid`` lies in the data folder, which belongs to the server's account: that account
(and any test that runs SQL as a superuser, ``COPY ... TO PROGRAM``, or ``pg_ctl``) can rewrite it
to name any process, or none. So it is never used to find a server. Instead a run folder records,
when it is made and before any server of it exists, the boot it was made in and the moment
(:class:`FolderBirth`, in the ``born`` file of the run folder, which is ours). A server of that
folder is then a process that

* runs as the owner of the data folder (the server's account: only root can change that owner),
* started in that boot at or after that moment (``/proc/<pid>/stat``),
* has a ``postgres`` binary as its program and ``-D <that data folder>`` on its command line
  (only the postmaster keeps that command line: its children rewrite theirs).

That is the postmaster the plugin started, or one the server's account started again in the
folder (``pg_ctl restart``), which would otherwise outlive the run. The search reads ``/proc``, so it
finds the servers of every PID namespace this process can see (a parent namespace sees its
children's). A signal goes through a pidfd opened before the process is checked: a process id that
is reused between the check and the signal is never hit. Where there are no pidfds, a server is
signalled by its process id right after it is checked again (only a reuse in between could be hit).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_atlas.db._fs import create_private_file, read_regular

__all__ = ["BIRTH_FILE", "FolderBirth", "find_servers", "stop_servers"]

#: the file in a run folder that says when (and in which boot) the folder was made
BIRTH_FILE = "born"
_HZ = os.sysconf("SC_CLK_TCK")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _now_ticks() -> int:
    """Now, in the unit and clock of a process's start time in ``/proc/<pid>/stat``."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _HZ)


@dataclass(frozen=True)
class FolderBirth:
    """When a run folder was made: a server of it started then or later, in the same boot."""

    boot: str
    ticks: int

    @classmethod
    def now(cls) -> FolderBirth:
        return cls(_boot_id(), _now_ticks())

    def write(self, folder: Path) -> None:
        create_private_file(folder / BIRTH_FILE, f"{self.boot} {self.ticks}\n".encode("ascii"))

    @classmethod
    def read(cls, folder: Path) -> FolderBirth:
        """The birth recorded in ``folder`` (ours); a folder without one (made by an older version)
        reads as made at boot: its servers are still only processes of the data folder's owner
        that name that data folder."""
        words = (read_regular(folder / BIRTH_FILE, limit=256) or "").split()
        if len(words) == 2 and words[1].isascii() and words[1].isdigit():
            return cls(words[0], int(words[1]))
        return cls("", 0)

    def admits(self, start_ticks: int) -> bool:
        """Whether a process started at ``start_ticks`` (in this boot) may be a server of the folder."""
        if self.boot != _boot_id():  # the folder outlived a reboot: every process of this boot is later
            return True
        return start_ticks >= self.ticks


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _names_folder(argv: list[bytes], pgdata: Path) -> bool:
    if not argv or os.path.basename(argv[0]) != b"postgres":
        return False
    folder = os.fsencode(str(pgdata))
    return any(flag == b"-D" and value == folder for flag, value in itertools.pairwise(argv))


def _is_server(pid: int, pgdata: Path, owner: int, birth: FolderBirth) -> bool:
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or fields[0] == "Z":
        return False
    if _uid(pid) != owner or not birth.admits(int(fields[19])):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _names_folder(argv, pgdata)


def _owner(pgdata: Path) -> int | None:
    try:
        st = os.lstat(pgdata)
    except OSError:
        return None
    return st.st_uid if stat.S_ISDIR(st.st_mode) else None


def find_servers(run_dir: Path) -> list[int]:
    """The process ids of the servers running on ``run_dir``'s data folder (see the module
    docstring), as this process's PID namespace numbers them."""
    return _servers(run_dir)[0]


def _servers(run_dir: Path) -> tuple[list[int], Callable[[int], bool]]:
    """:func:`find_servers`, and the test that proved each (to check a process again)."""
    pgdata = run_dir / "pgdata"
    owner = _owner(pgdata)
    if owner is None:
        return [], lambda pid: False
    birth = FolderBirth.read(run_dir)

    def is_server(pid: int) -> bool:
        return _is_server(pid, pgdata, owner, birth)

    found = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit() and is_server(int(entry.name))]
    return found, is_server


def stop_servers(run_dir: Path, *, timeout: float = 10.0) -> int:
    """Stop every server running on ``run_dir``'s data folder (immediate shutdown, then SIGKILL);
    returns how many there were. Nothing else is ever signalled.

    Where there are no pidfds (a kernel before 5.3, a sandbox that refuses them), a server is
    signalled by its process id, each time right after it is checked again."""
    found, is_server = _servers(run_dir)
    handles: list[int] = []
    by_pid: list[int] = []
    try:
        for pid in found:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:  # gone already
                continue
            except OSError:  # no pidfd here
                by_pid.append(pid)
                continue
            if is_server(pid):  # still it, now that the pidfd holds it
                handles.append(fd)
            else:
                os.close(fd)
        waiting, pids = list(handles), list(by_pid)
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            for fd in waiting:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, sig)
            pids = [pid for pid in pids if is_server(pid)]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while (waiting or pids) and time.monotonic() < deadline:
                # a pidfd is readable once its process exited; a process id is polled
                ready, _, _ = select.select(waiting, [], [], min(max(deadline - time.monotonic(), 0.0), 0.05))
                waiting = [fd for fd in waiting if fd not in ready]
                pids = [pid for pid in pids if is_server(pid)]
        return len(handles) + len(by_pid)
    finally:
        for fd in handles:
            os.close(fd)
