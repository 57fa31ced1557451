"""Shared test set-up.

Hypothesis runs without an example database (see below), so a fresh clone and a long-used checkout
behave the same.

pytester gives every inner pytest run its own HOME, which would give each one an empty cluster
cache (a cold start). Pin the cache to this run's cache folder so that inner runs get warm starts,
unless a test sets its own --atlas-cache-dir. Inner runs never inherit $ATLAS_TEST_DSN.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pytest_atlas import AtlasDatabase, AtlasPostgres
from pytest_atlas._dsn import build_url
from pytest_atlas.db._cache import default_cache_dir

os.environ.setdefault("XDG_CACHE_HOME", str(default_cache_dir().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # importing atlas must not go to the network

# The importlib_metadata backport (which importing atlas pulls in) adds a finder to sys.meta_path
# when first imported. Imported inside an in-process pytester run, the module is dropped again by
# pytester's sys.modules snapshot but its finder stays, and every later inner run finds no plugin
# entry points ("fixture 'atlas_db' not found"). Import it here, once, outside any snapshot.
with contextlib.suppress(ImportError):  # not installed: nothing to pin
    import importlib_metadata  # noqa: F401

# The suite's verdict must not depend on what an earlier run left in a local .hypothesis folder:
# a failing example found once was replayed on every later run of that checkout, while CI (a fresh
# clone) never saw it. No example database: every run explores afresh, the same way everywhere.
settings.register_profile("pytest-atlas-suite", database=None)
settings.load_profile("pytest-atlas-suite")


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The builtin pytester, with inner runs configured like ours (no pytest-asyncio warning)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
    # inner runs start their own server unless a test gives them --atlas-dsn
    monkeypatch.delenv("ATLAS_TEST_DSN", raising=False)
    monkeypatch.delenv("ATLAS_TARGET_DSN", raising=False)
    return pytester


@pytest.fixture
def password_dsn(atlas_postgres: AtlasPostgres, atlas_database: AtlasDatabase) -> Iterator[Callable[[str], str]]:
    """``password_dsn(password)``: a DSN of the test's database for a role that must give the
    password ``right-pw``. The run's own server trusts local connections, so the role gets
    ``scram-sha-256`` lines at the top of the server's pg_hba.conf for the length of the test."""
    if not atlas_postgres.owned or atlas_postgres.data_dir is None:
        pytest.skip("needs a server this run started (its pg_hba.conf is changed for one role)")
    role = f"pw_{secrets.token_hex(4)}"
    hba = atlas_postgres.data_dir / "pg_hba.conf"
    original = hba.read_text()
    with atlas_postgres.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-pw'").format(sql.Identifier(role)))
        hba.write_text(f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n{original}")
        admin.execute("SELECT pg_reload_conf()")
    params = conninfo_to_dict(atlas_database.dsn)

    def dsn(password: str) -> str:
        return build_url(
            {**{k: str(v) for k, v in params.items() if v is not None}, "user": role, "password": password}
        )

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the reload is asynchronous: wait until the server asks
        try:
            psycopg.connect(dsn("wrong"), connect_timeout=2).close()
        except psycopg.OperationalError as exc:
            if "password" in str(exc):
                break
        time.sleep(0.05)
    try:
        yield dsn
    finally:
        hba.write_text(original)
        with atlas_postgres.connect(autocommit=True) as admin:
            admin.execute("SELECT pg_reload_conf()")
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
