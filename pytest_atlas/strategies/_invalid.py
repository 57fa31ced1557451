"""Near-miss documents: a valid payload with exactly one rule broken, labelled with that rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from pytest_atlas._arguments import call_error
from pytest_atlas.strategies._graphs import export_traces
from pytest_atlas.strategies._payloads import (
    discovery_metadata,
    discovery_payloads,
    drift_assessments,
    learning_registry_metadata,
    plans,
    reward_audits,
    reward_stats,
    session_metadata,
    session_rewards,
    step_evaluations,
    step_metadata,
    trajectory_events,
)
from pytest_atlas.validation import validator_for

__all__ = ["MUTATIONS", "Invalid", "Mutation", "invalid"]

Path = tuple[str, ...]


@dataclass(frozen=True)
class Mutation:
    """One rule of a schema and how to break it at ``path`` (``"*"`` = any item of a list)."""

    path: Path
    kind: str  # "type", "enum", "required", "additional", "minimum", "const"
    rule: str


@dataclass(frozen=True)
class Invalid:
    """A document that breaks exactly one rule of ``schema``.

    ``rule`` says which (``"execution_mode must be auto, paired, coach or escalate"``), ``kind`` is
    the JSON Schema keyword it breaks (``type``, ``enum``, ``required``, ``additionalProperties``,
    ``minimum``, ``const``), ``path`` the JSONPath of the broken value (for ``required``: of the
    object missing the key) and ``document`` the payload itself.
    """

    schema: str
    rule: str
    kind: str
    path: str
    document: Any

    def __repr__(self) -> str:
        return f"Invalid(schema={self.schema!r}, rule={self.rule!r}, kind={self.kind!r}, path={self.path!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this (the summary, not 30 kB of JSON)."""
        printer.text(repr(self))


_BYTE = st.binary(min_size=1, max_size=1)
_KEYWORD = {
    "type": "type",
    "enum": "enum",
    "required": "required",
    "additional": "additionalProperties",
    "minimum": "minimum",
    "const": "const",
}

#: the rules each schema's near-misses break, simplest first
MUTATIONS: dict[str, tuple[Mutation, ...]] = {
    "session-metadata": (
        Mutation(("execution_mode",), "enum", "execution_mode must be auto, paired, coach or escalate"),
        Mutation(("learning_key",), "type", "learning_key must be a string"),
        Mutation(("drift_alert",), "type", "drift_alert must be a boolean"),
        Mutation(("review", "require_approval"), "type", "review.require_approval must be a boolean"),
        Mutation(("token_usage",), "additional", "token_usage has exactly four keys"),
        Mutation(("reward_stats", "score"), "type", "reward_stats.score must be a number"),
        Mutation(("adaptive_summary", "adaptive_mode"), "enum", "adaptive_summary.adaptive_mode must be a mode"),
        Mutation(
            ("triage_dossier", "risks", "*", "severity"),
            "enum",
            "risk severity must be low, moderate, high or critical",
        ),
        Mutation(("learning_history", "count"), "minimum", "learning_history.count must not be negative"),
        Mutation(("drift", "reason"), "enum", "drift.reason must name a drift metric or insufficient_baseline"),
    ),
    "session-reward": (
        Mutation(("score",), "type", "score must be a number"),
        Mutation(("judges", "*", "escalated"), "type", "a judge's escalated must be a boolean"),
        Mutation(("judges", "*", "samples", "*", "score"), "type", "a sample's score must be a number"),
        Mutation(("judges",), "type", "judges must be a list"),
    ),
    "reward-stats": (
        Mutation(("score",), "type", "score must be a number (the float index on reward_stats.score)"),
        Mutation(("score",), "required", "score is required"),
        Mutation(("score_stddev",), "minimum", "score_stddev must not be negative"),
        Mutation(("sample_count",), "type", "sample_count must be an integer"),
        Mutation((), "additional", "reward_stats has no other keys"),
    ),
    "reward-audit": (
        Mutation(("*", "stage"), "enum", "an audit entry's stage must be tier1 or arbiter"),
        Mutation(("*", "messages"), "type", "an audit entry's messages must be a list"),
        Mutation(("*", "model"), "type", "an audit entry's model must be a string"),
    ),
    "drift": (
        Mutation(("reason",), "enum", "reason must name a drift metric, insufficient_baseline or be null"),
        Mutation(("score_z",), "type", "score_z must be a number or null"),
        Mutation(("baseline",), "additional", "baseline has exactly the eleven summary keys"),
        Mutation(("window",), "minimum", "window must be at least 1"),
        Mutation(("threshold",), "minimum", "threshold must not be negative"),
    ),
    "trajectory-event": (
        Mutation(("payload", "event_type"), "enum", "payload.event_type must be one of the 16 event types"),
        Mutation((), "additional", "an envelope has exactly parent_id, function_ancestry and payload"),
        Mutation(("payload", "UUID"), "required", "payload.UUID is required"),
        Mutation(("payload", "event_timestamp"), "type", "payload.event_timestamp must be a number"),
    ),
    "plan": (
        Mutation(("execution_mode",), "enum", "execution_mode must be stepwise or single_shot"),
        Mutation(("steps", "*", "id"), "type", "a step id must be an integer"),
        Mutation(("steps", "*", "depends_on"), "required", "a step has depends_on"),
        Mutation(("steps",), "type", "steps must be a list"),
    ),
    "step-evaluation": (
        Mutation(("validation", "valid"), "type", "validation.valid must be a boolean"),
        Mutation(("reward", "score"), "type", "reward.score must be a number"),
        Mutation(("reward",), "required", "reward is required"),
    ),
    "step-metadata": (
        Mutation(("runtime", "reward_skipped"), "type", "runtime.reward_skipped must be a boolean"),
        Mutation(("reasoning",), "type", "reasoning must be a list"),
    ),
    "discovery-payload": (
        Mutation(("reward", "steps"), "type", "reward.steps must be an integer"),
        Mutation(("telemetry", "events", "*", "origin"), "enum", "a telemetry event's origin must be agent or atlas"),
        Mutation(("capabilities",), "required", "capabilities is required"),
    ),
    "discovery-metadata": (
        Mutation(("capabilities",), "type", "capabilities must be an object"),
        Mutation(("capabilities", "control_loop"), "enum", "capabilities.control_loop must be self or tool"),
        Mutation(("version",), "const", "version must be 1"),
        Mutation(("run_artifact",), "type", "run_artifact must be a string"),
    ),
    "learning-registry-metadata": (
        Mutation(("playbook_entries",), "type", "playbook_entries must be a list"),
        Mutation(("playbook_entries", "*", "cue", "type"), "enum", "a cue's type must be regex, keyword or predicate"),
        Mutation(("playbook_version",), "type", "playbook_version must be a string"),
    ),
    "export-trace": (
        Mutation(("task",), "type", "task must be a string"),
        Mutation(("steps",), "type", "steps must be a list"),
        Mutation(("session_metadata",), "type", "session_metadata must be an object"),
    ),
}

_VALID: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "session-metadata": lambda: session_metadata(status="succeeded"),
    "session-reward": session_rewards,
    "reward-stats": reward_stats,
    "reward-audit": reward_audits,
    "drift": drift_assessments,
    "trajectory-event": trajectory_events,
    "plan": plans,
    "step-evaluation": step_evaluations,
    "step-metadata": step_metadata,
    "discovery-payload": lambda: discovery_payloads(empty=False),
    "discovery-metadata": discovery_metadata,
    "learning-registry-metadata": lambda: learning_registry_metadata(entries=(1, 3)),
    "export-trace": export_traces,
}


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"0": value[0] if value else None}
    if isinstance(value, dict):
        return [value]
    return {"unexpected": "object"}


def _locate(document: Any, path: Path, choose: Callable[[int], int]) -> list[str | int] | None:
    """A concrete path (list indices chosen) that exists in ``document``, or None."""
    concrete: list[str | int] = []
    node = document
    for segment in path:
        if segment == "*":
            if not isinstance(node, list) or not node:
                return None
            index = choose(len(node))
            concrete.append(index)
            node = node[index]
        else:
            if not isinstance(node, dict) or segment not in node:
                return None
            concrete.append(segment)
            node = node[segment]
    return concrete


def _json_path(segments: list[str | int]) -> str:
    out = "$"
    for segment in segments:
        out += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return out


def _apply(document: Any, where: list[str | int], mutation: Mutation) -> tuple[Any, str]:
    mutated = copy.deepcopy(document)
    if not where:
        if mutation.kind == "additional":
            mutated["unexpected_key"] = True
            return mutated, "$"
        return _wrong_type(mutated), "$"
    parent: Any = mutated
    for segment in where[:-1]:
        parent = parent[segment]
    last = where[-1]
    value = parent[last]
    if mutation.kind == "type":
        parent[last] = _wrong_type(value)
    elif mutation.kind == "enum":
        parent[last] = f"not-a-{last}"
    elif mutation.kind == "required":
        del parent[last]
        return mutated, _json_path(where[:-1])
    elif mutation.kind == "additional":
        if not isinstance(value, dict):
            raise AssertionError(f"{mutation}: not an object")
        value["unexpected_key"] = True
    elif mutation.kind == "minimum":
        parent[last] = -1 if isinstance(value, int) and not isinstance(value, bool) else -0.5
        if mutation.path[-1] in ("window",):
            parent[last] = 0
    elif mutation.kind == "const":
        parent[last] = (value + 1) if isinstance(value, int) else "other"
    return mutated, _json_path(where)


@st.composite
def _invalid(draw: st.DrawFn, schema: str, rule: str | None) -> Invalid:
    document = draw(_VALID[schema]())

    def choose(size: int) -> int:
        chosen: int = draw(st.integers(0, size - 1))
        return chosen

    candidates = []
    for mutation in MUTATIONS[schema]:
        if rule is not None and mutation.rule != rule:
            continue
        where = _locate(document, mutation.path, lambda size: 0)
        if where is not None:
            candidates.append(mutation)
    if not candidates:  # only with a pinned rule whose target this document lacks (an optional key)
        reject()
    # the first rule of every schema targets a key its valid documents always have
    # one uniform byte picks the rule (sampled_from leans on the first ones); zero, the shrink
    # target, is the first rule
    mutation = candidates[draw(_BYTE)[0] % len(candidates)]
    where = _locate(document, mutation.path, choose)
    assert where is not None
    mutated, path = _apply(document, where, mutation)
    return Invalid(schema=schema, rule=mutation.rule, kind=_KEYWORD[mutation.kind], path=path, document=mutated)


def invalid(schema: str, *, rule: str | None = None) -> st.SearchStrategy[Invalid]:
    """Near-miss documents for ``schema`` (a name from ``pytest_atlas.validation.SCHEMA_NAMES``, e.g.
    ``"session-metadata"``): a valid document drawn from the matching payload strategy with exactly
    one rule broken — a wrong type, a value outside an enum, a missing required key, an unexpected
    key in a closed object, a number below its minimum — labelled as an :class:`Invalid` with the
    rule, the JSON Schema keyword and the JSONPath of the break. Use them to test your own error
    handling: a validator should reject each, at that path. ``rule`` (one of the ``rule`` texts of
    ``MUTATIONS[schema]``) breaks only that rule.

    Shrinks towards the schema's first rule on the simplest valid document.
    """
    if schema not in MUTATIONS:
        shown = ", ".join(repr(name) for name in MUTATIONS)
        raise call_error("invalid", "schema", schema, f"one of {shown}")
    if rule is not None and rule not in {mutation.rule for mutation in MUTATIONS[schema]}:
        raise call_error(
            "invalid",
            "rule",
            rule,
            f"one of the rules in MUTATIONS[{schema!r}]",
            hint="print(pytest_atlas.strategies.MUTATIONS[schema]) lists them",
        )
    # the examples check these documents and each fails: load the detailed-error engine now, outside
    # every example, so the first one stays well inside Hypothesis's deadline
    validator_for(schema).prepare()
    return _invalid(schema, rule)
