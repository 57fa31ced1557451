"""The clone pool: fresh databases ahead of need, used ones dropped behind, disk use bounded."""

from __future__ import annotations

import pytest

from pytest_atlas.db import AtlasPostgres, ClonePool
from pytest_atlas.db._clones import _MAX_PENDING_DROPS
from pytest_atlas.errors import ProvisioningError


def clones(server: AtlasPostgres, prefix: str) -> int:
    with server.connect(autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", (prefix + "%",)).fetchone()
    assert row is not None
    return int(row[0])


def test_used_databases_do_not_pile_up(atlas_postgres: AtlasPostgres) -> None:
    pool = ClonePool(atlas_postgres, "atlas_template", "pooltest_")
    most = 0
    try:
        for _ in range(25):
            name = pool.acquire()
            with atlas_postgres.connect(name) as conn:
                conn.execute("INSERT INTO sessions (task) VALUES ('x')")
                conn.commit()
            pool.release(name)
            most = max(most, clones(atlas_postgres, "pooltest_"))
    finally:
        pool.close(drop=True)
    assert most <= pool.ahead + _MAX_PENDING_DROPS + 2
    assert clones(atlas_postgres, "pooltest_") == 0


def test_clones_are_fresh_copies_of_the_template(atlas_postgres: AtlasPostgres) -> None:
    pool = ClonePool(atlas_postgres, "atlas_template", "pooltest2_")
    try:
        first = pool.acquire()
        with atlas_postgres.connect(first) as conn:
            conn.execute("INSERT INTO sessions (task) VALUES ('x')")
            conn.commit()
        second = pool.acquire()
        assert second != first
        with atlas_postgres.connect(second) as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        pool.release(first)
        pool.release(second)
    finally:
        pool.close(drop=True)


def test_a_pool_on_a_missing_template_fails_clearly(atlas_postgres: AtlasPostgres) -> None:
    pool = ClonePool(atlas_postgres, "no_such_template", "pooltest3_")
    try:
        with pytest.raises(
            ProvisioningError,
            match=r"could not create a test database from no_such_template.*"
            r'template database "no_such_template" does not exist',
        ):
            pool.acquire()
    finally:
        pool.close(drop=True)
