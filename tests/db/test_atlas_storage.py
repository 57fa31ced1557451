"""Atlas's own storage layer (arc-atlas 0.1.16, atlas.runtime.storage.Database) writes to and reads
from a database built from our schema.sql, through the per-test DSN."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from atlas.config.models import StorageConfig
from atlas.runtime.models import IntermediateStep, IntermediateStepPayload, IntermediateStepType, InvocationNode
from atlas.runtime.storage.database import Database
from atlas.types import Plan, Step, StepEvaluation, StepResult

KEY = "a" * 64


def reward(score: float) -> dict[str, Any]:
    return {"score": score, "rationale": None, "judges": [], "raw": {"score": score, "samples": []}}


async def exercise(dsn: str) -> dict[str, Any]:
    # apply_schema_on_connect=False: the 0.1.16 wheel does not ship its schema.sql; ours is loaded
    db = Database(StorageConfig(database_url=dsn, apply_schema_on_connect=False))
    await db.connect()
    try:
        ids = []
        for n, score in enumerate([0.8, 0.82, 0.79]):
            sid = await db.create_session(f"task {n}", {"learning_key": KEY, "source": "atlas run"})
            ids.append(sid)
            await db.log_plan(
                sid, Plan(steps=[Step(id=1, description="Produce the answer")], execution_mode="single_shot")
            )
            evaluation = StepEvaluation(validation={"valid": True, "guidance": None}, reward=reward(0.0))
            await db.log_step_result(
                sid,
                StepResult(
                    step_id=1,
                    trace="HUMAN: q\nAI: a",
                    output="a",
                    evaluation=evaluation,
                    attempts=1,
                    metadata={"reason": "ok"},
                ),
            )
            await db.log_step_attempts(sid, 1, [{"attempt": 1, "evaluation": evaluation.to_dict()}])
            await db.log_guidance(sid, 1, ["be brief"])
            event = IntermediateStep(
                parent_id="root",
                function_ancestry=InvocationNode(function_id="root", function_name="root"),
                payload=IntermediateStepPayload(event_type=IntermediateStepType.WORKFLOW_START, name="orchestration"),
            )
            await db.log_intermediate_step(sid, event)
            await db.finalize_session(sid, "answer", "succeeded")
            stats = {
                "score": score,
                "score_mean": score,
                "score_stddev": 0.0,
                "sample_count": 1,
                "uncertainty_mean": 0.1,
                "uncertainty_stddev": 0.0,
                "best_uncertainty": 0.1,
                "timestamp": "2025-01-01T00:00:00+00:00",
            }
            await db.log_session_reward(sid, reward(score), "student note", None, stats, [{"stage": "tier1"}])
            await db.update_session_review_status(sid, "approved", "looks fine")
        await db.update_session_metadata(ids[0], {"learning_key": KEY, "drift_alert": False})
        await db.upsert_learning_state(KEY, "pamphlet", None, {"playbook_entries": []})
        run_id = await db.log_discovery_run(project_root="/srv/app", task="t", payload={"final_answer": None})
        return {
            "ids": ids,
            "baseline": await db.fetch_reward_baseline(KEY, window=50),
            "session": await db.fetch_session(ids[0]),
            "steps": await db.fetch_session_steps(ids[0]),
            "events": await db.fetch_trajectory_events(ids[0]),
            "keys": await db.fetch_learning_keys(),
            "state": await db.fetch_learning_state(KEY),
            "training": await db.query_training_sessions(min_reward=0.5, learning_key=KEY),
            "discovery": run_id,
        }
    finally:
        await db.disconnect()


def test_atlas_database_class_round_trips(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    out = asyncio.run(exercise(atlas_dsn))
    assert out["baseline"]["sample_count"] == 3
    assert abs(out["baseline"]["score_mean"] - (0.8 + 0.82 + 0.79) / 3) < 1e-12
    assert out["session"]["review_status"] == "approved"
    assert len(out["steps"]) == 1 and out["steps"][0]["attempts"] == 1
    assert len(out["events"]) == 1
    assert out["keys"][0]["learning_key"] == KEY and out["keys"][0]["session_count"] == 3
    assert out["state"]["student_learning"] == "pamphlet"
    assert len(out["training"]) == 3
    # and the rows are where our schema says they are
    counts = {
        t: atlas_db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in (
            "sessions",
            "plans",
            "step_results",
            "step_attempts",
            "guidance_notes",
            "trajectory_events",
            "discovery_runs",
            "learning_registry",
        )
    }
    assert counts == {
        "sessions": 3,
        "plans": 3,
        "step_results": 3,
        "step_attempts": 3,
        "guidance_notes": 3,
        "trajectory_events": 3,
        "discovery_runs": 1,
        "learning_registry": 1,
    }
    plan = atlas_db.execute("SELECT plan FROM plans ORDER BY session_id LIMIT 1").fetchone()[0]
    assert plan["execution_mode"] == "single_shot" and plan["steps"][0]["depends_on"] == []
