"""The JSON Schemas against Atlas's own models: every field Atlas 0.1.16 declares Optional, in a model
whose dump ends up in a JSON column, is nullable in the matching schema (and every field is allowed
there at all).

The models are walked programmatically: pydantic models through ``model_fields``, dataclasses
through ``dataclasses.fields`` and their resolved type hints; a field whose type is another model
(directly, in a list, as the values of a dict, in a union) is walked in the subschema its value
has. Only the *roots* are listed by hand, because only reading Atlas tells where a model is
stored: :data:`ROOTS` names each root model with the schema location of its dump, and
:data:`NOT_STORED` the models of ``atlas`` that look like payloads but never reach a JSON column as
such (with the reason). A test fails when a pydantic model or dataclass of the packages that write
payloads is in neither list, so a new Atlas model cannot slip by.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import pydantic
import pytest

from pytest_atlas.validation._schemas import ALL_NAMES, BASE_URI, document, lookup, uri_of

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # importing atlas must not go to the network

ATLAS_VERSION = "0.1.16"


@dataclass(frozen=True)
class Root:
    """A model whose dump is stored, and where its schema is: ``schema`` + JSON pointer ``at``."""

    model: str  # "module:Class" in atlas
    schema: str
    at: str
    #: only these fields are written (the rest of the model is not stored), when not None
    fields: tuple[str, ...] | None = None
    why: str = ""

    @property
    def location(self) -> str:
        return f"{uri_of(self.schema)}#{self.at}"


ROOTS: tuple[Root, ...] = (
    Root("atlas.types:Plan", "plan", "/$defs/plan", why="database.py stores plan.model_dump() in plans.plan"),
    Root(
        "atlas.types:StepEvaluation",
        "step-evaluation",
        "/$defs/stepEvaluation",
        why="database.py stores evaluation.to_dict() in step_results / step_attempts",
    ),
    Root(
        "atlas.runtime.schema:AtlasRewardBreakdown",
        "session-reward",
        "/$defs/sessionReward",
        why="database.py stores reward.to_dict() in sessions.reward",
    ),
    Root(
        "atlas.runtime.schema:AtlasRewardBreakdown",
        "step-evaluation",
        "/$defs/stepReward",
        why="StepEvaluation.to_dict() holds reward.to_dict()",
    ),
    Root(
        "atlas.runtime.models.intermediate_step:IntermediateStep",
        "trajectory-event",
        "/$defs/event",
        why="database.py stores event.model_dump() in trajectory_events.event",
    ),
    Root(
        "atlas.runtime.learning.drift:DriftAssessment",
        "drift",
        "",
        why="core stores drift_result.to_dict() in sessions.metadata.drift",
    ),
    Root(
        "atlas.utils.triage:TriageDossier",
        "session-metadata",
        "/$defs/triageDossier",
        why="the dossier's model_dump() is stored in sessions.metadata",
    ),
    Root(
        "atlas.runtime.adaptive.probe:CapabilityProbeDecision",
        "session-metadata",
        "/$defs/adaptiveSummary/properties/probe",
        fields=("mode", "confidence"),
        why="set_capability_probe stores {mode, confidence} of the decision in adaptive_summary.probe",
    ),
    Root(
        "atlas.learning.playbook_entries:PlaybookEntryEvaluation",
        "learning-registry-metadata",
        "/$defs/rubric",
        why="each playbook entry's rubric is evaluation.to_dict()",
    ),
    Root(
        "atlas.sdk.discovery_worker:StepRecord",
        "discovery-payload",
        "/$defs/historyItem",
        fields=("action", "reward", "done", "info", "submit", "metadata"),
        why="the discovery worker writes each record's fields into discovery_runs.payload.history[*]",
    ),
    Root(
        "atlas.sdk.interfaces:DiscoveryContext",
        "discovery-payload",
        "/$defs/historyItem",
        fields=("step_index", "observation"),
        why="... together with its context's step_index and observation",
    ),
)

_INTERNAL = "internal to the runtime: never serialised"
_REPORT = "a learning report the CLI prints or writes to a file, not to the database"
#: models of atlas that are not stored as such in a JSON column (or not at all), and why
NOT_STORED: dict[str, str] = {
    "atlas.evaluation.evaluator:RewardEvaluation": "the evaluator's return value: stored as its AtlasRewardBreakdown",
    "atlas.evaluation.evaluator:SessionSample": "in memory; reward_audit entries are dicts the evaluator builds",
    "atlas.evaluation.evaluator:SessionStepRecord": "the judges' input, " + _INTERNAL,
    "atlas.evaluation.evaluator:SessionTrajectory": "the judges' input, " + _INTERNAL,
    "atlas.evaluation.judges.base:JudgeContext": "the legacy judge interface, " + _INTERNAL,
    "atlas.evaluation.judges.base:JudgeOutcome": "the legacy judge interface, " + _INTERNAL,
    "atlas.evaluation.judges.base:JudgeSample": "the legacy judge interface, " + _INTERNAL,
    "atlas.evaluation.learning_report:DiscoveryRunRef": _REPORT,
    "atlas.evaluation.learning_report:EfficiencySnapshot": _REPORT,
    "atlas.evaluation.learning_report:LearningModelBreakdown": _REPORT,
    "atlas.evaluation.learning_report:LearningSummary": _REPORT,
    "atlas.evaluation.learning_report:PlaybookImpactEntry": _REPORT,
    "atlas.evaluation.learning_report:PlaybookLifecycleSummary": _REPORT,
    "atlas.evaluation.learning_report:PlaybookMetricsSummary": _REPORT,
    "atlas.evaluation.learning_report:RewardSnapshot": _REPORT,
    "atlas.evaluation.learning_report:SessionSnapshot": _REPORT,
    "atlas.evaluation.learning_report:UsageMetrics": _REPORT,
    "atlas.evaluation.learning_report:WindowSpec": _REPORT,
    "atlas.learning.playbook_entries:EvaluatedPlaybookEntry": (
        "stored as to_metadata(): its entry dict plus the rubric (PlaybookEntryEvaluation, walked)"
    ),
    "atlas.learning.synthesizer:LearningSynthesisResult": (
        "spread over columns: student/teacher learning are TEXT, learning_state and the note go into "
        "metadata keys one by one"
    ),
    "atlas.learning.usage:_TrackerConfig": _INTERNAL,
    "atlas.runtime.agent_loop.tool_loop:ToolCallAgentGraphState": "LangGraph state, " + _INTERNAL,
    "atlas.runtime.orchestration.orchestrator:AdaptiveModeDecision": (
        "written field by field by record_mode_decision, which leaves out a confidence that is None"
    ),
    "atlas.runtime.orchestration.orchestrator:_StepExecutionOutcome": _INTERNAL,
    "atlas.runtime.orchestration.step_manager:_OpenStep": _INTERNAL,
    "atlas.runtime.schema:AtlasSessionTrace": "built from database rows by atlas.training_data, never written",
    "atlas.runtime.schema:AtlasStepTrace": "built from database rows by atlas.training_data, never written",
    "atlas.sdk.discovery:Candidate": "`atlas env init`'s scan result: only chosen fields reach the discovery metadata",
    "atlas.sdk.factory_synthesis:ClassContext": "`atlas env init`'s code generation, " + _INTERNAL,
    "atlas.sdk.factory_synthesis:FactorySnippet": "`atlas env init`'s code generation, " + _INTERNAL,
    "atlas.sdk.factory_synthesis:RepositorySummary": "`atlas env init`'s code generation, " + _INTERNAL,
    "atlas.sdk.factory_synthesis:SynthesisOutcome": "`atlas env init`'s code generation, " + _INTERNAL,
    "atlas.sdk.interfaces:DiscoveryEvent": "emitted to telemetry callbacks; the stored events are dicts",
    "atlas.types:Result": "the run's return value: final_answer is a TEXT column, the rest is stored per part",
    "atlas.types:StepResult": "a step_results row: its JSON columns are StepEvaluation (walked) and a plain dict",
    "atlas.utils.llm_client:LLMResponse": "a provider response, " + _INTERNAL,
    "atlas.utils.triage:TriageDossierBuilder": "builds a TriageDossier (walked), " + _INTERNAL,
}

#: the packages of atlas whose models may reach a JSON column
PACKAGES = ("atlas.types", "atlas.runtime", "atlas.utils", "atlas.learning", "atlas.evaluation", "atlas.sdk")


def _model(path: str) -> type:
    module, _, name = path.partition(":")
    value = getattr(importlib.import_module(module), name)
    assert isinstance(value, type), path
    return value


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and (
        dataclasses.is_dataclass(value) or (issubclass(value, pydantic.BaseModel) and value is not pydantic.BaseModel)
    )


def fields(model: type) -> dict[str, Any]:
    """Field name (as the dump writes it) -> resolved annotation."""
    if issubclass(model, pydantic.BaseModel):
        return {name: info.annotation for name, info in model.model_fields.items()}
    hints = typing.get_type_hints(model)
    return {field.name: hints[field.name] for field in dataclasses.fields(model)}


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def optional(tp: Any) -> bool:
    """Does the annotation admit None (Optional[X], X | None, Any | None)?"""
    origin = typing.get_origin(tp)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in _args(tp)


def nested(tp: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], type]]:
    """The models inside an annotation, with the schema path from the field's value to them
    (``items`` for list elements, ``additionalProperties`` for dict values)."""
    if _is_model(tp):
        yield path, tp
        return
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in _args(tp):
            yield from nested(arg, path)
    elif origin in (list, tuple, typing.Sequence, set) or (origin is not None and str(origin).endswith("Sequence'>")):
        for arg in _args(tp):
            yield from nested(arg, (*path, "items"))
    elif origin is dict:
        args = _args(tp)
        if len(args) == 2:
            yield from nested(args[1], (*path, "additionalProperties"))


# ------------------------------------------------------------------------------------------------
# schema navigation
# ------------------------------------------------------------------------------------------------


def _node(location: str) -> Any:
    return lookup(location)


def _resolve(location: str) -> str:
    """Follow $ref chains (a node that is only a $ref) to the node that holds the keywords."""
    for _ in range(20):
        node = _node(location)
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            base = location.split("#", 1)[0]
            if ref.startswith("#"):
                location = base + ref
            else:
                target = ref if "://" in ref else BASE_URI + ref
                location = target if "#" in target else target + "#"
            continue
        return location
    raise AssertionError(f"$ref loop at {location}")


def alternatives(location: str, *, objects_only: bool = True) -> list[str]:
    """The schemas a value at ``location`` may match: the node itself and its branches (allOf /
    anyOf / oneOf / then / else), each resolved through $ref; only object schemas by default."""
    found: list[str] = []
    pending = [location]
    seen: set[str] = set()
    while pending:
        here = _resolve(pending.pop())
        if here in seen:
            continue
        seen.add(here)
        node = _node(here)
        if not isinstance(node, dict):
            continue
        if not objects_only or "properties" in node or "additionalProperties" in node or node.get("type") == "object":
            found.append(here)
        for keyword in ("allOf", "anyOf", "oneOf"):
            for index in range(len(node.get(keyword, []))):
                pending.append(f"{here}/{keyword}/{index}")
        for keyword in ("then", "else"):
            if keyword in node:
                pending.append(f"{here}/{keyword}")
    return found


def _accepts_null(location: str) -> bool:
    return bool(_validator(location).is_valid(None))


_VALIDATORS: dict[str, Any] = {}


def _validator(location: str) -> Any:
    if location not in _VALIDATORS:
        registry = jsonschema_rs.Registry([(uri_of(name), document(name)) for name in ALL_NAMES])
        _VALIDATORS[location] = jsonschema_rs.Draft202012Validator({"$ref": location}, registry=registry)
    return _VALIDATORS[location]


def field_locations(location: str, name: str) -> tuple[list[str], bool]:
    """(schema locations that declare field ``name`` of the object at ``location``, whether an
    undeclared key is allowed there)."""
    declared: list[str] = []
    open_object = False
    for here in alternatives(location):
        node = _node(here)
        if name in node.get("properties", {}):
            declared.append(f"{here}/properties/{name}")
        elif node.get("additionalProperties", True) is not False and node.get("unevaluatedProperties") is not False:
            open_object = True
    return declared, open_object


def walk(model: type, location: str, only: tuple[str, ...] | None, trail: str) -> Iterator[str]:
    """Every problem of ``model`` against the object schema at ``location``."""
    for name, annotation in fields(model).items():
        if only is not None and name not in only:
            continue
        where = f"{trail}.{name}"
        declared, open_object = field_locations(location, name)
        if not declared and not open_object:
            yield f"{where}: Atlas writes this field, the schema at {location} does not allow it"
            continue
        if optional(annotation) and declared and not any(_accepts_null(spot) for spot in declared):
            yield f"{where}: Optional in Atlas ({annotation}), not nullable at {declared[0]}"
        for sub, inner in nested(annotation):
            for spot in declared:
                targets = [t for t in value_locations(spot, sub) if _resolvable(t)]
                assert targets, f"{where}: no subschema for the {inner.__name__} values at {spot}"
                for target in targets:
                    yield from walk(inner, target, None, f"{where}{''.join('[*]' for _ in sub)}")


def value_locations(location: str, steps: tuple[str, ...]) -> list[str]:
    """Where the values reached by ``steps`` (``items``, ``additionalProperties``) from ``location``
    are described: through $ref and combinators, and ``patternProperties`` for dict values."""
    if not steps:
        return [location]
    step, rest = steps[0], steps[1:]
    found: list[str] = []
    for here in alternatives(location, objects_only=False):
        node = _node(here)
        if step == "items" and isinstance(node.get("items"), dict | bool):
            found += value_locations(f"{here}/items", rest)
        elif step == "additionalProperties":
            if isinstance(node.get("additionalProperties"), dict):
                found += value_locations(f"{here}/additionalProperties", rest)
            for pattern in node.get("patternProperties", {}):
                token = quote(pattern.replace("~", "~0").replace("/", "~1"), safe="")
                found += value_locations(f"{here}/patternProperties/{token}", rest)
    return found


def _resolvable(location: str) -> bool:
    try:
        _node(_resolve(location))
    except (KeyError, IndexError, ValueError):
        return False
    return True


# ------------------------------------------------------------------------------------------------
# the tests
# ------------------------------------------------------------------------------------------------


def test_atlas_is_the_version_the_schemas_follow() -> None:
    from importlib.metadata import version

    assert version("arc-atlas") == ATLAS_VERSION


@pytest.mark.parametrize("root", ROOTS, ids=[f"{r.model.split(':')[1]}->{r.schema}{r.at}" for r in ROOTS])
def test_every_optional_field_of_a_stored_model_is_nullable_in_its_schema(root: Root) -> None:
    model = _model(root.model)
    assert _resolvable(root.location), f"{root.location} does not exist"
    problems = list(walk(model, root.location, root.fields, model.__name__))
    assert problems == []


def _atlas_models() -> Iterator[str]:
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package]
        if hasattr(package, "__path__"):
            for info in pkgutil.walk_packages(package.__path__, package_name + "."):
                try:
                    modules.append(importlib.import_module(info.name))
                except Exception:  # an optional integration Atlas cannot import here
                    continue
        for module in modules:
            for name, value in inspect.getmembers(module, _is_model):
                if value.__module__ == module.__name__:
                    yield f"{module.__name__}:{name}"


def test_every_atlas_model_is_known_to_this_test() -> None:
    """A model reached from a root (walked) or listed in NOT_STORED; anything else is new in Atlas."""
    reached: set[str] = set()

    def visit(model: type) -> None:
        key = f"{model.__module__}:{model.__qualname__}"
        if key in reached:
            return
        reached.add(key)
        for annotation in fields(model).values():
            for _, inner in nested(annotation):
                visit(inner)

    for root in ROOTS:
        visit(_model(root.model))
    unknown = sorted(set(_atlas_models()) - reached - set(NOT_STORED))
    assert unknown == []


def test_the_walk_finds_a_field_made_non_nullable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: with judgeSample.uncertainty made non-nullable, the walk names it."""
    import copy

    from pytest_atlas.validation import _schemas

    common = copy.deepcopy(dict(document("common")))
    common["$defs"]["judgeSample"]["properties"]["uncertainty"] = {"$ref": "#/$defs/uncertainty"}
    original = _schemas.document

    def patched(name: str) -> Any:
        return common if name == "common" else original(name)

    monkeypatch.setattr(_schemas, "document", patched)
    monkeypatch.setitem(globals(), "document", patched)
    _VALIDATORS.clear()
    try:
        root = ROOTS[2]
        problems = list(walk(_model(root.model), root.location, root.fields, "AtlasRewardBreakdown"))
    finally:
        _VALIDATORS.clear()
    assert problems == [
        "AtlasRewardBreakdown.judges[*].samples[*].uncertainty: Optional in Atlas (typing.Optional[float]), "
        "not nullable at https://raw.githubusercontent.com/pytest-atlas/pytest-atlas/main/jsonschemas/"
        "common.schema.json#/$defs/judgeSample/properties/uncertainty"
    ]
