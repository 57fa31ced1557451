"""Scripted responses per role: data, lists, functions, provider errors, and roles with no script."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.errors import AtlasRuntimeError, ScriptError
from pytest_atlas.runtime import ROLES, AtlasRuntime, LLMCall, ProviderError, Reply

from .helpers import session, table


def judged(score: float, uncertainty: float = 0.05) -> dict[str, Any]:
    return {"score": score, "uncertainty": uncertainty, "rationale": f"scored {score}", "principles": []}


def test_data_for_a_role(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Data", responses={"judge": judged(0.3)})
    row = session(atlas_db, sid)
    assert (
        row["reward_stats"]["score"] == pytest.approx(0.3) and row["reward"]["judges"][0]["rationale"] == "scored 0.3"
    )


def test_a_list_is_one_response_per_call(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("List", responses={"judge": [judged(0.2), judged(0.3), judged(0.4)]})
    samples = session(atlas_db, sid)["reward"]["judges"][0]["samples"]
    assert [s["score"] for s in samples] == [0.2, 0.3, 0.4]


def test_a_list_that_runs_out_names_the_role(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(ScriptError, match=r"judge made call 2 \(sample\); its script has only 1 response") as info:
        atlas_runtime.run("Short list", responses={"judge": [judged(0.5)]})
    assert info.value.role == "judge"
    # Atlas recorded the failed calls as it does a provider error, and wrote the session
    row = session(atlas_db, info.value.session_id or 0)
    assert [("error" in entry) for entry in row["reward_audit"]] == [False, True, True]
    assert "ScriptError" in row["reward_audit"][1]["error"]


def test_a_function_gets_the_call(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    seen: list[LLMCall] = []

    def judge(call: LLMCall) -> dict[str, Any]:
        seen.append(call)
        return judged(0.4 + (call.temperature or 0.0) / 10)  # close enough: no escalation

    sid = atlas_runtime.run("Function", responses={"judge": judge})
    assert [c.temperature for c in seen] == [0.2, 0.5, 0.8] and [c.index for c in seen] == [0, 1, 2]
    assert {c.purpose for c in seen} == {"sample"} and seen[0].task == "Function"
    assert seen[0].messages[0]["role"] == "system" and seen[0].payload["task"] == "Function"
    assert session(atlas_db, sid)["reward_stats"]["score"] == pytest.approx(0.45)


def test_every_role_is_seen_with_its_payload(atlas_runtime: AtlasRuntime) -> None:
    atlas_runtime.run("Observe", mode="coach")
    atlas_runtime.run("Observe", mode="coach", uncertainty=0.9)
    calls = atlas_runtime.last.calls
    assert [(c.role, c.purpose) for c in calls] == [
        ("router", "route"),
        ("teacher", "plan_review"),
        ("teacher", "validation"),
        ("judge", "sample"),
        ("judge", "sample"),
        ("judge", "sample"),
        ("arbiter", "escalation"),
        ("synthesizer", "synthesis"),
    ]
    router, plan_review, validation = calls[0], calls[1], calls[2]
    assert router.payload["learning_history"]["count"] == 1
    assert [step["id"] for step in plan_review.payload["plan"]["steps"]] == [1, 2]
    assert validation.payload["step"]["id"] == 1
    assert {c.model for c in calls} == {f"pytest-atlas/{r}" for r in ROLES if r != "agent"}


def test_a_role_without_a_script_is_an_error_naming_it(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(ScriptError) as info:
        atlas_runtime.run("No arbiter", uncertainty=0.9, responses={"arbiter": None})
    error = info.value
    assert error.role == "arbiter"
    assert "arbiter made an LLM call (escalation, model 'pytest-atlas/arbiter')" in str(error)
    assert "never sends a call to a provider" in str(error) and "responses={'arbiter': ...}" in str(error)
    assert f"session {error.session_id} was written" in str(error)
    audit = session(atlas_db, error.session_id or 0)["reward_audit"]
    assert audit[-1] == {**audit[-1], "stage": "arbiter", "error": "exception_during_arbiter_call"}


def test_provider_errors_take_atlass_own_error_paths(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    atlas_runtime.run("History first", learn=False)
    sid = atlas_runtime.run(
        "History first",
        responses={"judge": ProviderError("rate limited"), "router": ProviderError(), "synthesizer": ProviderError()},
    )
    row = session(atlas_db, sid)
    assert [entry["error"] for entry in row["reward_audit"]] == ["ScriptedProviderError('rate limited')"] * 3
    assert row["reward"]["judges"][0]["samples"] == [
        {
            "score": 0.0,
            "rationale": "No valid reward sample produced.",
            "principles": [],
            "uncertainty": 1.0,
            "temperature": None,
        }
    ]
    assert row["metadata"]["execution_mode"] == "paired"  # the router failed: Atlas falls back
    assert "probe" not in row["metadata"]["adaptive_summary"]
    assert "student_learning" not in row["metadata"]  # the synthesizer failed: nothing learned this time


def test_a_teacher_that_fails_fails_the_session(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(AtlasRuntimeError, match="scripted provider error"):
        atlas_runtime.run("Teacher down", responses={"teacher": ProviderError()})
    assert table(atlas_db, "sessions")[0]["status"] == "failed"


def test_a_reply_with_reasoning(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Reason", responses={"judge": Reply(judged(0.7), reasoning="I compared it to the task.")})
    entry = session(atlas_db, sid)["reward_audit"][0]
    assert entry["reasoning"] == {"reasoning_content": "I compared it to the task."}
    assert entry["reasoning_queue"] == [{"reasoning_content": "I compared it to the task."}]


def test_unparsable_judge_answers_are_what_atlas_makes_of_them(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    sid = atlas_runtime.run("Garbled", responses={"judge": "not json at all"})
    row = session(atlas_db, sid)
    assert [entry["response"] for entry in row["reward_audit"]] == ["not json at all"] * 3
    assert row["reward_stats"]["score"] == 0.0 and row["reward_stats"]["uncertainty_mean"] == 1.0


def test_a_script_that_raises(atlas_runtime: AtlasRuntime) -> None:
    def broken(call: LLMCall) -> Any:
        raise KeyError("oops")

    with pytest.raises(ScriptError, match=r"the script for Atlas's synthesizer raised KeyError\('oops'\)") as info:
        atlas_runtime.run("Broken script", responses={"synthesizer": broken})
    assert isinstance(info.value.__cause__, KeyError)


def test_a_response_that_is_not_json(atlas_runtime: AtlasRuntime) -> None:
    with pytest.raises(ScriptError, match="the response scripted for Atlas's judge is not JSON"):
        atlas_runtime.run("Bad JSON", responses={"judge": {"score": float("inf")}})


def test_run_responses_override_the_runtimes(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    runtime = AtlasRuntime(atlas_dsn, responses={"judge": judged(0.1)})
    first = runtime.run("Runtime level")
    second = runtime.run("Run level", responses={"judge": judged(0.9)})
    scores = [session(atlas_db, sid)["reward_stats"]["score"] for sid in (first, second)]
    assert scores == [pytest.approx(0.1), pytest.approx(0.9)]
    third = runtime.using(responses={"judge": judged(0.4)}).run("Using")
    assert session(atlas_db, third)["reward_stats"]["score"] == pytest.approx(0.4)


def test_a_reply_with_provider_reasoning_fields_and_usage(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    blocks = [{"type": "thinking", "thinking": "Weighed it."}]
    reply = Reply(
        judged(0.6),
        reasoning={"thinking_blocks": blocks},
        usage={
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    sid = atlas_runtime.run("Think", responses={"judge": reply})
    entry = session(atlas_db, sid)["reward_audit"][0]
    assert entry["reasoning"] == {"thinking_blocks": blocks, "token_counts": {"reasoning_tokens": 2}}
    with pytest.raises(ScriptError, match=r"Reply\.usage must hold non-negative ints"):
        atlas_runtime.run("Bad usage", responses={"judge": Reply(judged(0.6), usage={"total_tokens": -1})})
