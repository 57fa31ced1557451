"""Differential test: jsonschema-rs (the verdict) and python-jsonschema (the details) agree on every
generated document, for all three variants of every schema (lenient, no_quirk, closed).

Documents come from two sources: random mutations of the hand-written realistic documents
(contract_documents), and the public strategies of pytest_atlas.strategies, mutated or not.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_atlas.validation import SCHEMA_NAMES, check_payload, is_valid
from pytest_atlas.validation._detail import detail_validator, registry
from pytest_atlas.validation._schemas import Variant, documents, variant_documents
from pytest_atlas.validation._validator import _compile_rs

from . import contract_documents as D

VARIANTS: tuple[Variant, ...] = ("lenient", "no_quirk", "closed")

# values that probe types, ranges, enums, formats and patterns (no NaN: JSON has none)
TRICKY: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    0.4,
    1.0,
    1.5,
    -0.1,
    3.7,
    2**53 + 1,
    "",
    "x",
    "auto",
    "escalate",
    "tier1",
    "single_shot",
    "stepwise",
    "LLM_START",
    "pending",
    "quarantined",
    "2025-11-03T14:22:05.118402+00:00",
    "2025-11-03 14:22:05.118402+00:00",
    "2025-11-03T23:59:60Z",
    "2025-06-30T15:59:60-08:00",
    "2025-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2025-11-03T14:22:05",
    "2025-11-03t14:22:05z",
    "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e",
    "a1b2c3d4e5f60718",
    "{'a': 1}",
    "[1, 2]",
    "OrderedDict()",
    [],
    [1, "a"],
    ["x", "y"],
    {},
    {"mock": True},
    {"k": 1},
    {"score": 0.5},
    {"average": 0.0, "count": 1},
    {"metadata": {}},
]


@functools.cache
def engines(name: str, variant: Variant) -> tuple[Any, Any]:
    docs = variant_documents(variant)
    python = detail_validator(docs[name], registry(docs))
    return _compile_rs(documents()[name], variant), python


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with 0-3 random edits: replace a value, delete a key, add a key, or truncate a list."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "truncate"]))
        value = copy.deepcopy(draw(st.sampled_from(TRICKY)))
        if not path:
            if action == "replace":
                document = value
            continue
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if action == "replace":
            parent[last] = value
        elif action == "delete" and isinstance(parent, dict):
            del parent[last]
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(["extra", "score", "mode", "timestamp", "stage", "tags"]))] = value
        elif action == "truncate" and isinstance(parent[last], list):
            del parent[last][1:]
    return document


def _agree(name: str, document: Any) -> None:
    for variant in VARIANTS:
        fast, python = engines(name, variant)
        verdict = fast.is_valid(document)
        assert verdict == python.is_valid(document), (name, variant, document)
    # and the public verdicts are consistent with the detailed result
    result = check_payload(document, name)
    assert is_valid(document, name) == result.valid


BASES = [(name, builder) for name, builders in D.CLEAN.items() for builder in builders]
QUIRKY = [("session-metadata", D.failed_session_metadata), ("plan", D.stepwise_plan)]


@pytest.mark.parametrize(("name", "build"), BASES + QUIRKY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BASES + QUIRKY)])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_engines_agree_on_mutated_realistic_documents(name: str, build: Any, data: st.DataObject) -> None:
    document = data.draw(mutated(build()))
    _agree(name, document)


def _public_strategies() -> dict[str, Any]:
    from pytest_atlas import strategies as S

    return {
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


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_engines_agree_on_the_public_strategies(name: str, data: st.DataObject) -> None:
    base = data.draw(_public_strategies()[name])
    # the strategies promise valid documents: they must pass (warnings allowed)
    assert check_payload(base, name).errors == ()
    _agree(name, base)
    _agree(name, data.draw(mutated(base)))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(TRICKY[23:33])
    | st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?\Z"
    )
)
def test_engines_agree_on_date_times(value: str) -> None:
    schema = {"type": "string", "format": "date-time"}
    python = detail_validator(schema, registry({}))
    fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    assert fast.is_valid(value) == python.is_valid(value), value
