"""The census walk (validation/_census.py) against the census read from the ``closed`` variant's errors.

A document with no error and no quirk gets its unknown keys from the walk; every other document, and
every document the walk cannot judge, from jsonschema-rs's errors as before. Both must give the same
fields, for every shipped schema, on realistic documents with caller keys added anywhere.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_atlas.validation import SCHEMA_NAMES, PayloadCheck, PayloadValidator, UnknownField, validator_for
from pytest_atlas.validation._census import KeyCensus, Unsupported
from pytest_atlas.validation._schemas import closure, document

from . import contract_documents as D
from .test_differential import TRICKY, _paths, mutated


def _by_errors(name: str) -> PayloadValidator:
    """A validator of ``name`` whose census always comes from the ``closed`` variant's errors."""
    validator = PayloadValidator(name, document(name), closure(name))
    validator.__dict__["_key_census"] = None  # the cached property, set: the walk is never used
    return validator


_SLOW = {name: _by_errors(name) for name in SCHEMA_NAMES}
_KEYS = ["extra", "k_17", "team", "score", "mode", "x y", "$ref", "properties", ""]


@st.composite
def with_caller_keys(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with 1-4 keys added to objects anywhere in it (values of every JSON type)."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        holders = [path for path in _paths(document) if isinstance(_at(document, path), dict)]
        if not holders:
            break
        holder = _at(document, draw(st.sampled_from(holders)))
        holder[draw(st.sampled_from(_KEYS) | st.text(max_size=5))] = copy.deepcopy(draw(st.sampled_from(TRICKY)))
    return document


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _same(name: str, document: Any) -> PayloadCheck:
    fast = validator_for(name).check(document, census=True)
    slow = _SLOW[name].check(document, census=True)
    assert fast == slow, (name, document)
    return fast


def _walk(name: str) -> KeyCensus:
    walk = validator_for(name)._key_census
    assert walk is not None
    return walk


BASES = [(name, builder) for name, builders in D.CLEAN.items() for builder in builders]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_shipped_schema_has_the_walk_and_a_copy_of_one_has_none(name: str) -> None:
    """The walk takes a document valid under no_quirk as valid, which holds for the shipped files
    (tests/contracts/test_schema_files.py checks where their quirks sit), not for any schema: a
    custom schema named and identified like a shipped one takes the validator's way."""
    _walk(name)
    copy_of = {**document(name), "title": name}
    assert validator_for(copy_of).name == name and validator_for(copy_of)._key_census is None


@pytest.mark.parametrize(("name", "build"), BASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BASES)])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_walk_finds_the_keys_the_closed_variant_reports(name: str, build: Any, data: st.DataObject) -> None:
    document = data.draw(with_caller_keys(build()))
    validator = validator_for(name)
    result = _same(name, document)
    if result.errors or validator._closed.is_valid(document) or not validator._no_quirk.is_valid(document):
        return  # not one for the walk (an unstorable document is reported before any census)
    # a document the walk is for: it either says exactly what the validator's errors say, or gives up
    try:
        found = _walk(name)(document)
    except Unsupported:
        return
    assert sorted(found, key=lambda u: (u.path, u.key, u.json_type)) == list(result.unknown_fields)
    assert result.unknown_fields and not result.errors and not result.warnings


@pytest.mark.parametrize(("name", "build"), BASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BASES)])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_documents_get_the_same_check_with_and_without_the_walk(
    name: str, build: Any, data: st.DataObject
) -> None:
    _same(name, data.draw(with_caller_keys(data.draw(mutated(build())))))


def test_caller_keys_at_every_level_of_a_session_are_found_by_the_walk() -> None:
    document = D.session_metadata()
    document["team"] = "sre"
    document["k_17"] = [1]
    document["adaptive_summary"]["mode_history"][0]["note"] = None
    document["learning_history"]["extra"] = {"a": 1}
    walk = _walk("session-metadata")
    found = sorted((u.path, u.key, u.json_type) for u in walk(document))
    assert found == [
        ("$", "k_17", "array"),
        ("$", "team", "string"),
        ("$.adaptive_summary.mode_history[*]", "note", "null"),
        ("$.learning_history", "extra", "object"),
    ]
    assert [(u.path, u.key, u.json_type) for u in _same("session-metadata", document).unknown_fields] == found


def test_a_nullable_census_location_is_walked_through_its_any_of() -> None:
    document = D.step_evaluation_teacher()
    request = document["validation"]["validation_request"]
    assert isinstance(request, dict)  # anyOf [an open object, a string]
    request["caller_key"] = 1
    validator = validator_for("step-evaluation")
    assert validator._no_quirk.is_valid(document) and not validator._closed.is_valid(document)
    assert [(u.path, u.key) for u in _walk("step-evaluation")(document)] == [
        ("$.validation.validation_request", "caller_key")
    ]
    _same("step-evaluation", document)


_OPEN = {"type": "object", "properties": {"a": {}}, "additionalProperties": {}}


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        ({"anyOf": [_OPEN, {"type": "object", "required": ["b"]}]}, {"a": 1, "extra": 2}),  # two may fit
        ({"oneOf": [_OPEN, {"type": "string"}]}, {"a": 1, "extra": 2}),
        ({"not": {"not": _OPEN}}, {"a": 1, "extra": 2}),
        ({"if": _OPEN, "then": {"type": "object"}}, {"a": 1, "extra": 2}),
        ({"anyOf": [{"type": "integer"}, _OPEN]}, 1.0),  # the integer branch may or may not take a float
    ],
    ids=["any-of", "one-of", "not", "if", "integer"],
)
def test_a_census_location_the_walk_cannot_judge_is_left_to_the_validator(
    schema: dict[str, Any], document: Any
) -> None:
    walk = KeyCensus(schema, "", lambda location: pytest.fail(f"compiled {location}"))
    with pytest.raises(Unsupported):
        walk(document)
    # and check() then gives the census read from the validator's errors
    fast = PayloadValidator("t", schema)
    fast.__dict__["_key_census"] = walk
    slow = PayloadValidator("t", schema)
    slow.__dict__["_key_census"] = None
    for instance in (document, {"a": 1, "extra": 2}):
        assert fast.check(instance, census=True) == slow.check(instance, census=True)


def test_a_custom_schema_takes_the_validator_s_way() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {}}
    validator = validator_for(schema)
    assert validator._key_census is None
    found = validator.check({"a": 1, "b": "x"}, census=True).unknown_fields
    assert [(u.path, u.key, u.json_type) for u in found] == [("$", "b", "string")]


def test_an_unknown_key_under_an_empty_key_is_named_at_its_place_either_way() -> None:
    """jsonschema-rs leaves an empty-string key out of its errors' instance paths: the census read
    from the validator's errors puts it back (as a map key, ``*``), so it names the same place as
    the walk (found by Hypothesis: a caller key under a learning-usage entry whose id is "")."""
    document = D.session_metadata()
    document["learning_usage"] = {"roles": {"student": {"": {"mock": True}}, "": {"x": {"mock": 1}}}}
    want = [
        UnknownField(path="$.learning_usage.roles.*.*", key="mock", json_type="boolean"),
        UnknownField(path="$.learning_usage.roles.*.*", key="mock", json_type="integer"),
    ]
    assert sorted(_walk("session-metadata")(document), key=lambda u: (u.path, u.key, u.json_type)) == want
    assert list(_SLOW["session-metadata"].check(document, census=True).unknown_fields) == want
    _same("session-metadata", document)
