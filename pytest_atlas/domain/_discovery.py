"""Discovery runs: ``discovery_runs.payload`` and ``.metadata``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pytest_atlas.domain._common import Doc, epoch_seconds, iso, model_name
from pytest_atlas.domain._source import Source

__all__ = ["build_discovery_metadata", "build_discovery_payload"]

_ATLAS_EVENTS = ("env_reset", "plan_generated", "env_action", "env_step", "final_answer_submitted")


def _summary(src: Source, value_kind: int) -> Doc:
    if value_kind == 0:
        return {"python_type": "NoneType"}
    if value_kind == 1:
        return {
            "python_type": "dict",
            "shape": {"kind": "mapping", "keys": ["obs", "goal"][: src.integer(1, 2)]},
            "example": {"obs": src.words(1, 3)},
        }
    if value_kind == 2:
        return {
            "python_type": "list",
            "shape": {"kind": "sequence", "length": src.integer(0, 8)},
            "example_item": src.integer(0, 9),
        }
    return {"python_type": "str", "example": src.words(1, 3)}


def build_discovery_payload(src: Source, moment: datetime, *, empty: bool | None = None) -> Doc:
    """The discovery-worker result; the skip path has the same keys with empty values."""
    capabilities = {
        "llm": {
            "provider": src.pick(("openai", "anthropic", None)),
            "model": src.maybe(0.8, lambda: model_name(src)),
            "source": src.pick(("env", "config", None)),
        }
    }
    if empty is True or (empty is None and src.flag(0.1)):
        return {
            "plan": None,
            "final_answer": None,
            "telemetry": {"events": [], "agent_emitted": False},
            "reward": {"total": None, "last": None, "steps": 0},
            "schema": {},
            "history": [],
            "capabilities": capabilities,
        }
    steps = src.integer(0, 5)
    rewards = [src.maybe(0.7, lambda: round(src.real(-1.0, 1.0), 4)) for _ in range(steps)]
    numeric = [r for r in rewards if r is not None]
    start = epoch_seconds(moment)
    events: list[Doc] = []
    for index in range(src.integer(0, 6)):
        origin = src.pick(("atlas", "agent"))
        event_type = src.pick(_ATLAS_EVENTS) if origin == "atlas" else src.pick(("thought", "tool_call", "custom"))
        events.append(
            {
                "type": event_type,
                "origin": origin,
                "payload": {"step": index},
                "timestamp": start + index * src.real(0.01, 5.0),
            }
        )
    history = [
        {
            "step_index": index + 1,
            "observation": {"obs": src.words(1, 3)},
            "action": src.pick((None, "noop", {"move": src.integer(0, 3)})),
            "reward": rewards[index],
            "done": index == steps - 1,
            "info": {},
            "submit": index == steps - 1 and src.flag(0.5),
            "metadata": {},
        }
        for index in range(steps)
    ]
    plan: Any = src.pick((None, {"steps": ["observe", "act"]}, "repr: <Plan object>"))
    return {
        "plan": plan,
        "final_answer": src.maybe(0.7, lambda: src.sentence(2, 8)),
        "telemetry": {"events": events, "agent_emitted": any(e["origin"] == "agent" for e in events)},
        "reward": {
            "total": float(sum(numeric)) if steps else None,  # 0.0, not null, when no step gave a number
            "last": numeric[-1] if numeric else None,
            "steps": steps,
        },
        "schema": {
            "observation": _summary(src, src.integer(1, 3)),
            "action": _summary(src, src.integer(0, 3)),
            "reward": {"python_type": src.pick(("float", "unknown"))},
        },
        "history": history,
        "capabilities": capabilities,
    }


def _target(src: Source, role: str) -> Doc:
    module = src.pick(("app.env", "agents.main", "harness.core"))
    target: Doc = {
        "selection": src.pick(("candidate", "factory")),
        "kwargs": {} if src.flag(0.7) else {"seed": src.integer(0, 99)},
        "config": None if src.flag(0.6) else {"max_steps": src.integer(1, 50)},
        "role": role,
        "module": module,
        "qualname": src.pick(("Env", "Agent", "make_env", "build_agent")),
        "file": f"{module.replace('.', '/')}.py",
        "hash": src.maybe(0.8, lambda: src.hexdigits(64)),
        "auto_wrapped": src.flag(0.2),
    }
    if target["selection"] == "candidate":
        names = (
            "decorated",
            "reset",
            "step",
            "close",
            "render",
            "plan",
            "act",
            "summarize",
            "heuristic",
            "gym_base",
            "agent_base",
        )
        target.update(
            {
                "score": src.integer(0, 40),
                "reason": src.sentence(2, 6),
                "is_factory": src.flag(0.2),
                "signals": {
                    "instantiations": src.maybe(0.5, lambda: src.integer(0, 5)),
                    "abstract_methods": [],
                    "prompt_literals": src.integer(0, 9),
                    "config_literals": src.integer(0, 9),
                },
                "capabilities": {name: src.flag() for name in names[: src.integer(0, len(names))]},
            }
        )
    else:
        target["factory"] = {"module": module, "qualname": target["qualname"]}
    return target


def build_discovery_metadata(src: Source, moment: datetime, *, source: str, project_root: str, payload: Doc) -> Doc:
    """Metadata of a ``runtime`` run (capabilities + artifact path) or a ``discovery`` run (full record)."""
    if source == "runtime":
        return {"capabilities": payload.get("capabilities", {}), "run_artifact": f"{project_root}/.atlas/runs/run.json"}
    plan_description = json.dumps(payload.get("plan"), indent=2) if payload.get("plan") is not None else ""
    capabilities: Doc = {
        "control_loop": src.pick(("self", "tool")),
        "supports_stepwise": src.flag(),
        "plan_description": plan_description,
        "telemetry_agent_emitted": bool(payload.get("telemetry", {}).get("agent_emitted")),
        "preferred_mode": src.pick(("auto", "paired")),
    }
    if src.flag(0.5):
        capabilities["llm"] = {**payload["capabilities"]["llm"], "inferred": src.flag()}
    metadata: Doc = {
        "version": 1,
        "generated_at": iso(moment),
        "project_root": project_root,
        "environment": _target(src, "environment"),
        "agent": _target(src, "agent"),
        "capabilities": capabilities,
        "schema": payload.get("schema"),
        "reward": payload.get("reward"),
        "telemetry": payload.get("telemetry"),
        "sample_history": payload.get("history"),
        "plan_preview": payload.get("plan"),
        "final_answer_sample": payload.get("final_answer"),
        "preflight": {"notes": [src.sentence(2, 6) for _ in range(src.integer(0, 2))], "auto_skip": src.flag(0.1)},
    }
    if src.flag(0.3):
        metadata["synthesis"] = {"notes": [src.sentence(2, 6)]}
    return metadata
