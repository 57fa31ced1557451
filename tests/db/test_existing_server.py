"""An existing server given by DSN: the plugin creates uniquely named databases there, drops only
those and never touches anything it did not create (reaping dead runs' databases: test_liveness)."""

from __future__ import annotations

import pytest

from pytest_atlas.db import AtlasPostgres

TESTS = """
import psycopg

def test_a(atlas_db, atlas_postgres):
    assert atlas_postgres.owned is False
    assert "existing server" in atlas_postgres.source
    name = atlas_db.execute("SELECT current_database()").fetchone()[0]
    assert name.startswith("pytest_atlas_")
    atlas_db.execute("INSERT INTO sessions (task) VALUES ('a')")
    atlas_db.commit()

def test_b(atlas_db, atlas_tx, atlas_dsn):
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    atlas_tx.execute("INSERT INTO sessions (task) VALUES ('tx')")
    with psycopg.connect(atlas_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
"""


def databases(server: AtlasPostgres) -> set[str]:
    with server.connect(autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.fixture
def users_database(atlas_postgres: AtlasPostgres) -> str:
    """A database that belongs to the user: the plugin must never touch it."""
    with atlas_postgres.connect(autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS users_own_data")
        conn.execute("CREATE DATABASE users_own_data")
    with atlas_postgres.connect("users_own_data", autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
        conn.execute("INSERT INTO precious VALUES (42)")
    return "users_own_data"


def test_runs_on_an_existing_server_and_cleans_up_only_its_own(
    pytester: pytest.Pytester, atlas_postgres: AtlasPostgres, users_database: str
) -> None:
    before = databases(atlas_postgres)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--atlas-dsn", atlas_postgres.dsn())
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["atlas: existing server postgresql://postgres@/postgres?host=*&port=* (from --atlas-dsn): PostgreSQL 1*"]
    )
    assert databases(atlas_postgres) == before
    with atlas_postgres.connect(users_database) as conn:
        assert conn.execute("SELECT x FROM precious").fetchall() == [(42,)]


def test_dsn_from_environment_and_xdist(
    pytester: pytest.Pytester, atlas_postgres: AtlasPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = databases(atlas_postgres)
    monkeypatch.setenv("ATLAS_TEST_DSN", atlas_postgres.dsn())
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["atlas: existing server * (from $ATLAS_TEST_DSN): PostgreSQL 1*"])
    assert databases(atlas_postgres) == before
