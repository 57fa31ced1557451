"""The agent Atlas runs: the built-in echo agent, or the caller's own, behind one Python adapter.

Atlas's config names a Python adapter (``import_path: pytest_atlas.runtime._agent``, attribute
``call``); Atlas's own ``PythonAdapter`` imports this module and calls :func:`call` the way it calls
any Bring-Your-Own-Agent function, with ``prompt=`` and ``metadata=``. :func:`call` hands the call
to the run's agent: the echo agent, a function of the caller's or an object with ``ainvoke``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ADAPTER", "AGENT", "AgentPlan", "ScriptedFailure", "call", "is_agent"]

#: the config section Atlas gets for a scripted agent (``name``/``system_prompt``/``tools`` may be overridden)
ADAPTER: dict[str, Any] = {
    "type": "python",
    "name": "pytest-atlas-agent",
    "system_prompt": "You are the agent under test. Answer the task.",
    "import_path": "pytest_atlas.runtime._agent",
    "attribute": "call",
}

_PLAN = [
    {"id": 1, "description": "Gather the facts the task needs", "depends_on": []},
    {"id": 2, "description": "Write the answer", "depends_on": [1]},
]


class ScriptedFailure(RuntimeError):
    """What the agent raises in a run with ``fail=``: the session ends ``failed``."""


@dataclass(frozen=True)
class AgentPlan:
    """The agent of one run: ``target`` (``None``: the echo agent), what the echo agent answers and
    plans, and whether the agent fails (``fail``: the message)."""

    target: Any
    task: str
    answer: Any
    plan: Sequence[Mapping[str, Any]] | None
    fail: str | None


AGENT: contextvars.ContextVar[AgentPlan | None] = contextvars.ContextVar("pytest_atlas_agent", default=None)


def is_agent(value: Any) -> bool:
    """A callable ``(prompt, metadata)`` or an object with an ``ainvoke(prompt, metadata)`` coroutine."""
    return callable(value) or inspect.iscoroutinefunction(getattr(value, "ainvoke", None))


def _echo(plan: AgentPlan, metadata: Mapping[str, Any]) -> Any:
    if metadata.get("mode") == "planning":
        return json.dumps({"steps": [dict(step) for step in (plan.plan or _PLAN)]})
    tool = metadata.get("tool")
    if isinstance(tool, Mapping):
        return json.dumps({"tool": tool.get("name"), "result": "ok"})
    if plan.answer is None:
        return f"Scripted answer: {plan.task}"
    return plan.answer


async def call(prompt: str, metadata: dict[str, Any] | None = None) -> Any:
    """The Bring-Your-Own-Agent function Atlas calls (through its Python adapter)."""
    plan = AGENT.get()
    if plan is None:
        raise RuntimeError("pytest_atlas.runtime._agent.call runs only inside AtlasRuntime.run()")
    meta: dict[str, Any] = metadata if metadata is not None else {}
    if plan.fail is not None and meta.get("mode") != "planning" and "tool" not in meta:
        raise ScriptedFailure(plan.fail)
    target = plan.target
    if target is None:
        return _echo(plan, meta)
    ainvoke = getattr(target, "ainvoke", None)
    if inspect.iscoroutinefunction(ainvoke):
        return await ainvoke(prompt, meta)
    function: Callable[..., Any] = target
    if inspect.iscoroutinefunction(function):
        return await function(prompt=prompt, metadata=meta)
    # Atlas runs a plain function in a worker thread; so does this
    return await asyncio.to_thread(function, prompt=prompt, metadata=meta)
