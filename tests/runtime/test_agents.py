"""The agent Atlas runs: the caller's own, in every form Atlas accepts one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas.errors import AtlasRuntimeError, InvalidArgument, ScriptError
from pytest_atlas.runtime import AtlasRuntime, Reply

from . import byoa
from .helpers import session, table


async def async_agent(prompt: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": "done", "result": {"deliverable": "async answer", "artifacts": {"prompt_chars": len(prompt)}}}


class AdapterObject:
    """An object with ainvoke(), like Atlas's own AgentAdapter subclasses."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def ainvoke(self, prompt: str, metadata: dict[str, Any] | None = None) -> str:
        self.prompts.append(prompt)
        return "adapter answer"


def test_a_plain_function(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    byoa.CALLS.clear()
    runtime = AtlasRuntime(atlas_dsn, agent=byoa.agent)
    sid = runtime.run("Find the owner")
    assert session(atlas_db, sid)["final_answer"] == "BYOA: Find the owner"
    assert byoa.CALLS[0]["task_payload"] == "Find the owner" and byoa.CALLS[0]["step_payload"]["step_id"] == 1
    runtime.close()


def test_an_async_function_and_its_structured_answer(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    runtime = AtlasRuntime(atlas_dsn, agent=async_agent)
    sid = runtime.run("Answer asynchronously")
    assert session(atlas_db, sid)["final_answer"] == "async answer"
    step = table(atlas_db, "step_results", "WHERE session_id = %s", (sid,))[0]
    assert step["metadata"]["status"] == "done" and step["metadata"]["artifacts"]["prompt_chars"] > 0


def test_an_adapter_object(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    adapter = AdapterObject()
    sid = AtlasRuntime(atlas_dsn, agent=adapter).run("Use the adapter")
    assert session(atlas_db, sid)["final_answer"] == "adapter answer"
    assert "Use the adapter" in adapter.prompts[0]


def test_a_module_path(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    sid = AtlasRuntime(atlas_dsn, agent="tests.runtime.byoa:agent").run("By path")
    assert session(atlas_db, sid)["final_answer"] == "BYOA: By path"


def test_an_atlas_agent_config_section(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    section = {
        "type": "python",
        "name": "my-harness-agent",
        "system_prompt": "You help.",
        "import_path": "tests.runtime.byoa",
        "attribute": "agent",
    }
    runtime = AtlasRuntime(atlas_dsn, agent=section)
    sid = runtime.run("Configured", mode="coach")
    assert session(atlas_db, sid)["final_answer"] == "BYOA: Configured"
    with pytest.raises(InvalidArgument, match="with an agent from an Atlas config"):
        runtime.run("Cannot fail on request", fail=True)


def test_a_yaml_config_of_the_users(atlas_dsn: str, atlas_db: psycopg.Connection[Any], tmp_path: Path) -> None:
    config = tmp_path / "atlas.yaml"
    config.write_text(
        """
agent:
  type: python
  name: yaml-agent
  system_prompt: You help.
  import_path: tests.runtime.byoa
  attribute: agent
teacher:
  llm: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
rim:
  small_model: {provider: gemini, model: gemini/gemini-2.5-flash, api_key_env: GEMINI_API_KEY}
  large_model: {provider: gemini, model: gemini/gemini-2.5-pro, api_key_env: GEMINI_API_KEY}
storage:
  database_url: postgresql://nobody@192.0.2.1/never-used
runtime_safety:
  review: {require_approval: false}
"""
    )
    runtime = AtlasRuntime(atlas_dsn, config=config)
    sid = runtime.run("From YAML", uncertainty=0.9)
    row = session(atlas_db, sid)
    assert row["final_answer"] == "BYOA: From YAML" and row["review_status"] == "approved"
    assert {entry["model"] for entry in row["reward_audit"]} == {"gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro"}


def test_a_litellm_agent_is_a_role_to_script(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    section = {
        "type": "litellm",
        "name": "llm-agent",
        "system_prompt": "You help.",
        "llm": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    }
    runtime = AtlasRuntime(atlas_dsn, agent=section)
    with pytest.raises(ScriptError) as info:
        runtime.run("Needs the agent")
    assert info.value.role == "agent" and "no response is scripted" in str(info.value)
    assert session(atlas_db, info.value.session_id or 0)["status"] == "failed"

    scripted = runtime.using(
        responses={
            "agent": Reply("LLM agent answer", usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
        }
    )
    sid = scripted.run("Answer it")
    row = session(atlas_db, sid)
    assert row["final_answer"] == "LLM agent answer"
    assert row["metadata"]["token_usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "calls": 1,
    }
    assert scripted.last.calls_of("agent")[0].model == "gpt-4o-mini"


def test_an_agent_that_calls_a_provider_itself_is_stopped(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    async def sneaky(prompt: str, metadata: dict[str, Any] | None = None) -> str:
        import litellm

        response = await litellm.acompletion(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        return str(response)

    with pytest.raises(ScriptError) as info:
        AtlasRuntime(atlas_dsn, agent=sneaky).run("Sneak out")
    assert info.value.role == "unknown" and "sneaky" in str(info.value)


def test_an_agent_that_raises(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    def broken(prompt: str, metadata: dict[str, Any] | None = None) -> str:
        raise ValueError("the harness is broken")

    runtime = AtlasRuntime(atlas_dsn, agent=broken)
    with pytest.raises(AtlasRuntimeError, match=r"failed \(session \d+ is 'failed'\).*the harness is broken"):
        runtime.run("Break")
    assert table(atlas_db, "sessions")[0]["status"] == "failed"
    sid = runtime.run("Break on purpose", fail="boom")  # fail= with a function agent: it raises instead
    assert session(atlas_db, sid)["status"] == "failed"


def tool_agent(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    """Calls the count_rows tool once, then answers."""
    meta = metadata or {}
    if "tool" in meta:
        return json.dumps({"rows": 3})
    if "TOOL:" in prompt:
        return "There are 3 rows."
    return json.dumps({"content": "", "tool_calls": [{"name": "count_rows", "arguments": {"table": "orders"}}]})


TOOLS = [
    {
        "name": "count_rows",
        "description": "Count the rows of a table",
        "parameters": {"type": "object", "properties": {"table": {"type": "string"}}, "required": ["table"]},
    }
]


def test_atlas_0_1_16_fails_a_session_whose_agent_calls_a_tool(
    atlas_dsn: str, atlas_db: psycopg.Connection[Any]
) -> None:
    # Atlas's student serialises LangChain tool calls (TypedDicts) by attribute (call.name), which raises:
    # a real Atlas 0.1.16 limitation, and the failure path it takes is what a harness author gets
    runtime = AtlasRuntime(atlas_dsn, agent=tool_agent, config={"agent": {"tools": TOOLS}})
    with pytest.raises(AtlasRuntimeError, match="'dict' object has no attribute 'name'") as info:
        runtime.run("How many orders?")
    assert "is 'failed'" in str(info.value)
    (row,) = table(atlas_db, "sessions")
    assert row["status"] == "failed" and row["final_answer"] == ""
    handles = row["metadata"]["learning_usage"]["detectors"]
    assert isinstance(handles, dict)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agent": 42}, "agent must be a function"),
        ({"agent": "no_colon"}, "module:function"),
        ({"agent": "tests.runtime.byoa:missing"}, "cannot import agent"),
        ({"agent": {"name": "x"}}, "needs 'type'"),
        ({"config": 3}, "YAML path or a mapping"),
        ({"config": "/nonexistent/atlas.yaml"}, "does not exist"),
        ({"responses": {"judges": {}}}, "unknown role in responses: judges"),
        ({"config": {"rim": {"variance_threshold": -1}}}, "Atlas rejects"),
    ],
)
def test_bad_arguments_are_refused_up_front(atlas_dsn: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((InvalidArgument, AtlasRuntimeError), match=message):
        AtlasRuntime(atlas_dsn, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": 1.5}, "score=1.5"),
        ({"score": True}, "score=True"),
        ({"uncertainty": float("nan")}, "uncertainty=nan"),
        ({"mode": "escalate"}, "mode='escalate'"),
        ({"fail": 3}, "fail=3"),
        ({"metadata": {1: "x"}}, "metadata="),
        ({"learning_key": ""}, "learning_key=''"),
        ({"responses": {"teacher": None, "student": "x"}}, "unknown role in responses: student"),
    ],
)
def test_bad_run_arguments_are_refused_before_atlas_runs(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        atlas_runtime.run("Never runs", **kwargs)
    assert table(atlas_db, "sessions") == []
