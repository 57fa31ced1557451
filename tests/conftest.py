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
import socket
import threading
from collections.abc import Callable, Iterator

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
# No deadline: a deadline is a timed assertion, and on a loaded 2-core CI machine an example of a
# docs page (run in this process by pytester) took longer than 200 ms once. What must not be slow
# inside an example is checked by its cause (tests/contracts/test_hypothesis_speed.py).
settings.register_profile("pytest-atlas-suite", database=None, deadline=None)
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
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """``(port, accepted)``: a server on 127.0.0.1 that accepts connections and never answers (a
    host behind a dead proxy), and the connections it accepted, closed at the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


@pytest.fixture
def password_dsn(atlas_postgres: AtlasPostgres, atlas_database: AtlasDatabase) -> Iterator[Callable[[str], str]]:
    """``password_dsn(password)``: a DSN of the test's database for a role that must give the
    password ``right-pw`` (a server pytest-atlas starts admits roles other than its superuser only
    with their password, scram-sha-256)."""
    role = f"pw_{secrets.token_hex(4)}"
    with atlas_postgres.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right-pw'").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(sql.Identifier(atlas_database.name), sql.Identifier(role))
        )
    params = conninfo_to_dict(atlas_database.dsn)

    def dsn(password: str) -> str:
        return build_url(
            {**{k: str(v) for k, v in params.items() if v is not None}, "user": role, "password": password}
        )

    try:
        yield dsn
    finally:
        with atlas_postgres.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(atlas_database.name), sql.Identifier(role)
                )
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
