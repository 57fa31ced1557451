"""Shared test set-up.

pytester gives every inner pytest run its own HOME, which would give each one an empty cluster
cache (a cold start). Pin the cache to this run's cache folder so that inner runs get warm starts,
unless a test sets its own --atlas-cache-dir. Inner runs never inherit $ATLAS_TEST_DSN.
"""

from __future__ import annotations

import os

import pytest

from pytest_atlas.db._cache import default_cache_dir

os.environ.setdefault("XDG_CACHE_HOME", str(default_cache_dir().parent))
# tests import Atlas, which imports litellm: its bundled model list, no download at import (or at exit)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The builtin pytester, with inner runs configured like ours (no pytest-asyncio warning)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
    # inner runs start their own server unless a test gives them --atlas-dsn
    monkeypatch.delenv("ATLAS_TEST_DSN", raising=False)
    return pytester
