"""One local PostgreSQL cluster: initdb, start, wait until ready, stop.

pytest-postgresql's executor is not used here: it drives ``pg_ctl``, which refuses to run as root
and polls for readiness ten times a second (about 100 ms per start and per stop), and it leaves the
server running if the test process is killed. This module starts ``postgres`` directly as a child of
the pytest process (as an unprivileged account when pytest is root), watches ``postmaster.pid`` for
the ``ready`` status every few milliseconds, and asks the kernel to shut the server down if the
pytest process dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time

from pytest_atlas.db._account import ServerAccount
from pytest_atlas.db._binaries import PgInstall
from pytest_atlas.db._runtime import RunDir
from pytest_atlas.errors import ProvisioningError

__all__ = ["SUPERUSER", "LocalCluster", "PortInUseError", "free_port"]

#: the superuser created by initdb in every cluster the plugin starts
SUPERUSER = "postgres"

#: settings of a throwaway test server: no durability, no background work that competes with tests
_SERVER_CONF = """
# --- pytest-atlas: throwaway test server, durability off ---
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
"""

_READY_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (start() retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """A cluster in ``run.pgdata``, run by ``account`` with the binaries of ``install``."""

    def __init__(self, install: PgInstall, account: ServerAccount, run: RunDir) -> None:
        self.install = install
        self.account = account
        self.run = run
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    # -- creating ----------------------------------------------------------------------------------

    def initdb(self) -> None:
        """Initialise an empty cluster (no fsync, C locale, UTF-8, 1 MB WAL segments)."""
        args = [
            str(self.install.initdb),
            "-D",
            str(self.run.pgdata),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--wal-segsize=1",
        ]
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
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ProvisioningError(
                f"initdb failed ({self.install.initdb}, as {self.account.name!r}):\n{tail}",
                hint="check that the data folder is writable by that account (--atlas-data-dir) and "
                "that the PostgreSQL installation is complete",
            )
        with open(self.run.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(_SERVER_CONF)

    # -- running -----------------------------------------------------------------------------------

    def start(self, port: int = 0, *, detached: bool = False) -> None:
        """Start the server on 127.0.0.1:``port`` (0 = a free port) and wait until it accepts
        connections. ``detached`` servers outlive pytest (``--atlas-keep-db``)."""
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

    def _start_once(self, *, detached: bool) -> None:
        argv = [
            str(self.install.postgres),
            "-D",
            str(self.run.pgdata),
            "-p",
            str(self.port),
            "-k",
            str(self.run.socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
        ]
        with contextlib.suppress(FileNotFoundError):
            (self.run.pgdata / "postmaster.pid").unlink()
        with open(self.run.log, "ab") as log:
            offset = log.tell()
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
        self.pid = self.process.pid
        deadline = time.monotonic() + _READY_TIMEOUT
        delay = 0.002
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self._log_since(offset)
                if "Address already in use" in log_text:
                    raise _PortTaken
                raise ProvisioningError(
                    f"the test server exited while starting (exit code {self.process.returncode}); "
                    f"its log ({self.run.log}) says:\n{_tail(log_text)}",
                    hint="fix what the log names; --atlas-no-cache rebuilds the cluster from scratch",
                )
            if self._ready():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        self.stop()
        raise ProvisioningError(
            f"the test server did not become ready within {_READY_TIMEOUT:.0f} s; its log says:\n"
            f"{_tail(self._log_since(offset))}",
            hint="the machine may be overloaded; try again, or give an existing server with --atlas-dsn",
        )

    def _ready(self) -> bool:
        try:
            lines = (self.run.pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.run.log, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

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


class _PortTaken(Exception):
    pass


class PortInUseError(ProvisioningError):
    """The port given with --atlas-port is taken by another program."""


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept) or "    (empty log)"
