"""The clone pool: fresh databases ahead of need, used ones dropped behind, disk use bounded."""

from __future__ import annotations

import pytest

from pytest_atlas.db import AtlasPostgres, ClonePool, _clones
from pytest_atlas.db._clones import _MAX_PENDING_DROPS
from pytest_atlas.errors import ProvisioningError, ServerUnavailable


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


def test_a_fault_that_passes_is_told_then_forgotten(
    atlas_postgres: AtlasPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone stays connected to the template, so cloning it fails (55006, a fault that passes):
    after the retry budget the waiting test is told; once the template is free, the next one is served.
    (PostgreSQL itself waits 5 s for the template's other sessions before it fails.)"""
    monkeypatch.setattr(_clones, "_FIRST_BUDGET", 0.5)
    monkeypatch.setattr(_clones, "_RETRY_PAUSE", 0.05)
    with atlas_postgres.connect(autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS busy_template")
        admin.execute("CREATE DATABASE busy_template")
    blocker = atlas_postgres.connect("busy_template")
    pool = ClonePool(atlas_postgres, "busy_template", "busytest_")
    try:
        with pytest.raises(ServerUnavailable, match="is being accessed by other users") as info:
            pool.acquire()
        assert "Later tests try again" in str(info.value)
        blocker.close()
        name = pool.acquire()
        with atlas_postgres.connect(name) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        pool.release(name)
    finally:
        pool.close(drop=True)
        blocker.close()
        with atlas_postgres.connect(autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS busy_template")
