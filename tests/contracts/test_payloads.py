"""Realistic Atlas payloads pass, each known quirk passes with its warning, targeted mutations fail exactly."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pytest_atlas.validation import check_payload, is_valid, iter_errors, validate

from . import contract_documents as D

CLEAN = [(name, builder) for name, builders in D.CLEAN.items() for builder in builders]


@pytest.mark.parametrize(("schema", "build"), CLEAN, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CLEAN)])
def test_realistic_documents_pass_without_warnings(schema: str, build: Callable[[], Any]) -> None:
    document = build()
    result = check_payload(document, schema)
    assert result.errors == ()
    assert result.warnings == ()
    assert is_valid(document, schema)
    assert validate(document, schema) == []


def test_every_schema_has_realistic_documents() -> None:
    from pytest_atlas.validation import SCHEMA_NAMES

    assert set(D.CLEAN) == set(SCHEMA_NAMES)


def _with(build: Callable[[], Any], change: Callable[[Any], None]) -> Any:
    document = build()
    change(document)
    return document


def _set(*path: Any, value: Any) -> Callable[[Any], None]:
    def change(document: Any) -> None:
        node = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _delete(*path: Any) -> Callable[[Any], None]:
    def change(document: Any) -> None:
        node = document
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return change


# (schema, document, path of the warning, quirk id) — each quirk Atlas writes that a schema tolerates
QUIRKS: list[tuple[str, Any, str, str]] = [
    ("session-metadata", "{'learning_key': 'k', 'self': {...}}", "$", "serialisation-fallback"),
    ("reward-audit", "[{'stage': 'tier1', 'model': 'gemini/gemini-2.5-flash'}]", "$", "serialisation-fallback"),
    ("plan", "OrderedDict([('steps', [])])", "$", "serialisation-fallback"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("learning_state", "updated_at", value=D.PY_TS)),
        "$.learning_state.updated_at",
        "python-str-datetime",
    ),
    (
        "reward-stats",
        _with(D.reward_stats, _set("timestamp", value="2025-11-03 14:22:05")),
        "$.timestamp",
        "python-str-datetime",
    ),
    (
        "learning-registry-metadata",
        _with(D.registry_metadata, _set("last_updated_at", value=D.PY_TS)),
        "$.last_updated_at",
        "python-str-datetime",
    ),
    ("session-metadata", _with(D.session_metadata, _set("tags", value="latency")), "$.tags", "tags-as-string"),
    ("session-metadata", D.failed_session_metadata(), "$.reward_summary", "reward-summary-step-average"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("reward_summary", value={"average": 0.0, "count": 1})),
        "$.reward_summary",
        "reward-summary-step-average",
    ),
    ("session-reward", _with(D.session_reward, _set("score", value=1.2)), "$.score", "unclamped-unit-value"),
    (
        "session-reward",
        _with(D.session_reward, _set("judges", 0, "samples", 1, "uncertainty", value=-0.1)),
        "$.judges[0].samples[1].uncertainty",
        "unclamped-unit-value",
    ),
    (
        "session-metadata",
        _with(D.session_metadata, _set("adaptive_summary", "probe", "confidence", value=1.4)),
        "$.adaptive_summary.probe.confidence",
        "unclamped-unit-value",
    ),
    (
        "session-metadata",
        _with(D.session_metadata, _set("execution_mode", value="escalate")),
        "$.execution_mode",
        "legacy-escalate-mode",
    ),
    ("plan", D.stepwise_plan(), "$", "legacy-stepwise-plan"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("learning_state", value={"metadata": {}})),
        "$.learning_state",
        "learning-state-metadata-only",
    ),
    (
        "reward-audit",
        _with(D.reward_audit, _set(0, "raw_response", value={"mock": True})),
        "$[0].raw_response",
        "mock-raw-response",
    ),
    ("reward-stats", _with(D.reward_stats, _set("min_uncertainty", value=0.1)), "$.min_uncertainty", "alias-key"),
    ("session-metadata", {"source": "atlas run", "task_num": 3}, "$", "missing-learning-key"),
]


@pytest.mark.parametrize(
    ("schema", "document", "path", "quirk"), QUIRKS, ids=[f"{q[3]}-{i}" for i, q in enumerate(QUIRKS)]
)
def test_each_quirk_passes_with_a_warning(schema: str, document: Any, path: str, quirk: str) -> None:
    result = check_payload(document, schema)
    assert result.errors == ()
    assert [(w.path, w.quirk, w.severity, w.keyword) for w in result.warnings] == [
        (path, quirk, "warning", "x-atlas-quirk")
    ]
    assert result.warnings[0].message.startswith(quirk + ": ")
    assert validate(document, schema) == list(result.warnings)
    assert list(iter_errors(document, schema)) == []
    assert list(iter_errors(document, schema, warnings=True)) == list(result.warnings)


def test_quirks_that_need_no_warning_are_plain_valid_shapes() -> None:
    """raw_response as the str() of the provider response, judge temperature null, Python-repr strings
    from depth-6 truncation, orphan LLM_START events, alias keys left in playbook entries: all normal."""
    meta = D.step_metadata()
    meta["reasoning"][2]["payload"]["stream_snapshot"] = {"agent": {"messages": ["{'type': 'ai', 'content': 'x'}"]}}
    assert check_payload(meta, "step-metadata").violations == ()
    orphan = D.trajectory_events()[3]
    assert orphan["payload"]["event_type"] == "LLM_START"
    assert check_payload(orphan, "trajectory-event").violations == ()
    assert check_payload(D.registry_metadata(), "learning-registry-metadata").unknown_fields == ()


# (schema, document, expected path, expected keyword)
MUTATIONS: list[tuple[str, Any, str, str]] = [
    # score as a string
    ("reward-stats", _with(D.reward_stats, _set("score", value="0.82")), "$.score", "type"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("reward_stats", "score", value="0.9")),
        "$.reward_stats.score",
        "type",
    ),
    (
        "session-reward",
        _with(D.session_reward, _set("judges", 0, "samples", 0, "score", value="0.8")),
        "$.judges[0].samples[0].score",
        "type",
    ),
    (
        "session-metadata",
        _with(D.session_metadata, _set("reward_summary", "score", value="0.8")),
        "$.reward_summary.score",
        "type",
    ),
    # wrong type
    ("session-metadata", _with(D.session_metadata, _set("drift_alert", value="false")), "$.drift_alert", "type"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("token_usage", "calls", value=3.5)),
        "$.token_usage.calls",
        "type",
    ),
    (
        "session-metadata",
        _with(D.session_metadata, _set("teacher_notes", value="check logs")),
        "$.teacher_notes",
        "type",
    ),
    ("plan", _with(D.plan, _set("steps", 0, "id", value="1")), "$.steps[0].id", "type"),
    (
        "trajectory-event",
        _with(lambda: D.trajectory_events()[0], _set("payload", "event_timestamp", value="1762179725")),
        "$.payload.event_timestamp",
        "type",
    ),
    ("discovery-payload", _with(D.discovery_payload, _set("reward", "steps", value=1.5)), "$.reward.steps", "type"),
    ("session-metadata", [D.session_metadata()], "$", "type"),
    # value outside an enum
    ("session-metadata", _with(D.session_metadata, _set("execution_mode", value="turbo")), "$.execution_mode", "enum"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("adaptive_summary", "adaptive_mode", value="solo")),
        "$.adaptive_summary.adaptive_mode",
        "enum",
    ),
    ("session-metadata", _with(D.session_metadata, _set("review_status", value="rejected")), "$.review_status", "enum"),
    (
        "session-metadata",
        _with(D.session_metadata, _set("triage_dossier", "risks", 0, "severity", value="medium")),
        "$.triage_dossier.risks[0].severity",
        "enum",
    ),
    (
        "trajectory-event",
        _with(lambda: D.trajectory_events()[2], _set("payload", "metadata", "actor", value="judge")),
        "$.payload.metadata.actor",
        "enum",
    ),
    ("plan", _with(D.plan, _set("execution_mode", value="parallel")), "$.execution_mode", "enum"),
    ("drift", _with(lambda: D.drift(True), _set("reason", value="score")), "$.reason", "enum"),
    ("reward-audit", _with(D.reward_audit, _set(1, "stage", value="tier2")), "$[1].stage", "enum"),
    ("discovery-metadata", _with(D.discovery_metadata, _set("agent", "role", value="judge")), "$.agent.role", "enum"),
    (
        "learning-registry-metadata",
        _with(D.registry_metadata, _set("playbook_entries", 0, "cue", "type", value="glob")),
        "$.playbook_entries[0].cue.type",
        "enum",
    ),
    # missing required key
    ("session-metadata", _with(D.session_metadata, _delete("review", "require_approval")), "$.review", "required"),
    ("session-reward", _with(D.session_reward, _delete("judges")), "$", "required"),
    ("drift", _with(lambda: D.drift(False), _delete("baseline", "score_mean")), "$.baseline", "required"),
    ("trajectory-event", _with(lambda: D.trajectory_events()[0], _delete("payload", "UUID")), "$.payload", "required"),
    ("step-evaluation", _with(D.step_evaluation_passthrough, _delete("reward")), "$", "required"),
    ("discovery-payload", _with(D.discovery_payload, _delete("capabilities")), "$", "required"),
    ("export-trace", _with(D.export_trace, _delete("session_metadata")), "$", "required"),
    # closed key sets
    (
        "session-metadata",
        _with(D.session_metadata, _set("triage_dossier", "risk_level", value="high")),
        "$.triage_dossier",
        "additionalProperties",
    ),
    (
        "trajectory-event",
        _with(lambda: D.trajectory_events()[0], _set("type", value="WORKFLOW_START")),
        "$",
        "additionalProperties",
    ),
    # ranges, formats, patterns, consts
    (
        "session-metadata",
        _with(D.session_metadata, _set("applied_student_learning", "char_count", value=1001)),
        "$.applied_student_learning.char_count",
        "maximum",
    ),
    (
        "session-metadata",
        _with(D.session_metadata, _set("applied_student_learning", "digest", value="abc")),
        "$.applied_student_learning.digest",
        "pattern",
    ),
    ("reward-stats", _with(D.reward_stats, _set("timestamp", value="2025-13-03T14:22:05Z")), "$.timestamp", "format"),
    ("reward-stats", _with(D.reward_stats, _set("score_stddev", value=-0.1)), "$.score_stddev", "minimum"),
    ("reward-audit", _with(D.reward_audit, _set(0, "temperature", value=0.3)), "$[0].temperature", "enum"),
    ("drift", _with(lambda: D.drift(True), _set("drift_alert", value=False)), "$.drift_alert", "const"),
    ("session-metadata", "just text", "$", "pattern"),
]


@pytest.mark.parametrize(
    ("schema", "document", "path", "keyword"), MUTATIONS, ids=[f"{m[0]}:{m[2]}:{m[3]}" for m in MUTATIONS]
)
def test_targeted_mutation_fails_with_exact_path_and_keyword(
    schema: str, document: Any, path: str, keyword: str
) -> None:
    errors = list(iter_errors(document, schema))
    assert [(e.path, e.keyword) for e in errors] == [(path, keyword)]
    assert errors[0].severity == "error"
    assert errors[0].schema == schema
    assert not is_valid(document, schema)


def test_messages_explain_themselves() -> None:
    document = D.session_metadata()
    document["reward_stats"]["score"] = "0.9"
    document["execution_mode"] = "turbo"
    del document["review"]["include_all_statuses"]
    messages = [e.format() for e in iter_errors(document, "session-metadata")]
    assert messages == [
        '$.execution_mode: enum: "turbo" is not one of "auto", "paired", "coach"',
        '$.review: required: missing required key "include_all_statuses"',
        '$.reward_stats.score: type: expected number, got string "0.9"',
    ]


def test_nested_copy_matches_its_column_schema() -> None:
    """session_metadata.reward_stats and the reward_stats column use one definition."""
    stats = D.reward_stats()
    stats["sample_count"] = -1
    direct = [(e.path, e.keyword) for e in iter_errors(stats, "reward-stats")]
    nested = [
        (e.path, e.keyword) for e in iter_errors({**D.session_metadata(), "reward_stats": stats}, "session-metadata")
    ]
    assert direct == [("$.sample_count", "minimum")]
    assert nested == [("$.reward_stats.sample_count", "minimum")]


def test_mutations_do_not_touch_the_builders() -> None:
    first = D.session_metadata()
    second = copy.deepcopy(first)
    first["reward_stats"]["score"] = "x"
    assert D.session_metadata() == second
