"""Testing a harness against Atlas itself: the harness's agent runs inside Atlas's real runtime,
offline, and the harness's own code reads what Atlas wrote.

The "harness" here is two small pieces a team would have: a Bring-Your-Own-Agent function for
Atlas's Python adapter, and an exporter that turns approved Atlas sessions into review records.
No API key, no network: every LLM role of Atlas (router, judges, arbiter, teacher, learning
synthesizer) answers from a script.
"""

import json

import psycopg
import pytest

from pytest_atlas import RewardDrift, assert_no_drift
from pytest_atlas.runtime import AtlasRuntime, LLMCall


# --- the harness under test -----------------------------------------------------------------------
def triage_agent(prompt, metadata=None):
    """The team's agent: Atlas calls it with prompt= and metadata= (task_payload, step_payload, ...)."""
    task = (metadata or {}).get("task_payload", "")
    if (metadata or {}).get("mode") == "planning":
        return json.dumps({"steps": [{"id": 1, "description": "Read the alert", "depends_on": []}]})
    severity = "high" if "outage" in task.lower() else "low"
    return json.dumps(
        {"status": "ok", "result": {"deliverable": f"{severity}: {task}", "artifacts": {"severity": severity}}}
    )


def export_reviews(dsn):
    """The team's exporter: one record per finished session, with its reward and review state."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id, task, status, final_answer, reward_stats->>'score', review_status,"
            " metadata->>'execution_mode' FROM sessions ORDER BY id"
        ).fetchall()
    return [
        {
            "id": r[0],
            "task": r[1],
            "ok": r[2] == "succeeded",
            "answer": r[3],
            "score": float(r[4]) if r[4] is not None else None,
            "review": r[5],
            "mode": r[6],
        }
        for r in rows
    ]


# --- the tests --------------------------------------------------------------------------------------
@pytest.fixture
def atlas_runtime(atlas_dsn):
    """Atlas with the team's agent instead of the built-in echo agent."""
    runtime = AtlasRuntime(atlas_dsn, agent=triage_agent)
    yield runtime
    runtime.close()


def test_the_exporter_reads_what_atlas_writes(atlas_runtime, atlas_dsn):
    good = atlas_runtime.run("Triage the checkout outage", score=0.9)
    unsure = atlas_runtime.run("Triage the disk warning", score=0.4, uncertainty=0.7)  # the arbiter decides
    coach = atlas_runtime.run("Triage the checkout outage", mode="coach")
    crashed = atlas_runtime.run("Triage the pager storm", fail=True)

    records = {r["id"]: r for r in export_reviews(atlas_dsn)}
    assert records[good] == {
        "id": good,
        "task": "Triage the checkout outage",
        "ok": True,
        "answer": "high: Triage the checkout outage",
        "score": pytest.approx(0.9),
        "review": "pending",
        "mode": "paired",
    }
    assert records[unsure]["score"] == pytest.approx(0.4)
    assert [c.role for c in atlas_runtime.runs[1].calls].count("arbiter") == 1
    assert records[coach]["mode"] == "coach"
    assert records[crashed]["ok"] is False and records[crashed]["answer"] == ""


def test_the_judges_can_be_scripted_per_call(atlas_runtime, atlas_dsn):
    def judge(call: LLMCall):
        # the judges see the final answer in their prompt: score what the agent said
        high = "high:" in call.prompt
        return {"score": 0.95 if high else 0.3, "uncertainty": 0.05, "rationale": "by severity"}

    atlas_runtime.run("Triage the database outage", responses={"judge": judge})
    atlas_runtime.run("Triage the log rotation", responses={"judge": judge})
    assert [r["score"] for r in export_reviews(atlas_dsn)] == [pytest.approx(0.95), pytest.approx(0.3)]


def test_a_drop_on_atlas_written_data_fails_the_drift_gate(atlas_runtime, atlas_db):
    history = atlas_runtime.history("step_change", sessions=14, seed=2, learn=False)
    assert history.alerts == history.expected.alerts  # Atlas flagged exactly what the strategy predicts
    with pytest.raises(RewardDrift):
        assert_no_drift(atlas_db)
