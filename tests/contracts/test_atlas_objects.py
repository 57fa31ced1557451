"""Payloads built by Atlas's own code (arc-atlas 0.1.16) and serialised the way its Database does,
then checked against our schemas: ground truth, not our reading of it."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest

from pytest_atlas.validation import check_payload

from . import contract_documents as D

# litellm (imported by Atlas's storage module) would otherwise try to download a price list
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

atlas_schema = pytest.importorskip("atlas.runtime.schema", reason="arc-atlas is part of the test extra")

from atlas.runtime.learning.drift import DriftAssessment  # noqa: E402
from atlas.runtime.learning_history import aggregate_learning_history  # noqa: E402
from atlas.runtime.models.intermediate_step import (  # noqa: E402
    IntermediateStep,
    IntermediateStepPayload,
    IntermediateStepType,
    StreamEventData,
)
from atlas.runtime.models.invocation_node import InvocationNode  # noqa: E402
from atlas.runtime.storage.database import Database  # noqa: E402
from atlas.types import Plan, Step, StepEvaluation  # noqa: E402
from atlas.utils.triage import default_build_dossier  # noqa: E402


def stored(value: Any) -> Any:
    """What a jsonb column holds after Atlas's Database wrote ``value`` (json.dumps(default=str))."""
    text = Database._serialize_json(value)
    assert text is not None
    return json.loads(text)


def reward() -> Any:
    samples = [
        atlas_schema.AtlasJudgeSample(score=s, rationale="ok", principles=D.principles(), uncertainty=u)
        for s, u in ((0.8, 0.1), (0.7, 0.2), (0.9, 0.15))
    ]
    judge = atlas_schema.AtlasJudgeBreakdown(
        identifier="session_reward", score=0.8, rationale="ok", principles=D.principles(), samples=samples
    )
    return atlas_schema.AtlasRewardBreakdown(
        score=0.8,
        judges=[judge],
        rationale=None,
        raw={"score": 0.8, "samples": [], "execution_mode": "paired", "teacher_intervened": True, "focus_prompt": None},
    )


def test_atlas_reward_breakdown() -> None:
    result = check_payload(stored(reward().to_dict()), "session-reward")
    assert result.violations == ()


def test_atlas_plan_and_step_evaluation() -> None:
    plan = Plan(
        steps=[
            Step(
                id=1,
                description="Produce the complete answer for the task in a single response.",
                tool=None,
                tool_params=None,
                depends_on=[],
            )
        ],
        execution_mode="single_shot",
    )
    assert check_payload(stored(plan.model_dump()), "plan").violations == ()
    placeholder = atlas_schema.AtlasRewardBreakdown(
        score=0.0, judges=[], rationale="deferred", raw={"skipped": True, "reason": "deferred"}
    )
    evaluation = StepEvaluation(validation={"valid": True, "guidance": None}, reward=placeholder)
    assert check_payload(stored(evaluation.to_dict()), "step-evaluation").violations == ()


@pytest.mark.parametrize("event_type", list(IntermediateStepType))
def test_atlas_intermediate_steps(event_type: IntermediateStepType) -> None:
    payload = IntermediateStepPayload(
        event_type=event_type, name="orchestration", data=StreamEventData(input={"task": "t"}, output=None, chunk=None)
    )
    event = IntermediateStep(
        parent_id="root", function_ancestry=InvocationNode(function_id="root", function_name="root"), payload=payload
    )
    result = check_payload(stored(event.model_dump()), "trajectory-event")
    assert result.violations == ()


def test_atlas_triage_dossier_from_caller_metadata_with_a_datetime() -> None:
    caller = {
        "summary": "SRE investigation for checkout",
        "tags": "latency",
        "risks": [{"description": "p99 over SLO", "severity": "sev1"}, "pager fatigue"],
        "signals": [{"name": "p99_ms", "value": 2300, "confidence": 0.9}],
        "persona_references": [{"id": "sre-oncall"}],
        "embeddings": {"task": [0.1, 0.2]},
        "opened_at": dt.datetime(2025, 11, 3, 14, 22, 5, tzinfo=dt.timezone.utc),
    }
    dossier = default_build_dossier("Investigate the checkout latency spike.", caller)
    metadata = stored({**caller, "learning_key": D.LEARNING_KEY, "triage_dossier": dossier.model_dump()})
    assert metadata["opened_at"] == "2025-11-03 14:22:05+00:00"  # str(datetime): a space, not 'T'
    result = check_payload(metadata, "session-metadata")
    assert result.errors == ()
    assert sorted((w.path, w.quirk) for w in result.warnings) == [("$.tags", "tags-as-string")]
    # a caller key nobody describes ends up in the census
    assert [(u.path, u.key) for u in result.unknown_fields] == [("$", "opened_at")]


@pytest.mark.parametrize("alert", [False, True])
def test_atlas_drift_assessment(alert: bool) -> None:
    baseline = {
        "window": 50,
        "sample_count": 6,
        "score_mean": 0.8,
        "score_median": 0.8,
        "score_stddev": 0.1,
        "uncertainty_mean": 0.1,
        "uncertainty_median": 0.1,
        "uncertainty_stddev": 0.0,
        "best_uncertainty_mean": 0.1,
        "best_uncertainty_median": 0.1,
        "best_uncertainty_stddev": 0.0,
        "scores": [0.8] * 6,
        "uncertainties": [0.1] * 6,
        "best_uncertainties": [0.1] * 6,
    }
    assessment = DriftAssessment(
        alert=alert,
        reason="score_z" if alert else None,
        score_delta=-0.4,
        score_z=-4.0 if alert else None,
        score_mad_z=None,
        uncertainty_delta=0.0,
        uncertainty_z=None,
        uncertainty_mad_z=None,
        threshold=3.0,
        window=50,
        learning_key=D.LEARNING_KEY,
        baseline=baseline,
    )
    payload = assessment.to_dict()
    if alert:  # core adds the message on alert only
        payload.setdefault("message", f"Reward drift alert ({assessment.reason or 'threshold'})")
    assert check_payload(stored(payload), "drift").violations == ()
    if alert:
        del payload["message"]
        assert [e.keyword for e in check_payload(stored(payload), "drift").errors] == ["required"]


def test_atlas_learning_history_both_forms() -> None:
    empty = aggregate_learning_history([])
    assert check_payload(stored({"learning_key": "k", "learning_history": empty}), "session-metadata").violations == ()
    records = [
        {
            "reward": reward().to_dict(),
            "student_learning": "note",
            "teacher_learning": None,
            "created_at": dt.datetime(2025, 11, 1, tzinfo=dt.timezone.utc),
            "completed_at": None,
        }
        for _ in range(3)
    ]
    history = aggregate_learning_history(records, limit=2)
    result = check_payload(stored({"learning_key": "k", "learning_history": history}), "session-metadata")
    assert result.violations == ()


def test_serialisation_fallback_of_a_circular_payload() -> None:
    circular: dict[str, Any] = {"learning_key": "k"}
    circular["self"] = circular
    value = stored(circular)
    assert isinstance(value, str) and value.startswith("{'learning_key': 'k'")
    result = check_payload(value, "session-metadata")
    assert result.errors == ()
    assert [w.quirk for w in result.warnings] == ["serialisation-fallback"]
