"""One local PostgreSQL cluster: initdb, start, wait until ready, stop.

pytest-postgresql's executor is not used here: it drives ``pg_ctl``, which refuses to run as root
and polls for readiness ten times a second (about 100 ms per start and per stop), and it leaves the
server running if the test process is killed. This module starts ``postgres`` directly as a child of
the pytest process (as an unprivileged account when pytest is root), watches ``postmaster.pid`` for
the ``ready`` status every few milliseconds, and asks the kernel to shut the server down if the
pytest process dies (``PR_SET_PDEATHSIG``).

Every setting, and the access rules (see :mod:`._access`), are written to files in the run folder
before each start and named on the command line (``config_file``, ``hba_file``, ``ident_file``):
the server account can read them, not change them, and the data folder holds none of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from pytest_atlas.db._access import hba_rules, ident_map
from pytest_atlas.db._account import ServerAccount, current_user_name
from pytest_atlas.db._binaries import PgInstall
from pytest_atlas.db._fs import NoSpaceError, no_space, read_regular, size_text
from pytest_atlas.db._runtime import RunDir
from pytest_atlas.errors import ProvisioningError

__all__ = [
    "CLUSTER_SIZE",
    "INITDB_ARGS",
    "SOCKET_PORT",
    "START_ROOM",
    "SUPERUSER",
    "LocalCluster",
    "PortInUseError",
    "free_port",
    "no_space_fix",
    "out_of_space",
    "server_room",
]

#: the superuser created by initdb in every cluster the plugin starts
SUPERUSER = "postgres"
#: the port number of the unix socket when there is no TCP listener (the socket's folder is private
#: to the run, so the number never collides with another server)
SOCKET_PORT = 5432
#: initdb's arguments besides the folder (part of the cache key). The rules initdb writes into the
#: data folder are never used (hba_file points elsewhere) but are not ``trust`` either. Data page
#: checksums let PostgreSQL notice a damaged page of a cached cluster instead of reading it.
INITDB_ARGS = (
    "-U",
    SUPERUSER,
    "--auth-local=peer",
    "--auth-host=scram-sha-256",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
    "--wal-segsize=1",
    "--data-checksums",
)

#: settings of a throwaway test server: no durability, no background work that competes with tests
_SERVER_CONF = """
# --- written by pytest-atlas for this run: a throwaway test server, durability off ---
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
jit = off
max_wal_size = 1GB
checkpoint_timeout = 1h
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
log_line_prefix = '%m [%p] '
password_encryption = 'scram-sha-256'
unix_socket_permissions = 0700
"""

#: about what a new cluster with its template takes on disk (a cached entry is ~38 MB), for the
#: message of a data folder that is full
CLUSTER_SIZE = 40 << 20
#: free space a start needs besides the cluster's files (the server's first WAL, its pid and socket
#: files)
START_ROOM = 8 << 20
#: test databases a server holds at once (the one a test uses, the one cloned ahead of the next),
#: each about the size of the template database
_CLONES = 2
#: the size of a test database when nothing tells (a template with an empty schema is ~7.6 MB)
_CLONE_SIZE = 8 << 20


def server_room(clone_size: int = 0) -> int:
    """The bytes a server needs in its data folder besides its cluster's files: its first WAL and
    files, and the test databases it holds at once (``clone_size`` each: the template's size)."""
    return START_ROOM + _CLONES * (clone_size or _CLONE_SIZE)


def no_space_fix(needed: int) -> str:
    """How to fix a data folder that has less than ``needed`` bytes free."""
    return f"free space there, or give --atlas-data-dir a folder with ~{size_text(needed)} free"


#: what PostgreSQL, initdb and cp say of a full file system (strerror(ENOSPC))
_NO_SPACE = "No space left on device"

_READY_TIMEOUT = 60.0
#: sun_path is 108 bytes on Linux, NUL included
_MAX_SOCKET_PATH = 107


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (start() retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalCluster:
    """A cluster in ``run.pgdata``, run by ``account`` with the binaries of ``install``."""

    def __init__(self, install: PgInstall, account: ServerAccount, run: RunDir) -> None:
        self.install = install
        self.account = account
        self.run = run
        self.port = SOCKET_PORT
        self.tcp = False
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    # -- creating ----------------------------------------------------------------------------------

    def initdb(self) -> None:
        """Initialise an empty cluster (no fsync, C locale, UTF-8, 1 MB WAL segments, checksums)."""
        self.run.pgdata.mkdir(mode=0o700)
        self.run.hand_over(self.run.pgdata)
        args = [str(self.install.initdb), "-D", str(self.run.pgdata), *INITDB_ARGS]
        if self.install.version_num >= 140000:
            args.append("--no-instructions")
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd="/",
            env=self.account.env(),
            preexec_fn=self.account.preexec(die_with_parent=True),
        )
        if result.returncode != 0:
            if _NO_SPACE in (result.stderr or "") + (result.stdout or ""):
                raise self.no_space()
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ProvisioningError(
                f"initdb failed ({self.install.initdb}, as {self.account.name!r}):\n{tail}",
                hint="check that the data folder is writable by that account (--atlas-data-dir) and "
                "that the PostgreSQL installation is complete",
            )

    # -- running -----------------------------------------------------------------------------------

    def start(self, port: int = 0, *, tcp: bool = False, detached: bool = False) -> None:
        """Start the server and wait until it accepts connections: on its private unix socket, and
        with ``tcp`` also on 127.0.0.1:``port`` (0 = a free port). ``detached`` servers outlive
        pytest (``--atlas-keep-db``)."""
        socket_file = f"{self.run.socket_dir}/.s.PGSQL.{port or 65535}"
        if len(socket_file.encode()) > _MAX_SOCKET_PATH:
            raise ProvisioningError(
                f"the server's socket path {socket_file} is longer than the {_MAX_SOCKET_PATH} bytes a unix "
                "socket may have",
                hint="choose a shorter folder with --atlas-data-dir",
            )
        self.tcp = tcp
        if not tcp:
            self.port = SOCKET_PORT
            self._start_once(detached=detached)
            return
        attempts = 5 if port == 0 else 1
        for attempt in range(attempts):
            self.port = port or free_port()
            try:
                self._start_once(detached=detached)
                return
            except _PortTaken:
                if attempt == attempts - 1:
                    if port:
                        raise PortInUseError(
                            f"port {port} on 127.0.0.1 is already in use, so the test server cannot start",
                            hint="choose a free port with --atlas-port (ini atlas_port), or leave it "
                            "unset (0) to let pytest-atlas pick one",
                        ) from None
                    raise ProvisioningError(
                        "could not find a free port for the test server after 5 attempts",
                        hint="set a free port with --atlas-port",
                    ) from None

    def _write_config(self) -> Path:
        run = self.run
        hba = run.write_config("pg_hba.conf", hba_rules(tcp=self.tcp, superuser=SUPERUSER))
        ident = run.write_config("pg_ident.conf", ident_map([current_user_name(), self.account.name], SUPERUSER))
        settings = [
            _SERVER_CONF,
            f"listen_addresses = {_quoted('127.0.0.1' if self.tcp else '')}",
            f"port = {self.port}",
            f"unix_socket_directories = {_quoted(str(run.socket_dir))}",
            f"hba_file = {_quoted(str(hba))}",
            f"ident_file = {_quoted(str(ident))}",
        ]
        return run.write_config("postgresql.conf", "\n".join(settings) + "\n")

    def _start_once(self, *, detached: bool) -> None:
        config = self._write_config()
        argv = [str(self.install.postgres), "-D", str(self.run.pgdata), "-c", f"config_file={config}"]
        log = self.run.open_log()
        try:
            offset = os.fstat(log).st_size
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
                env=self.account.env(),
                start_new_session=True,
                preexec_fn=self.account.preexec(die_with_parent=not detached),
            )
        finally:
            os.close(log)
        self.pid = self.process.pid
        started = time.monotonic()
        deadline = started + _READY_TIMEOUT
        delay = 0.002
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self._log_since(offset)
                if "Address already in use" in log_text:
                    raise _PortTaken
                if _NO_SPACE in log_text:
                    raise self.no_space()
                raise ProvisioningError(
                    f"the test server exited while starting (exit code {self.process.returncode}); "
                    f"its log ({self.run.log}) says:\n{_tail(log_text)}",
                    hint="fix what the log names; --atlas-no-cache rebuilds the cluster from scratch",
                )
            if self._ready():
                return
            time.sleep(delay)
            # a warm start is ready in a few tens of milliseconds: look every 2 ms for the first
            # half second (reading postmaster.pid costs microseconds), then back off
            if time.monotonic() - started > 0.5:
                delay = min(delay * 1.5, 0.05)
        self.stop()
        raise ProvisioningError(
            f"the test server did not become ready within {_READY_TIMEOUT:.0f} s; its log says:\n"
            f"{_tail(self._log_since(offset))}",
            hint="the machine may be overloaded; try again, or give an existing server with --atlas-dsn",
        )

    def no_space(self, cluster: int = CLUSTER_SIZE, room: int | None = None) -> NoSpaceError:
        """The error of a data folder that is full (or would be): how much is free there, about how
        much a server needs (its ``cluster``'s files and ``room``, :func:`server_room` by default),
        and how to fix it."""
        room = server_room() if room is None else room
        detail = f"{size_text(cluster)} for the cluster, {size_text(room)} for its WAL and test databases"
        return no_space(self.run.path.parent, cluster + room, no_space_fix(cluster + room), detail=detail)

    def _ready(self) -> bool:
        lines = (read_regular(self.run.pgdata / "postmaster.pid", limit=4096) or "").splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.run.log, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        """The last lines of the server log (for error messages)."""
        return _tail(self._log_since(0))

    def running(self) -> bool:
        """Whether the server process this object started is still running."""
        return self.process is not None and self.process.poll() is None

    def stop(self, *, clean: bool = False) -> None:
        """Stop the server: ``clean`` = fast shutdown with a checkpoint (to cache the cluster),
        otherwise immediate shutdown (the files are about to be removed)."""
        if self.process is None:
            return
        sig = signal.SIGINT if clean else signal.SIGQUIT
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def detach(self) -> None:
        """Forget the child process: the server keeps running after pytest exits."""
        if self.process is not None:
            self.process.returncode = 0  # do not let Popen.__del__ report it as a leak
        self.process = None


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, a failed ``cp``, a server's or initdb's message, a psycopg
    error) says that a file system is full."""
    if isinstance(exc, NoSpaceError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if getattr(exc, "sqlstate", None) == "53100":  # disk_full
        return True
    return _NO_SPACE in str(exc)


class _PortTaken(Exception):
    pass


class PortInUseError(ProvisioningError):
    """The port given with --atlas-port is taken by another program."""


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept) or "    (empty log)"
