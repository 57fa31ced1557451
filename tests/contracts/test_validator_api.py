"""The public validator API: validate / iter_errors / is_valid / check_payload, Violation, PayloadError,
assert_valid_payload, custom schemas, argument errors, and bad input that must never crash."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

import pytest_atlas
from pytest_atlas import (
    SCHEMA_NAMES,
    InvalidArgument,
    PayloadAssertionError,
    PayloadError,
    Violation,
    assert_valid_payload,
    check_payload,
    is_valid,
    iter_errors,
    validate,
)
from pytest_atlas.validation import MAX_DEPTH, json_path, preview, schema_uri

from . import contract_documents as D


def test_public_names_are_exported() -> None:
    for name in (
        "validate",
        "iter_errors",
        "is_valid",
        "check_payload",
        "SCHEMA_NAMES",
        "Violation",
        "PayloadError",
        "check_database",
        "ContractReport",
        "assert_valid_payload",
        "load_schema",
    ):
        assert name in pytest_atlas.__all__
        assert getattr(pytest_atlas, name) is not None
    assert SCHEMA_NAMES[0] == "session-metadata"


def test_validate_raises_payload_error_carrying_every_violation() -> None:
    document = D.session_metadata()
    document["reward_stats"]["score"] = "0.9"
    document["execution_mode"] = "turbo"
    document["tags"] = "latency"  # a warning, carried too
    with pytest.raises(PayloadError) as info:
        validate(document, "session-metadata")
    error = info.value
    assert isinstance(error, pytest_atlas.AtlasError)
    assert [(v.path, v.keyword, v.severity) for v in error.violations] == [
        ("$.execution_mode", "enum", "error"),
        ("$.reward_stats.score", "type", "error"),
        ("$.tags", "x-atlas-quirk", "warning"),
    ]
    assert len(error.errors) == 2 and len(error.warnings) == 1
    text = str(error)
    assert text.splitlines()[0] == "payload does not match the session-metadata schema: 2 errors"
    assert '$.reward_stats.score: type: expected number, got string "0.9"' in text
    assert "how to fix:" in text


def test_schema_may_be_named_by_file_name_or_id() -> None:
    stats = D.reward_stats()
    assert is_valid(stats, "reward-stats.schema.json")
    assert is_valid(stats, schema_uri("reward-stats"))


def test_unknown_schema_name_is_an_invalid_argument_with_a_suggestion() -> None:
    with pytest.raises(InvalidArgument) as info:
        is_valid({}, "session-metadta")
    assert "unknown payload schema 'session-metadta'" in str(info.value)
    assert "did you mean 'session-metadata'" in str(info.value)
    with pytest.raises(InvalidArgument):
        validate({}, 42)  # type: ignore[arg-type]


def test_custom_schema_can_ref_the_shipped_ones() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "my harness metadata",
        "type": "object",
        "properties": {"atlas": {"$ref": schema_uri("session-metadata")}, "team": {"enum": ["sre", "support"]}},
        "required": ["team"],
    }
    assert is_valid({"team": "sre", "atlas": D.session_metadata()}, schema)
    errors = list(iter_errors({"team": "ops", "atlas": {"execution_mode": "turbo"}}, schema))
    assert [(e.schema, e.path, e.keyword) for e in errors] == [
        ("my harness metadata", "$.atlas.execution_mode", "enum"),
        ("my harness metadata", "$.team", "enum"),
    ]


def test_custom_schema_errors_are_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument, match="not a valid draft 2020-12 schema"):
        is_valid({}, {"type": "objekt"})
    with pytest.raises(InvalidArgument, match="cannot compile"):
        is_valid({}, {"$ref": "https://example.com/elsewhere.json"})


def test_check_payload_reports_unknown_fields_with_their_types() -> None:
    document = D.session_metadata()
    document["team"] = "sre"
    document["reward_audit"][0]["latency_ms"] = 812
    document["reward_audit"][2]["latency_ms"] = 790.5
    result = check_payload(document, "session-metadata")
    assert result.valid and result.warnings == ()
    found = sorted((u.path, u.key, u.json_type) for u in result.unknown_fields)
    assert found == [
        ("$", "team", "string"),
        ("$.reward_audit[*]", "latency_ms", "integer"),
        ("$.reward_audit[*]", "latency_ms", "number"),
    ]
    # maps (entry ids, role names) are data, not unknown fields
    assert all("roles" not in u.path for u in result.unknown_fields)


def _census(result: Any) -> list[tuple[str, str]]:
    return sorted((u.path, u.key) for u in result.unknown_fields)


def test_census_of_an_invalid_document_reaches_inside_any_of() -> None:
    # learning_state.metadata is "null or registry metadata": an extra key there sits inside anyOf
    document = D.session_metadata()
    document["team"] = "sre"
    document["learning_state"]["metadata"] = {"owner_team": "sre", "playbook_version": "v3"}
    valid = check_payload(document, "session-metadata")
    assert valid.valid
    expected = [("$", "team"), ("$.learning_state.metadata", "owner_team")]
    assert _census(valid) == expected
    # an error elsewhere leaves the census as it was
    document["reward_audit"] = 7
    broken = check_payload(document, "session-metadata")
    assert [e.path for e in broken.errors] == ["$.reward_audit"]
    assert _census(broken) == expected
    # an error inside the same branch: the object is still closest to the registry-metadata branch,
    # not to the null branch whose type it does not have
    document["learning_state"]["metadata"]["playbook_version"] = {"major": 3}
    inside = check_payload(document, "session-metadata")
    assert sorted(e.path for e in inside.errors) == ["$.learning_state.metadata.playbook_version", "$.reward_audit"]
    assert _census(inside) == expected


def test_census_of_an_invalid_document_counts_only_keys_every_closest_branch_rejects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"a": {"type": "integer"}, "shared": {}},
                        "required": ["a"],
                        "additionalProperties": {},
                    },
                    {
                        "type": "object",
                        "properties": {"b": {"type": "integer"}},
                        "required": ["b"],
                        "additionalProperties": {},
                    },
                ]
            }
        },
    }
    tie = check_payload({"x": {"shared": 1, "extra": 2}}, schema)
    assert not tie.valid
    # both branches miss their required key; only "extra" is unknown to both
    assert _census(tie) == [("$.x", "extra")]
    nearer = check_payload({"x": {"a": "one", "b": 2, "shared": 1, "extra": 2}}, schema)
    assert nearer.valid and _census(nearer) == [("$.x", "a"), ("$.x", "extra"), ("$.x", "shared")]
    first = check_payload({"x": {"a": 1, "shared": 1, "extra": 2}, "y": 1}, {**schema, "required": ["z"]})
    assert not first.valid and _census(first) == [("$.x", "extra")]


def test_violation_is_data() -> None:
    [violation] = list(iter_errors({"score": "0.9"}, "reward-stats"))
    assert violation == Violation(
        schema="reward-stats",
        path="$.score",
        keyword="type",
        message='expected number, got string "0.9"',
        value='"0.9"',
        severity="error",
        schema_path=violation.schema_path,
    )
    assert violation.schema_path.endswith("/properties/score/type")
    located = violation.at(table="sessions", column="reward_stats", primary_key={"id": 7})
    assert located.where == "sessions.reward_stats id=7"
    assert str(located) == 'sessions.reward_stats id=7: $.score: type: expected number, got string "0.9"'
    assert json.loads(json.dumps(located.to_dict()))["primary_key"] == {"id": 7}


def test_json_path_and_preview() -> None:
    assert json_path(["a", 0, "b c", "it's", "[*]", "*"]) == "$.a[0]['b c']['it\\'s'][*].*"
    assert preview({"a": [1, 2, {"b": {"c": {"d": 1}}}]}) == '{"a": [1, 2, {"b": {…}}]}'
    long = preview("x" * 1000)
    assert len(long) < 120 and long.endswith("(1,000 chars)")
    assert preview(float("nan")) == "NaN"
    assert preview(b"x") == "<python bytes>"


def test_assert_valid_payload_passes_returns_warnings_and_fails_compactly() -> None:
    assert assert_valid_payload(D.session_metadata(), "session-metadata") == []
    quirky = {**D.session_metadata(), "tags": "latency"}
    [warning] = assert_valid_payload(quirky, "session-metadata")
    assert warning.quirk == "tags-as-string"
    with pytest.raises(PayloadAssertionError) as info:
        assert_valid_payload(quirky, "session-metadata", warnings=False)
    assert "warnings count as errors" in str(info.value)
    bad = D.reward_stats()
    bad["score"] = "0.9"
    bad["sample_count"] = -1
    with pytest.raises(AssertionError) as failure:
        assert_valid_payload(bad, "reward-stats")
    assert str(failure.value) == (
        "payload does not match the reward-stats schema (2 errors):\n"
        "  $.sample_count: minimum: -1 is less than the minimum 0\n"
        '  $.score: type: expected number, got string "0.9"'
    )
    assert len(failure.value.violations) == 2  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------
# bad input: violations, never a crash
# ------------------------------------------------------------------------------------------------


def _nested(levels: int, container: str = "dict") -> Any:
    root: Any = {} if container == "dict" else []
    node = root
    for _ in range(levels):
        child: Any = {} if container == "dict" else []
        if container == "dict":
            node["a"] = child
        else:
            node.append(child)
        node = child
    return root


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["score", "uncertainty_mean"])  # a number field and a nullable one
def test_non_finite_numbers_are_errors(value: float, where: str) -> None:
    document = D.reward_stats()
    document[where] = value
    assert not is_valid(document, "reward-stats")
    keywords = [(e.path, e.keyword) for e in iter_errors(document, "reward-stats")]
    assert (f"$.{where}", "x-nonfinite") in keywords
    with pytest.raises(PayloadError, match="not a JSON number"):
        validate(document, "reward-stats")


def test_non_finite_number_in_a_free_form_field_is_an_error() -> None:
    document = D.session_metadata()
    document["metadata"] = {"deep": {"ratio": float("nan")}}  # caller metadata: any JSON
    assert not is_valid(document, "session-metadata")
    assert [(e.path, e.keyword) for e in iter_errors(document, "session-metadata")] == [
        ("$.metadata.deep.ratio", "x-nonfinite")
    ]


@pytest.mark.parametrize("container", ["dict", "list"])
def test_ten_thousand_levels_of_nesting(container: str) -> None:
    document = {"learning_key": "k", "metadata": _nested(10_000, container)}
    assert not is_valid(document, "session-metadata")
    errors = list(iter_errors(document, "session-metadata"))
    assert [e.keyword for e in errors] == ["x-depth"]
    assert errors[0].path.startswith("$.metadata") and "levels)" in errors[0].path
    assert str(MAX_DEPTH) in errors[0].message


def test_ten_thousand_levels_at_the_top() -> None:
    assert [e.keyword for e in iter_errors(_nested(10_000), "session-metadata")] == ["x-depth"]
    assert [e.keyword for e in iter_errors(_nested(10_000, "list"), "reward-audit")] == ["x-depth"]


def test_fifty_megabyte_string() -> None:
    big = "x" * 50_000_000
    assert is_valid({"learning_key": "k", "summary": big}, "session-metadata")
    errors = list(iter_errors({"learning_key": 5, "summary": big}, "session-metadata"))
    assert [(e.path, e.keyword) for e in errors] == [("$.learning_key", "type")]
    errors = list(iter_errors({**D.reward_stats(), "score": big}, "reward-stats"))
    assert [(e.path, e.keyword) for e in errors] == [("$.score", "type")]
    assert len(errors[0].message) < 200 and len(errors[0].value) < 120


def test_nul_characters_are_errors() -> None:
    errors = list(iter_errors({"learning_key": "a\x00b", "bad\x00key": 1}, "session-metadata"))
    assert sorted((e.path, e.keyword) for e in errors) == [("$", "x-nul"), ("$.learning_key", "x-nul")]
    assert "\\u0000" in errors[0].message


@pytest.mark.parametrize("schema", SCHEMA_NAMES)
def test_top_level_array_or_plain_string_where_an_object_is_expected(schema: str) -> None:
    if schema == "reward-audit":
        wrong: list[Any] = [{"stage": "tier1"}, "text"]
        assert not is_valid({"stage": "tier1"}, schema)
    else:
        wrong = [[1, 2], "just a sentence", 42, None, True]
    for document in wrong:
        errors = list(iter_errors(document, schema))
        assert errors, (schema, document)
        assert errors[0].path.startswith("$")
        assert not is_valid(document, schema)


def test_python_objects_that_are_not_json() -> None:
    document = {
        "learning_key": "k",
        "when": dt.datetime(2025, 1, 2),
        3: "x",
        "blob": b"\x00",
        "set": {1},
        "pair": (1, 2),
    }
    errors = sorted((e.path, e.keyword) for e in iter_errors(document, "session-metadata"))
    assert errors == [
        ("$", "x-json-type"),
        ("$.blob", "x-json-type"),
        ("$.pair", "x-json-type"),
        ("$.set", "x-json-type"),
        ("$.when", "x-json-type"),
    ]
    assert not is_valid(document, "session-metadata")


def test_big_integers_and_str_subclasses_do_not_crash() -> None:
    import enum

    class Mode(str, enum.Enum):
        PAIRED = "paired"

    document = {**D.session_metadata(), "task_num": 2**80, "execution_mode": Mode.PAIRED}
    assert is_valid(document, "session-metadata")
    assert list(iter_errors(document, "session-metadata")) == []


def test_the_first_verdict_compiles_only_the_schema_asked_for() -> None:
    """The first validation in a process (a Hypothesis example under a 200 ms deadline) loads and
    compiles the schema it names and what that schema $refs, nothing else: no python-jsonschema,
    no other schema file, no quirk-free or closed variant."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pytest_atlas import is_valid\n"
        "from pytest_atlas.validation import _schemas\n"
        "assert is_valid({'score': 0.9}, 'reward-stats')\n"
        "print(sorted(name for name in _schemas.ALL_NAMES if _schemas.document.cache_info().currsize and "
        "name in _schemas.closure('reward-stats')), _schemas.document.cache_info().currsize, "
        "'jsonschema' in sys.modules, _schemas.variant_document.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["['common',", "'reward-stats']", "2", "False", "2"]


# ------------------------------------------------------------------------------------------------
# the verdict of is_valid is the verdict of check_payload, on every kind of value jsonb refuses
# ------------------------------------------------------------------------------------------------


def _free(value: Any) -> dict[str, Any]:
    """A session-metadata document with ``value`` in caller metadata, which the schema does not
    constrain: only the storability checks can reject it there."""
    return {"learning_key": "k", "metadata": {"caller": value}}


_NOT_STORABLE: dict[str, Any] = {
    "nan": _free(float("nan")),
    "inf": _free(float("inf")),
    "-inf": _free([1.0, float("-inf")]),
    "nul in a value": _free("a\x00b"),
    "nul in a key": _free({"bad\x00key": 1}),
    "lone high surrogate in a value": _free("a\ud800b"),
    "lone low surrogate at the end of a value": _free("ab\udc00"),
    "lone surrogate in a key": _free({"k\udbff": 1}),
    "tuple": _free((1, 2)),
    "tuple inside a list": _free([[1], (2,)]),
    "int key": _free({1: "x"}),
    "bool key": _free({True: "x"}),
    "None key": _free({None: "x"}),
    "tuple key": _free({(1, 2): "x"}),
    "bytes": _free(b"x"),
    "set": _free({1}),
    "100k-deep list": _free(_nested(100_000, "list")),
    "100k-deep dict": _free(_nested(100_000)),
}

_STORABLE: dict[str, Any] = {
    "bool value": _free(True),
    "int and float": _free([0, -1, 2**70, 1.5, -0.0, 1e308]),
    "non-ASCII text": _free("naïve café ✓ 😀"),
    "a surrogate pair (json.dumps writes it as one escaped character, jsonb takes it)": _free("\ud83d\ude00"),
    "empty containers": _free({"a": [], "b": {}, "": ""}),
    f"{MAX_DEPTH - 3} levels": _free(_nested(MAX_DEPTH - 3)),
}


@pytest.mark.parametrize("document", _NOT_STORABLE.values(), ids=list(_NOT_STORABLE))
def test_documents_jsonb_refuses_are_invalid(document: Any) -> None:
    assert not is_valid(document, "session-metadata")
    check = check_payload(document, "session-metadata")
    assert not check.valid
    assert {e.keyword for e in check.errors} <= {"x-nonfinite", "x-nul", "x-surrogate", "x-json-type", "x-depth"}


@pytest.mark.parametrize("document", _STORABLE.values(), ids=list(_STORABLE))
def test_documents_jsonb_takes_are_valid(document: Any) -> None:
    assert is_valid(document, "session-metadata")
    assert check_payload(document, "session-metadata").valid


@pytest.mark.parametrize(("score", "valid"), [(True, False), (False, False), (1, True), (0, True), (0.5, True)])
def test_a_bool_is_not_a_number(score: Any, valid: bool) -> None:
    document = {**D.reward_stats(), "score": score}
    assert is_valid(document, "reward-stats") is valid
    assert check_payload(document, "reward-stats").valid is valid


def test_lone_surrogates_are_errors_with_their_path() -> None:
    document = {"learning_key": "a\ud800b", "metadata": {"k\udc00": "x", "ok": "\ud83d\ude00"}}
    errors = sorted((e.path, e.keyword) for e in iter_errors(document, "session-metadata"))
    assert errors == [("$.learning_key", "x-surrogate"), ("$.metadata", "x-surrogate")]
    assert all("surrogate" in e.message for e in iter_errors(document, "session-metadata"))


def test_a_hundred_thousand_levels_under_a_recursive_schema_do_not_crash() -> None:
    """jsonschema-rs follows a recursive schema as deep as the document goes and overflows its stack
    (the process dies) at about 100,000 levels: the depth guard must stop such a document first.
    Run in a child process, so that a crash is a failure here and not a dead test worker."""
    import subprocess
    import sys

    code = (
        "from pytest_atlas import is_valid, iter_errors\n"
        "schema = {'$defs': {'n': {'type': ['array', 'object'], 'items': {'$ref': '#/$defs/n'},"
        " 'additionalProperties': {'$ref': '#/$defs/n'}}}, '$ref': '#/$defs/n'}\n"
        "for container in ('list', 'dict'):\n"
        "    root = node = [] if container == 'list' else {}\n"
        "    for _ in range(100_000):\n"
        "        child = [] if container == 'list' else {}\n"
        "        node.append(child) if container == 'list' else node.__setitem__('a', child)\n"
        "        node = child\n"
        "    assert not is_valid(root, schema)\n"
        "    assert [e.keyword for e in iter_errors(root, schema)] == ['x-depth']\n"
        "print('survived')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "survived"
