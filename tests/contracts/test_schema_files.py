"""The shipped schema files themselves: draft 2020-12, ids, titles, shared definitions, quirk annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_atlas._resources import jsonschemas_dir
from pytest_atlas.validation import BASE_URI, SCHEMA_NAMES, load_schema, schema_uri
from pytest_atlas.validation._schemas import documents, lookup, resolve_ref

FILES = sorted(jsonschemas_dir().glob("*.schema.json"))


def _walk(node: Any, pointer: str = "") -> Any:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{index}")


def test_every_named_schema_has_a_file_and_nothing_else_is_shipped() -> None:
    names = {path.name.removesuffix(".schema.json") for path in FILES}
    assert names == {*SCHEMA_NAMES, "common"}
    assert len(SCHEMA_NAMES) == 13


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_is_a_valid_2020_12_schema_with_id_and_title(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE_URI + path.name
    assert schema["title"].strip()
    assert schema["description"].strip()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_ref_resolves_inside_the_shipped_files(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    refs = [node["$ref"] for _, node in _walk(schema) if isinstance(node, dict) and "$ref" in node]
    for ref in refs:
        target, _ = resolve_ref(ref, schema["$id"])
        assert isinstance(target, dict | bool), ref


def test_shared_definitions_are_used_through_ref() -> None:
    used = set()
    for name in SCHEMA_NAMES:
        for _, node in _walk(documents()[name]):
            if isinstance(node, dict) and str(node.get("$ref", "")).startswith("common.schema.json#/$defs/"):
                used.add(node["$ref"].rsplit("/", 1)[1])
    for _, node in _walk(documents()["common"]):
        if isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/$defs/"):
            used.add(node["$ref"].rsplit("/", 1)[1])
    # scores, uncertainties, timestamps and enums are shared, not repeated
    assert {"unitScore", "uncertainty", "timestamp", "executionMode", "rewardBreakdown", "tags"} <= used


def test_every_quirk_is_described() -> None:
    quirks = {}
    for name, schema in documents().items():
        for pointer, node in _walk(schema):
            if isinstance(node, dict) and "x-atlas-quirk" in node:
                assert len(node.get("description", "")) > 30, f"{name}{pointer} needs a description"
                quirks[node["x-atlas-quirk"]] = f"{name}{pointer}"
    assert set(quirks) == {
        "serialisation-fallback",
        "python-str-datetime",
        "unclamped-unit-value",
        "legacy-escalate-mode",
        "tags-as-string",
        "legacy-stepwise-plan",
        "mock-raw-response",
        "alias-key",
        "learning-state-metadata-only",
        "reward-summary-step-average",
        "missing-learning-key",
        "custom-reward-evaluator",
    }


#: where a subschema made ``false`` can make a schema accept more: the no_quirk variant would then
#: accept a document the shipped schema rejects (and the census walk, which takes a document valid
#: under no_quirk as valid, would miss its error)
_NEGATIVE = ("not", "if", "oneOf")


def _reaches_a_quirk(node: Any, uri: str) -> bool:
    """Whether an ``x-atlas-quirk`` subschema is reachable from ``node`` (through any keyword and
    ``$ref``; ``uri``: the file ``node`` is in)."""
    seen: set[tuple[int, str]] = set()
    stack = [(node, uri)]
    while stack:
        here, base = stack.pop()
        if isinstance(here, list):
            stack.extend((item, base) for item in here)
        if not isinstance(here, dict) or (id(here), base) in seen:
            continue
        seen.add((id(here), base))
        if "x-atlas-quirk" in here:
            return True
        if isinstance(here.get("$ref"), str):
            target, target_uri = resolve_ref(here["$ref"], base)
            stack.append((target, target_uri.partition("#")[0]))
        stack.extend((value, base) for key, value in here.items() if key not in ("const", "enum", "examples"))
    return False


def test_every_quirk_only_ever_widens_what_a_schema_accepts() -> None:
    """A quirk subschema is never under not, if, oneOf or a bounded contains (also through $ref): made
    false (the no_quirk variant) it only makes the schema stricter, so a document valid under no_quirk
    is valid as shipped (what the census walk relies on)."""
    for name, schema in documents().items():
        uri = schema["$id"]
        for pointer, node in _walk(schema):
            if not isinstance(node, dict):
                continue
            negative = [node[word] for word in _NEGATIVE if word in node]
            if "contains" in node and ("minContains" in node or "maxContains" in node):
                negative.append(node["contains"])
            assert not any(_reaches_a_quirk(sub, uri) for sub in negative), f"{name}{pointer}"


def test_the_quirk_check_sees_a_quirk_behind_a_ref_under_if() -> None:
    """The check above can fail: a quirk reached from an if (here through a $ref) is found."""
    uri = schema_uri("reward-stats")
    assert _reaches_a_quirk({"$ref": "#/$defs/customStats"}, uri)
    assert not _reaches_a_quirk({"$ref": "#/$defs/rimKeys"}, uri)


def test_every_key_listed_has_a_type() -> None:
    """Properties are typed (or deliberately any JSON, with a description saying what Atlas puts there)."""
    untyped = []
    for name, schema in documents().items():
        for pointer, node in _walk(schema):
            # key definitions live in object schemas; properties inside if/then/not are constraints
            if not (
                isinstance(node, dict)
                and isinstance(node.get("properties"), dict)
                and node.get("type") in ("object", ["object", "null"])
            ):
                continue
            for key, sub in node["properties"].items():
                if sub is False:
                    continue
                typed = any(k in sub for k in ("type", "$ref", "enum", "const", "anyOf", "allOf"))
                if not typed and not sub.get("description"):
                    untyped.append(f"{name}{pointer}/properties/{key}")
    assert untyped == []


def test_load_schema_returns_a_copy_and_schema_uri_its_id() -> None:
    schema = load_schema("session-metadata")
    schema["title"] = "changed"
    assert load_schema("session-metadata")["title"] == "Atlas sessions.metadata"
    assert schema_uri("plan") == BASE_URI + "plan.schema.json"
    assert lookup(schema_uri("plan") + "#/$defs/plan/properties/execution_mode") == {
        "enum": ["stepwise", "single_shot"]
    }
