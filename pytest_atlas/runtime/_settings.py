"""The Atlas configuration of a scripted run: pytest-atlas's defaults, the caller's config over
them, then what a run must have (the test's database, placeholder API-key variables, routing)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pytest_atlas._dsn import Dsn
from pytest_atlas.runtime._agent import ADAPTER
from pytest_atlas.runtime._atlas import PLACEHOLDER_KEY_ENV

__all__ = ["ROLE_MODELS", "base_config", "is_scripted", "merge", "run_config"]

#: the model name each role's LLM block gets by default (it shows in ``reward_audit[].model``)
ROLE_MODELS: dict[str, str] = {
    "router": "pytest-atlas/router",
    "judge": "pytest-atlas/judge",
    "arbiter": "pytest-atlas/arbiter",
    "teacher": "pytest-atlas/teacher",
    "synthesizer": "pytest-atlas/synthesizer",
}
#: where each role's LLM parameters sit in an Atlas config
_LLM_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("teacher", "llm"),
    ("rim", "small_model"),
    ("rim", "large_model"),
    ("learning", "llm"),
    ("adaptive_teaching", "probe", "llm"),
    ("agent", "llm"),
)


def _llm(role: str) -> dict[str, Any]:
    return {"provider": "openai", "model": ROLE_MODELS[role], "api_key_env": PLACEHOLDER_KEY_ENV}


def _defaults() -> dict[str, Any]:
    return {
        "agent": dict(ADAPTER),
        "teacher": {"llm": _llm("teacher")},
        "rim": {"small_model": _llm("judge"), "large_model": _llm("arbiter")},
        "learning": {"llm": _llm("synthesizer")},
        "adaptive_teaching": {"probe": {"llm": _llm("router")}},
    }


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def base_config(user: Mapping[str, Any] | None, *, agent: Mapping[str, Any] | None, scripted: bool) -> dict[str, Any]:
    """The runtime's configuration before a run: the defaults, ``user`` (an Atlas config, whole or
    partial) merged over them, and the agent section.

    The agent is ``agent`` (an Atlas ``agent:`` section) when given; pytest-atlas's Python adapter
    (the echo agent, or a function of the caller's) when ``scripted`` or when ``user`` has no
    agent of its own (an ``agent`` section without ``type`` then only adjusts ``name``,
    ``system_prompt`` and ``tools``); else the agent of ``user``.
    """
    user = dict(user or {})
    user_agent = dict(user.pop("agent", None) or {})
    config = merge(_defaults(), user)
    if agent is not None:
        config["agent"] = copy.deepcopy(dict(agent))
    elif scripted or "type" not in user_agent:
        adjustments = {key: user_agent[key] for key in ("name", "system_prompt", "tools") if key in user_agent}
        config["agent"] = {**ADAPTER, **copy.deepcopy(adjustments)}
    else:
        config["agent"] = copy.deepcopy(user_agent)
    return config


def is_scripted(config: Mapping[str, Any]) -> bool:
    """Whether the config's agent is pytest-atlas's Python adapter."""
    agent = config.get("agent") or {}
    return bool(agent.get("import_path") == ADAPTER["import_path"] and agent.get("attribute") == ADAPTER["attribute"])


def _block(config: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = config
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, dict) else None


def run_config(base: Mapping[str, Any], dsn: Dsn, *, mode: str | None, routed: bool) -> dict[str, Any]:
    """The configuration of one run: ``base`` on the test's database (``storage.database_url`` is
    the :class:`Dsn` itself, printed redacted: :func:`~._atlas.plain_config` gives what Atlas reads), every
    role's API key read from
    the placeholder variable (no real key is ever handed to a client), and routing for ``mode``:
    the router is asked (``routed``: the learning key has history, so Atlas consults it) or,
    when Atlas would not consult it, ``mode_override``."""
    config = copy.deepcopy(dict(base))
    storage = dict(config.get("storage") or {})
    storage.update(database_url=dsn, apply_schema_on_connect=False)  # the wheel has no schema.sql
    config["storage"] = storage
    probe = config.setdefault("adaptive_teaching", {}).setdefault("probe", {})
    if probe.get("llm") is None:  # Atlas would fall back to its own default router model and key
        probe["llm"] = _llm("router")
    for path in _LLM_BLOCKS:
        block = _block(config, path)
        if block is not None:
            block["api_key_env"] = PLACEHOLDER_KEY_ENV
    if mode is not None:
        adaptive = config.setdefault("adaptive_teaching", {})
        adaptive["enabled"] = True
        adaptive["mode_override"] = None if routed else mode
        orchestration = config.setdefault("orchestration", {})
        orchestration["forced_mode"] = None
    return config
