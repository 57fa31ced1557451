"""Atlas's runtime along every path it has, into one database: the rows the census and the schema
tests read. Each block says which path it takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_atlas.errors import AtlasRuntimeError
from pytest_atlas.runtime import AtlasRuntime, LLMCall, ProviderError, Reply

CALLER = {
    "source": "atlas run",
    "tags": ["payments", "eu"],
    "incident_id": "INC-42",
    "incident_tags": ["latency"],
    "tenant_id": "acme",
    "project_root": "/srv/harness",
    "task_num": 3,
}
TOOLS = [
    {
        "name": "count_rows",
        "description": "Count the rows of a table",
        "parameters": {"type": "object", "properties": {"table": {"type": "string"}}, "required": ["table"]},
    }
]


RICH_CALLER = {
    "summary": "Checkout latency in the EU region",
    "risks": [{"category": "availability", "description": "Checkout may time out", "severity": "sev1"}, "Data loss"],
    "signals": [
        {"name": "p99_ms", "value": 2300, "confidence": 0.8, "annotation": "from the dashboard"},
        {"name": "error_rate", "value": 0.02},
        {"name": "owner", "value": None},
    ],
    "persona_references": [
        {"id": "sre-oncall", "rationale": "owns checkout", "weight": 2.0, "tags": ["oncall"]},
        "payments-lead",
    ],
    "embeddings": {"task": {"vector": [0.1, 0.2], "model": "embed-1", "note": "task text"}, "title": [0.3]},
    "fingerprint_hint": "checkout-latency",
    "metadata": {"ticket_id": "OPS-9"},
}


class _BrokenEvaluator:
    async def aevaluate_session(self, trajectory: Any) -> Any:
        raise RuntimeError("the reward service is down")


def broken_evaluator(config: Any = None, reward_config: Any = None) -> _BrokenEvaluator:
    """A Bring-Your-Own reward evaluator (adaptive_teaching.reward.type: python) that fails."""
    return _BrokenEvaluator()


def _usage_agent(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    """A Python agent that reports token usage the way the bridge reads it."""
    if (metadata or {}).get("mode") == "planning":
        return json.dumps({"steps": [{"id": 1, "description": "Answer", "depends_on": []}]})
    return json.dumps(
        {
            "content": json.dumps({"status": "ok", "result": {"deliverable": "counted", "artifacts": {"n": 3}}}),
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
        }
    )


def _tool_agent(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    meta = metadata or {}
    if "tool" in meta:
        return json.dumps({"rows": 3})
    return json.dumps({"content": "", "tool_calls": [{"name": "count_rows", "arguments": {"table": "orders"}}]})


def _synthesis(**entry: Any) -> dict[str, Any]:
    base = {
        "audience": "student",
        "cue": {"type": "regex", "pattern": "(count|rows)", "description": "Counting tasks"},
        "action": {"imperative": "Use count_rows before answering", "runtime_handle": "count_rows", "tool_name": None},
        "expected_effect": "The count comes from the data.",
        "scope": {"category": "differentiation", "constraints": "Tables only.", "applies_when": "A count is asked"},
        "metadata": {"origin": "scripted"},
    }
    base.update(entry)
    return {
        "version": "playbook_entry.v1",
        "student_pamphlet": "Count with the tool.",
        "teacher_pamphlet": None,
        "playbook_entries": [base],
        "session_student_learning": "Counted with the tool.",
        "session_teacher_learning": "Check the count.",
        "metadata": {"validation_notes": ["scripted"]},
    }


def _odd_router(call: LLMCall) -> dict[str, Any]:
    # a router answer that is not a mode: Atlas maps the confidence (the raw string is stored)
    return {"mode": "fast-lane", "confidence": 0.9}


def write_corpus(dsn: str) -> list[AtlasRuntime]:
    """Every path of the runtime, in a fixed order (the same rows every time, apart from ids and times)."""
    echo = AtlasRuntime(dsn)
    # learning history builds up; a steady key, then a drop: drift, review pending
    for score in (0.82, 0.8, 0.85, 0.79, 0.81):
        echo.run("Summarise the payments incident", score=score, metadata=CALLER)
    echo.run("Summarise the payments incident", score=0.15, metadata=CALLER)
    # routed modes (history exists), teacher guidance and retries, escalation both ways
    echo.run("Summarise the payments incident", mode="auto", metadata=CALLER)
    echo.run("Summarise the payments incident", mode="coach", guidance="Name the failing service. Then the fix.")
    echo.run("Summarise the payments incident", mode="paired", guidance="Cite the logs.", uncertainty=0.6)
    echo.run("Summarise the payments incident", mode="coach", escalate=True)
    # first runs of new keys: no history; overrides; structured answers; failures
    echo.run("Draft the status update", mode="coach", answer={"status": "ok", "result": {"deliverable": "Draft."}})
    echo.run("Draft the reply", answer={"status": "needs_review", "reason": "unsure", "result": {"artifacts": {}}})
    echo.run("Crash early", fail=True)
    echo.run("Summarise the payments incident", mode="coach", fail="agent crashed mid-run")
    echo.run("Learn nothing", learn=False)
    echo.run("Triage a rich request", metadata=RICH_CALLER)
    sre = AtlasRuntime(
        dsn, config={"adaptive_teaching": {"triage_adapter": "atlas.utils.triage_adapters.sre:build_dossier"}}
    )
    sre.run("Investigate checkout", metadata={"service": "checkout", "alerts": ["p99"], "recent_changes": ["v2.3"]})
    # scripted provider behaviour: errors, unparsable and reasoning replies, odd router answers
    echo.run(
        "Summarise the payments incident", responses={"judge": ProviderError("rate limited"), "router": ProviderError()}
    )
    echo.run("Summarise the payments incident", uncertainty=0.9, responses={"arbiter": ProviderError("overloaded")})
    echo.run("Summarise the payments incident", responses={"judge": "not json", "router": _odd_router})
    reasoning = Reply({"valid": True, "guidance": None}, reasoning="Checked the answer against the task.")
    echo.run(
        "Summarise the payments incident",
        uncertainty=0.7,
        responses={
            "judge": Reply({"score": 0.7, "uncertainty": 0.7, "rationale": "ok"}, reasoning="Weighed it."),
            "arbiter": Reply({"score": 0.6, "uncertainty": 0.2, "rationale": "arbiter"}, reasoning="Decided."),
            "teacher": reasoning,
        },
    )
    echo.run("Summarise the payments incident", responses={"synthesizer": ProviderError()})
    echo.run("Fresh key, failing synthesis", responses={"synthesizer": ProviderError()})
    rejected = _synthesis(id=None, cue={"type": "keyword", "pattern": ""})  # fails the cue gate: nothing accepted
    echo.run("Summarise the payments incident", responses={"synthesizer": rejected})
    named = _synthesis(id="count-first", action={"imperative": ""})  # fails the actionability gate, with an id
    echo.run("Summarise the payments incident", responses={"synthesizer": named})
    echo.run("Report nothing", answer={"status": "ok", "result": {"deliverable": None, "artifacts": {}}})
    echo.run("Summarise the payments incident", responses={"router": {}})  # no mode, no confidence
    thinking = Reply(
        {"score": 0.75, "uncertainty": 0.1, "rationale": "fine"},
        reasoning={"thinking": "Compared.", "thinking_blocks": [{"type": "thinking", "thinking": "Compared."}]},
        usage={
            "prompt_tokens": 9,
            "completion_tokens": 3,
            "total_tokens": 12,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    echo.run("Summarise the payments incident", responses={"judge": thinking})
    focused = AtlasRuntime(dsn, config={"adaptive_teaching": {"reward": {"focus_prompt": "Weigh correctness first."}}})
    focused.run("Focus the judges")
    evaluator = {"type": "python", "import_path": "tests.runtime.corpus", "attribute": "broken_evaluator"}
    AtlasRuntime(dsn, config={"adaptive_teaching": {"reward": evaluator}}).run("No reward today")

    # tools configured: runtime handles, a playbook entry with a handle, usage examples, generality gate
    tooled = AtlasRuntime(
        dsn,
        config={
            "agent": {"tools": TOOLS},
            "learning": {
                "usage_tracking": {"capture_examples": True},
                "gates": {"enforce_generality": True},
            },
            "runtime_safety": {"review": {"require_approval": False, "default_export_statuses": []}},
        },
    )
    tooled.run("Count the rows of orders", responses={"synthesizer": _synthesis()})
    tooled.run("Count the rows of orders", responses={"synthesizer": _synthesis()})
    provisional = _synthesis(expected_effect="Fixes ticket-123 from 2025-01-02.")  # non-blocking gate failure
    tooled.run("Count the rows of orders", responses={"synthesizer": provisional})
    teacher_entry = _synthesis(audience="teacher", cue={"type": "predicate", "pattern": "asks_for_count"})
    tooled.run("Count the rows of orders", mode="coach", responses={"synthesizer": teacher_entry})
    # alias keys the synthesizer may use (kept beside the canonical ones), a teacher cue that fires
    aliased = _synthesis(
        id="count-first",
        cue={"type": "regex", "regex": "(count|rows)"},
        action={"imperative": "Use count_rows", "tool": "count_rows", "params": {"query": "orders"}},
    )
    tooled.run("Count the rows of orders", responses={"synthesizer": aliased})
    watch = _synthesis(id="watch-answers", audience="teacher", cue={"type": "keyword", "pattern": "complete answer"})
    tooled.run("Count the rows of orders", responses={"synthesizer": watch})
    tooled.run("Count the rows of orders", responses={"synthesizer": aliased})  # the teacher's cue fires now

    # agents of the caller's: usage reported by a Python agent, an LLM agent, a tool call (Atlas fails it)
    AtlasRuntime(dsn, agent=_usage_agent).run("Count with usage", mode="coach")
    llm_agent = {
        "type": "litellm",
        "name": "llm-agent",
        "system_prompt": "You help.",
        "llm": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    }
    usage = {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}
    AtlasRuntime(dsn, agent=llm_agent, responses={"agent": Reply("The answer.", usage=usage)}).run("Ask the LLM agent")
    tool_runtime = AtlasRuntime(dsn, agent=_tool_agent, config={"agent": {"tools": TOOLS}})
    # Atlas 0.1.16 cannot serialise the tool call: a failed session
    with pytest.raises(AtlasRuntimeError, match="no attribute 'name'"):
        tool_runtime.run("Count the orders with the tool")
    return [echo, sre, focused, tooled, tool_runtime]


_ROWS: dict[str, dict[str, list[dict[str, Any]]]] = {}


def corpus_rows(dsn: str) -> dict[str, list[dict[str, Any]]]:
    """The corpus's rows (every table), written once per process into the first database asked for."""
    if "rows" not in _ROWS:
        import psycopg

        from .helpers import everything

        write_corpus(dsn)
        with psycopg.connect(dsn) as conn:
            _ROWS["rows"] = everything(conn)
    return _ROWS["rows"]
