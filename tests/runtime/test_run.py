"""``atlas_runtime.run()``: Atlas's real runtime, offline, writing into the test's database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.runtime import AtlasRuntime

from .helpers import events, session, table


def test_the_issue_example(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Summarise the incident", score=0.42)
    coach = atlas_runtime.run("Draft the update", mode="coach")
    failed = atlas_runtime.run("Crash", fail=True)
    assert len({sid, coach, failed}) == 3

    first = session(atlas_db, sid)
    assert first["status"] == "succeeded" and first["task"] == "Summarise the incident"
    assert first["reward_stats"]["score"] == pytest.approx(0.42)
    assert first["reward"]["judges"][0]["samples"][0]["score"] == 0.42
    assert first["final_answer"] == "Scripted answer: Summarise the incident"
    assert first["metadata"]["execution_mode"] == "paired"  # no history: Atlas pairs without asking the router

    second = session(atlas_db, coach)
    assert second["metadata"]["execution_mode"] == "coach"
    plan = table(atlas_db, "plans", "WHERE session_id = %s", (coach,))[0]["plan"]
    assert plan["execution_mode"] == "single_shot"
    assert "Follow this reviewed plan while responding:" in plan["steps"][0]["description"]
    assert "FUNCTION_START:plan_creation" in events(atlas_db, coach)

    third = session(atlas_db, failed)
    assert third["status"] == "failed" and third["final_answer"] == ""
    assert third["reward"] is None and table(atlas_db, "plans", "WHERE session_id = %s", (failed,)) == []
    assert events(atlas_db, failed)[-1] == "TASK_END:step_1"  # a failed session has no WORKFLOW_END
    assert atlas_runtime.last.status == "failed"


def test_the_score_is_what_the_judges_give(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Rate me", score=0.25, uncertainty=0.2)
    row = session(atlas_db, sid)
    assert row["reward_stats"]["sample_count"] == 3
    assert row["reward_stats"]["uncertainty_mean"] == pytest.approx(0.2)
    assert [entry["temperature"] for entry in row["reward_audit"]] == [0.2, 0.5, 0.8]
    assert {entry["model"] for entry in row["reward_audit"]} == {"pytest-atlas/judge"}
    # the provider response Atlas stores is litellm's own object, as text
    assert row["reward_audit"][0]["raw_response"].startswith("ModelResponse(id='scripted-judge-")
    assert row["metadata"]["reward_summary"]["score"] == pytest.approx(0.25)
    assert row["reward"]["judges"][0]["escalated"] is False


@pytest.mark.parametrize(
    ("options", "spread"),
    [({"uncertainty": 0.6}, False), ({"escalate": True, "score": 0.5}, True)],
    ids=["unsure-judges", "disagreeing-judges"],
)
def test_uncertainty_escalates_to_the_arbiter(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any], options: dict[str, Any], spread: bool
) -> None:
    sid = atlas_runtime.run("Judge me", **options)
    row = session(atlas_db, sid)
    assert [entry["stage"] for entry in row["reward_audit"]] == ["tier1", "tier1", "tier1", "arbiter"]
    judge = row["reward"]["judges"][0]
    assert judge["escalated"] is True and judge["escalation_reason"] == "tier1_variance_or_uncertainty"
    assert row["reward_stats"]["sample_count"] == 1  # the arbiter's sample replaces the judges'
    assert row["reward_stats"]["score"] == pytest.approx(options.get("score", 0.8))
    tier1 = [entry["response"] for entry in row["reward_audit"][:3]]
    assert (len(set(tier1)) == 3) is spread
    assert [call.role for call in atlas_runtime.last.calls].count("arbiter") == 1


def test_no_escalation_below_the_threshold(atlas_runtime: AtlasRuntime) -> None:
    atlas_runtime.run("Sure", uncertainty=0.3)  # Atlas escalates only above 0.3
    assert atlas_runtime.last.calls_of("arbiter") == ()


@pytest.mark.parametrize("mode", ["auto", "paired", "coach"])
def test_the_router_picks_the_mode_once_there_is_history(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any], mode: str
) -> None:
    first = atlas_runtime.run("Route me", mode=mode)
    assert session(atlas_db, first)["metadata"]["adaptive_summary"]["mode_history"] == [
        {"mode": mode, "confidence": 1.0}
    ]
    assert atlas_runtime.last.routed is False  # no history: Atlas never asks the router; an override does it
    second = atlas_runtime.run("Route me", mode=mode)
    assert atlas_runtime.last.routed is True and atlas_runtime.last.mode == mode
    metadata = session(atlas_db, second)["metadata"]
    assert metadata["execution_mode"] == mode
    assert metadata["adaptive_summary"]["probe"]["mode"] == mode
    route = [
        r["event"]["payload"]["data"]["output"]
        for r in table(atlas_db, "trajectory_events", "WHERE session_id = %s", (second,))
        if r["event"]["payload"]["name"] == "adaptive_route" and r["event"]["payload"]["event_type"] == "CUSTOM_END"
    ]
    assert route[0]["reason"] == "capability_probe" and route[0]["mode"] == mode
    validations = [call for call in atlas_runtime.last.calls if call.purpose == "validation"]
    assert (validations == []) is (mode == "auto")  # auto runs unattended: no teacher


def test_without_mode_atlas_routes_by_itself(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    atlas_runtime.run("Again")
    second = atlas_runtime.run("Again")  # history now: Atlas asks the router, whose default is paired
    assert atlas_runtime.last.routed and session(atlas_db, second)["metadata"]["execution_mode"] == "paired"


def test_teacher_guidance_makes_atlas_retry(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Explain the outage", guidance="Cite the error logs.")
    assert [r["note"] for r in table(atlas_db, "guidance_notes", "WHERE session_id = %s", (sid,))] == [
        "Cite the error logs."
    ]
    attempts = table(atlas_db, "step_attempts", "WHERE session_id = %s", (sid,))
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[0]["evaluation"]["validation"]["valid"] is False
    assert attempts[1]["evaluation"]["validation"] == {"valid": True, "guidance": None}  # the final attempt
    metadata = session(atlas_db, sid)["metadata"]
    assert metadata["teacher_notes"] == ["Cite the error logs."]
    assert metadata["learning_usage"]["session"]["retry_count"] == 1


def test_learning_writes_the_registry_and_playbook(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    first = atlas_runtime.run("Summarise the deploy")
    registry = table(atlas_db, "learning_registry")
    assert len(registry) == 1
    entries = registry[0]["metadata"]["playbook_entries"]
    assert [entry["cue"]["pattern"] for entry in entries] == ["summarise"]
    assert entries[0]["provenance"]["source_session_id"] == first
    assert registry[0]["student_learning"] == "Lead with the outcome, then give the evidence for it."
    assert session(atlas_db, first)["student_learning"] == "The answer led with the outcome."

    second = atlas_runtime.run("Summarise the deploy")  # the playbook is in the prompts now
    metadata = session(atlas_db, second)["metadata"]
    assert metadata["applied_student_learning"]["entry_count"] >= 1
    entry_id = entries[0]["id"]
    assert metadata["learning_usage"]["roles"]["student"][entry_id]["cue_hits"] >= 1
    impact = table(atlas_db, "learning_registry")[0]["metadata"]["playbook_entries"][0]["impact"]
    assert impact["sessions_observed"] == 2


def test_learning_nothing(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_runtime.run("Nothing to learn", learn=False)
    registry = table(atlas_db, "learning_registry")[0]
    assert registry["metadata"]["playbook_entries"] == [] and registry["metadata"]["playbook_summary"]["accepted"]
    assert "student_learning" not in session(atlas_db, sid)["metadata"]


def test_metadata_and_learning_key_are_the_callers(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    caller = {"source": "atlas run", "incident_id": "INC-7", "tags": ["payments"], "nested": {"a": [1, 2]}}
    sid = atlas_runtime.run("Triage it", metadata=caller, learning_key="my-key")
    metadata = session(atlas_db, sid)["metadata"]
    assert {key: metadata[key] for key in caller} == caller
    assert metadata["learning_key"] == "my-key" and atlas_runtime.last.learning_key == "my-key"
    assert metadata["triage_dossier"]["metadata"]["incident_id"] == "INC-7"
    assert metadata["learning_usage"]["session"]["incident_id"] == "INC-7"
    assert caller == {"source": "atlas run", "incident_id": "INC-7", "tags": ["payments"], "nested": {"a": [1, 2]}}


def test_the_learning_key_is_the_one_atlas_derives(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    sid = atlas_runtime.run("Derive my key", metadata={"tenant_id": "acme"})
    key = session(atlas_db, sid)["metadata"]["learning_key"]
    assert len(key) == 64 and key == atlas_runtime.last.learning_key
    atlas_runtime.run("Derive my key", metadata={"tenant_id": "other"})
    assert atlas_runtime.last.learning_key != key


def test_structured_answers_and_plans_of_the_echo_agent(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]
) -> None:
    answer = {"status": "ok", "result": {"deliverable": "Rolled back.", "artifacts": {"ticket": "OPS-1"}}}
    steps = [{"id": 1, "description": "Check the dashboards", "depends_on": []}]
    sid = atlas_runtime.run("Fix it", answer=answer, plan=steps, mode="coach")
    assert session(atlas_db, sid)["final_answer"] == "Rolled back."
    step = table(atlas_db, "step_results", "WHERE session_id = %s", (sid,))[0]
    assert step["metadata"]["artifacts"] == {"ticket": "OPS-1"} and step["metadata"]["status"] == "ok"
    plan = table(atlas_db, "plans", "WHERE session_id = %s", (sid,))[0]["plan"]
    assert plan["steps"][0]["description"].endswith("1. Check the dashboards")


def test_drift_alert_after_a_drop(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    for score in (0.8, 0.82, 0.79, 0.81, 0.8):
        atlas_runtime.run("Steady work", score=score, learn=False)
    dropped = atlas_runtime.run("Steady work", score=0.2, learn=False)
    row = session(atlas_db, dropped)
    assert row["metadata"]["drift_alert"] is True and row["review_status"] == "pending"
    assert row["metadata"]["drift"]["reason"] in ("score_z", "score_mad_z")
    assert row["review_notes"].startswith("Reward drift alert (")


def test_review_gating_off_auto_approves(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    runtime = AtlasRuntime(atlas_dsn, config={"runtime_safety": {"review": {"require_approval": False}}})
    sid = runtime.run("Approve me")
    row = session(atlas_db, sid)
    assert row["review_status"] == "approved" and row["review_notes"] == "Auto-approved (review gating disabled)."
    runtime.close()


def test_environment_overrides_do_not_change_what_atlas_writes(
    atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATLAS_REVIEW_REQUIRE_APPROVAL", "0")
    monkeypatch.setenv("ATLAS_OFFLINE_MODE", "1")  # would make Atlas's client answer with canned mocks
    sid = atlas_runtime.run("Same as always", score=0.33)
    row = session(atlas_db, sid)
    assert row["review_status"] == "pending" and row["reward_stats"]["score"] == pytest.approx(0.33)
    import os

    assert os.environ["ATLAS_OFFLINE_MODE"] == "1"  # and they are back after the run


@pytest.mark.asyncio
async def test_async_runs(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    sid = await atlas_runtime.arun("Async task", score=0.6)
    assert session(atlas_db, sid)["reward_stats"]["score"] == pytest.approx(0.6)
    with pytest.raises(Exception, match=r"await atlas_runtime.arun"):
        atlas_runtime.run("Inside a loop")


@pytest.mark.asyncio
async def test_two_runs_at_once_in_one_loop(atlas_runtime: AtlasRuntime, atlas_db: psycopg.Connection[Any]) -> None:
    import asyncio

    first, second = await asyncio.gather(
        atlas_runtime.arun("Concurrent one", score=0.3), atlas_runtime.arun("Concurrent two", score=0.7)
    )
    assert session(atlas_db, first)["reward_stats"]["score"] == pytest.approx(0.3)
    assert session(atlas_db, second)["reward_stats"]["score"] == pytest.approx(0.7)
    assert {session(atlas_db, first)["task"], session(atlas_db, second)["task"]} == {"Concurrent one", "Concurrent two"}
    from pytest_atlas.runtime import _atlas

    assert _atlas._ACTIVE == 0  # the scripted transport is gone once both are done
