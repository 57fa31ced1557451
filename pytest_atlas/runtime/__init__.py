"""Atlas itself, offline: its real runtime writing real rows, with every LLM role scripted.

    from pytest_atlas.runtime import AtlasRuntime

    runtime = AtlasRuntime(dsn)                       # or the atlas_runtime fixture
    sid = runtime.run("Summarise the incident", score=0.42)
    runtime.run("Draft the update", mode="coach")     # the router picks coach
    runtime.run("Crash", fail=True)                   # the agent raises: a failed session

Atlas (``arc-atlas``) is imported on the first run, not with this module. Needs the ``atlas``
extra: ``pip install "pytest-atlas[atlas]"``.
"""

from __future__ import annotations

from pytest_atlas.errors import AtlasRuntimeError, ScriptError
from pytest_atlas.runtime._atlas import SUPPORTED_VERSIONS, atlas_version
from pytest_atlas.runtime._presets import PRESETS, RuntimeHistory
from pytest_atlas.runtime._runtime import AtlasRuntime, RunRecord
from pytest_atlas.runtime._script import MODES, ROLES, LLMCall, ProviderError, Reply, Script
from pytest_atlas.runtime._settings import ROLE_MODELS

__all__ = [
    "MODES",
    "PRESETS",
    "ROLES",
    "ROLE_MODELS",
    "SUPPORTED_VERSIONS",
    "AtlasRuntime",
    "AtlasRuntimeError",
    "LLMCall",
    "ProviderError",
    "Reply",
    "RunRecord",
    "RuntimeHistory",
    "Script",
    "ScriptError",
    "atlas_version",
]
