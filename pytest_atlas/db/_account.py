"""Which operating-system account runs initdb and the server.

PostgreSQL refuses to run as root. When pytest runs as root (most CI containers), the plugin runs
initdb and the server as an unprivileged account instead: the one named by ``--atlas-run-as``, else
an existing ``postgres`` account, else ``nobody``. It never creates accounts and never changes the
permissions of folders it did not create; it only hands the folders it creates to that account.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_atlas.errors import ConfigError, ProvisioningError

__all__ = ["ServerAccount", "current_user_name", "server_account"]

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerAccount:
    """The account the server runs as, and why."""

    name: str
    uid: int
    gid: int
    #: True when it is the account pytest itself runs as (no switching needed)
    is_current: bool
    #: one line for the report header
    reason: str

    def groups(self) -> list[int]:
        try:
            return os.getgrouplist(self.name, self.gid)
        except OSError:  # pragma: no cover - unknown account
            return [self.gid]

    def can_traverse(self, path: Path) -> bool:
        """Whether this account can reach ``path`` (search permission on it and every ancestor)."""
        if self.uid == 0:
            return True
        groups = set(self.groups())
        path = path.resolve()
        for folder in (path, *path.parents):
            try:
                st = folder.stat()
            except OSError:
                return False
            if st.st_uid == self.uid:
                needed = stat.S_IXUSR
            elif st.st_gid in groups:
                needed = stat.S_IXGRP
            else:
                needed = stat.S_IXOTH
            if not st.st_mode & needed:
                return False
        return True

    def give(self, path: Path) -> None:
        """Hand a folder the plugin created and filled (and everything in it) to this account.
        Nobody else can write in it while this runs (it lies in a folder of the invoking user's).
        From the bottom up, never following a link: once a folder is this account's, the account
        (which may already run other programs) can rename what is in it and plant a link there,
        so every entry is given while the folder that holds it is still ours, and that folder after
        everything in it."""
        if self.is_current:
            return
        for root, dirs, files in os.walk(path, topdown=False):
            for name in dirs + files:  # (a link to a folder is listed in dirs, never walked into)
                os.chown(os.path.join(root, name), self.uid, self.gid, follow_symlinks=False)
        os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def preexec(self, *, die_with_parent: bool) -> Callable[[], None] | None:
        """A ``preexec_fn`` that drops to this account and, optionally, asks the kernel to send
        SIGQUIT (PostgreSQL's immediate shutdown) when the pytest process dies, even by SIGKILL.

        The parent-death signal is tied to the thread that spawns the child, so it is only set
        when spawning from the main thread; leftovers of other cases are reaped by the next run.
        """
        die_with_parent = die_with_parent and threading.current_thread() is threading.main_thread()
        if self.is_current and not die_with_parent:
            return None
        libc = _libc() if die_with_parent else None
        uid, gid, groups, switch = self.uid, self.gid, self.groups(), not self.is_current

        def run_in_child() -> None:
            if switch:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
            if libc is not None:
                # after setuid: a credential change clears the parent-death signal
                libc.prctl(_PR_SET_PDEATHSIG, 3, 0, 0, 0)  # 3 = SIGQUIT

        return run_in_child

    def env(self) -> dict[str, str]:
        """Environment for the server's processes: only what running needs (nothing of pytest's
        own: every process of the server's account can read the server's environment, and SQL can
        through ``COPY ... TO PROGRAM``, so a CI token or a DSN there would be theirs), no locale
        surprises, a home it may use."""
        env = {k: v for k, v in os.environ.items() if k in _SERVER_ENV}
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        if not self.is_current:
            env["HOME"] = "/"
            env["USER"] = env["LOGNAME"] = self.name
        return env


#: the variables of pytest's environment the server and initdb get (finding programs and libraries,
#: the time zone, the temp folder); everything else, PG* included, stays out
_SERVER_ENV = frozenset({"PATH", "LD_LIBRARY_PATH", "TZ", "TMPDIR"})


def _libc() -> Any:
    """libc, for prctl(2); None where there is no parent-death signal (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover
        return None


def server_account(run_as: str | None) -> ServerAccount:
    """The account for initdb and the server, given ``--atlas-run-as`` (None = choose)."""
    uid = os.geteuid()
    if uid != 0:
        entry = _lookup_uid(uid)
        return ServerAccount(entry, uid, os.getegid(), True, f"runs as the current user {entry!r}")
    if run_as is not None:
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            raise ConfigError(
                "--atlas-run-as",
                run_as,
                "no such account on this machine",
                hint="name an existing unprivileged account, e.g. postgres",
            ) from None
        if pw.pw_uid == 0:
            raise ConfigError(
                "--atlas-run-as",
                run_as,
                "PostgreSQL refuses to run as root",
                hint="name an unprivileged account, e.g. postgres",
            )
        return ServerAccount(
            pw.pw_name,
            pw.pw_uid,
            pw.pw_gid,
            False,
            f"pytest runs as root: the server runs as {pw.pw_name!r} (--atlas-run-as)",
        )
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid != 0:
            why = "the existing 'postgres' account" if name == "postgres" else "'nobody' (no 'postgres' account)"
            return ServerAccount(
                pw.pw_name, pw.pw_uid, pw.pw_gid, False, f"pytest runs as root: the server runs as {why}"
            )
    raise ProvisioningError(
        "pytest runs as root, PostgreSQL refuses to run as root, and this machine has neither a "
        "'postgres' nor a 'nobody' account to run it as",
        hint="create an unprivileged account (e.g. 'useradd --system postgres') and, if it is not "
        "called postgres, name it with --atlas-run-as; or run pytest as a normal user",
    )


def current_user_name() -> str:
    """The name of the account pytest runs as (what ``peer`` authentication sees)."""
    return _lookup_uid(os.geteuid())


def _lookup_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
