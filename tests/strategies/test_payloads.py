"""Every payload strategy produces documents that pass their JSON Schema, and only JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_atlas import strategies as S
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.validation import SCHEMA_NAMES, iter_errors

PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "session-metadata": S.session_metadata(),
    "session-reward": S.session_rewards(),
    "reward-stats": S.reward_stats(),
    "reward-audit": S.reward_audits(),
    "drift": S.drift_assessments(),
    "trajectory-event": S.trajectory_events(),
    "plan": S.plans(),
    "step-evaluation": S.step_evaluations(),
    "step-metadata": S.step_metadata(),
    "discovery-payload": S.discovery_payloads(),
    "discovery-metadata": S.discovery_metadata(),
    "learning-registry-metadata": S.learning_registry_metadata(),
    "export-trace": S.export_traces(),
}


def finite_json(value: Any) -> bool:
    """True when ``value`` is made of JSON types only, with finite numbers."""
    if isinstance(value, float):
        return math.isfinite(value)
    if value is None or isinstance(value, (bool, int, str)):
        return "\x00" not in value if isinstance(value, str) else True
    if isinstance(value, list):
        return all(finite_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and "\x00" not in k and finite_json(v) for k, v in value.items())
    return False


def assert_schema_valid(document: Any, schema: str) -> None:
    errors = [violation.format() for violation in iter_errors(document, schema)]
    assert errors == [], f"{schema}: {errors}"


def test_one_strategy_per_shipped_schema() -> None:
    assert set(PAYLOADS) == set(SCHEMA_NAMES)


@pytest.mark.parametrize("schema", sorted(PAYLOADS))
def test_generated_payloads_validate(schema: str) -> None:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=PAYLOADS[schema])
    def check(document: Any) -> None:
        assert finite_json(document), "not plain finite JSON"
        json.dumps(document, allow_nan=False)
        assert_schema_valid(document, schema)

    check()


@settings(max_examples=60, deadline=None)
@given(stats=S.reward_stats(score=(0.25, 0.5)))
def test_reward_stats_score_range_is_honoured(stats: dict[str, Any]) -> None:
    assert 0.25 <= stats["score"] <= 0.5
    assert stats["score"] == stats["score_mean"]
    assert 1 <= stats["sample_count"] <= 3


@settings(max_examples=60, deadline=None)
@given(reward=S.session_rewards(score=0.7))
def test_exact_reward_score(reward: dict[str, Any]) -> None:
    assert reward["score"] == 0.7
    assert reward["judges"][0]["score"] == 0.7
    assert [s["score"] for s in reward["judges"][0]["samples"]] == [0.7]


@settings(max_examples=60, deadline=None)
@given(reward=S.session_rewards(), data=st.data())
def test_reward_score_is_the_mean_of_its_samples(reward: dict[str, Any], data: st.DataObject) -> None:
    samples = reward["judges"][0]["samples"]
    assert reward["score"] == pytest.approx(sum(s["score"] for s in samples) / len(samples))
    assert reward["raw"]["samples"] == [{"score": s["score"], "uncertainty": s["uncertainty"]} for s in samples]
    judge = reward["judges"][0]
    assert judge["escalated"] == (judge["escalation_reason"] == "tier1_variance_or_uncertainty")
    if judge["escalated"]:
        assert len(samples) == 1


@settings(max_examples=80, deadline=None)
@given(audit=S.reward_audits())
def test_reward_audit_shape(audit: list[dict[str, Any]]) -> None:
    assert len(audit) in (3, 4)
    assert [entry["temperature"] for entry in audit[:3]] == [0.2, 0.5, 0.8]
    assert all(entry["stage"] == "tier1" for entry in audit[:3])
    if len(audit) == 4:
        assert audit[3]["stage"] == "arbiter"


@pytest.mark.parametrize("alert", [True, False])
def test_drift_alert_can_be_pinned(alert: bool) -> None:
    @settings(max_examples=60, deadline=None)
    @given(drift=S.drift_assessments(alert=alert))
    def check(drift: dict[str, Any]) -> None:
        assert drift["alert"] is alert
        assert drift["drift_alert"] is alert
        assert ("message" in drift) is alert
        if alert:
            assert drift["reason"] in ("score_z", "score_mad_z", "uncertainty_z", "uncertainty_mad_z")
            assert drift["message"] == f"Reward drift alert ({drift['reason']})"
        assert_schema_valid(drift, "drift")

    check()


@settings(max_examples=60, deadline=None)
@given(event=S.trajectory_events(event_type="LLM_NEW_TOKEN"))
def test_event_type_can_be_pinned(event: dict[str, Any]) -> None:
    assert event["payload"]["event_type"] == "LLM_NEW_TOKEN"
    assert set(event) == {"parent_id", "function_ancestry", "payload"}
    assert len(event["payload"]) == 10


@settings(max_examples=60, deadline=None)
@given(plan=S.plans(steps=(3, 5)))
def test_multi_step_plans_are_stepwise(plan: dict[str, Any]) -> None:
    assert plan["execution_mode"] == "stepwise"
    ids = [step["id"] for step in plan["steps"]]
    assert ids == list(range(1, len(ids) + 1)) and 3 <= len(ids) <= 5
    for step in plan["steps"]:
        assert all(int(dep) < step["id"] for dep in step["depends_on"])


@settings(max_examples=10, deadline=None)
@given(plan=S.plans(steps=8))
def test_plans_take_up_to_eight_steps(plan: dict[str, Any]) -> None:
    """The documented bound (1..8) is the same as session_graphs(steps=...)'s."""
    assert len(plan["steps"]) == 8


def test_plans_refuse_more_steps_than_a_session_graph_takes() -> None:
    with pytest.raises(InvalidArgument, match=r"^plans\(\): steps must be .*, got 9"):
        S.plans(steps=9)
    with pytest.raises(InvalidArgument, match=r"^session_graphs\(\): steps must be .*, got 9"):
        S.session_graphs(steps=9)


@settings(max_examples=40, deadline=None)
@given(plan=S.plans(legacy=False))
def test_current_runtime_plans(plan: dict[str, Any]) -> None:
    assert plan["execution_mode"] == "single_shot"
    [step] = plan["steps"]
    assert step["id"] == 1 and step["tool"] is None and step["tool_params"] is None and step["depends_on"] == []
    assert step["description"].startswith("Produce the complete answer for the task in a single response.")


@pytest.mark.parametrize("valid", [True, False])
def test_step_evaluation_validity_can_be_pinned(valid: bool) -> None:
    @settings(max_examples=40, deadline=None)
    @given(evaluation=S.step_evaluations(valid=valid))
    def check(evaluation: dict[str, Any]) -> None:
        assert evaluation["validation"]["valid"] is valid
        assert evaluation["reward"]["score"] == 0.0
        assert evaluation["reward"]["rationale"] == ("deferred" if valid else "validation_failed")

    check()


@settings(max_examples=40, deadline=None)
@given(payload=S.discovery_payloads(empty=True))
def test_empty_discovery_payload(payload: dict[str, Any]) -> None:
    assert payload["history"] == [] and payload["schema"] == {} and payload["reward"]["steps"] == 0


@settings(max_examples=40, deadline=None)
@given(metadata=S.discovery_metadata(source="runtime"))
def test_runtime_discovery_metadata(metadata: dict[str, Any]) -> None:
    assert set(metadata) == {"capabilities", "run_artifact"}


@settings(max_examples=40, deadline=None)
@given(metadata=S.learning_registry_metadata(entries=2))
def test_registry_entries_can_be_pinned(metadata: dict[str, Any]) -> None:
    assert len(metadata["playbook_entries"]) == 2
    # a candidate keeps the LLM's id, null when it sent "id": null (the stored entry gets one either way)
    candidates = [c["id"] for c in metadata["last_evaluation"]["candidates"]]
    assert [c or e["id"] for c, e in zip(candidates, metadata["playbook_entries"], strict=True)] == [
        e["id"] for e in metadata["playbook_entries"]
    ]
