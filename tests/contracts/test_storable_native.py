"""The C storability check (``_plain.c``, module ``_plaincheck``) against a specification written
here, against the Python check it replaces, and against the exact walk; ``is_valid`` and ``check``
give the same verdicts whichever check ``_storable`` uses; without the module the Python one is used.

The specification (:func:`spec`) is the contract in a few lines of plain Python, independent of
both checks: exact JSON types, ``str`` keys, integers in -2**63 .. 2**64-1, finite floats, no NUL and
no surrogate code point in a string or key, at most 512 levels (the document is level 1).
"""

from __future__ import annotations

import datetime
import enum
import math
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_atlas.validation import _storable, validator_for
from pytest_atlas.validation._storable import (
    is_plain_json_in_python,
    native_is_plain_json,
    storability_violations,
)

#: the depth bound of the contract, written here (the test checks the modules agree with it)
LEVELS = 512
#: arrays and objects one in another that orjson still writes (the Python check's bound)
ORJSON_NESTING = 254

needs_native = pytest.mark.skipif(
    native_is_plain_json is None, reason="the C check is not built (PYTEST_ATLAS_NO_EXTENSION=1 or no compiler)"
)


def native(document: Any) -> bool:
    assert native_is_plain_json is not None
    return native_is_plain_json(document)


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Mode(str, enum.Enum):  # what enum.StrEnum (3.11+) is
    AUTO = "auto"


class Text(str):
    pass


class Integer(int):
    pass


class Number(float):
    pass


class Mapping(dict[Any, Any]):
    pass


class Sequence(list[Any]):
    pass


_STR_ENUM: list[Any] = [enum.StrEnum("Tone", {"LOUD": "loud"}).LOUD] if sys.version_info >= (3, 11) else []


def _plain_text(text: str) -> bool:
    return all(char != "\x00" and not 0xD800 <= ord(char) <= 0xDFFF for char in text)


def spec(document: Any) -> bool:
    """The contract, written out: True when ``document`` is plain, storable JSON within the bound."""
    stack = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if level > LEVELS:
            return False
        kind = type(value)
        if value is None or kind is bool:
            continue
        if kind is int:
            if not -(2**63) <= value <= 2**64 - 1:
                return False
        elif kind is float:
            if math.isnan(value) or math.isinf(value):
                return False
        elif kind is str:
            if not _plain_text(value):
                return False
        elif kind is list:
            stack.extend((item, level + 1) for item in value)
        elif kind is dict:
            for key, item in value.items():
                if type(key) is not str or not _plain_text(key):
                    return False
                stack.append((item, level + 1))
        else:
            return False
    return True


def nesting(document: Any) -> int:
    """How many arrays and objects are one in another at most (0 for a scalar)."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        value, outer = stack.pop()
        if isinstance(value, list | tuple | dict):
            deepest = max(deepest, outer + 1)
            stack.extend((item, outer + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def storable(document: Any) -> bool:
    return not storability_violations(document, "test", limit=1)


def nested(value: Any, containers: int, as_dict: bool) -> Any:
    for _ in range(containers):
        value = {"k": value} if as_dict else [value]
    return value


_PIECES = st.one_of(
    st.text(max_size=4),
    st.sampled_from(
        [
            "\x00",
            "\ud800",
            "\udbff",
            "\udc00",
            "\udfff",
            "\ud800\udc00",  # a high-low pair: storable, but a surrogate to both checks
            "\\u0000",  # the text backslash-u0000: plain
            "naïve",  # Latin-1
            "é\x00",
            "€uro",  # the BMP beyond Latin-1
            "😀",  # astral
            "\U0010ffff",
        ]
    ),
)
_TEXT = st.lists(_PIECES, max_size=4).map("".join)
_KEYS = st.one_of(_TEXT, _TEXT, _TEXT.map(Text), st.integers(-2, 2), st.none(), st.booleans(), st.tuples(st.integers()))
_EDGE_INTEGERS = st.sampled_from(
    [0, -1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), 10**30, True, False]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _EDGE_INTEGERS,
    st.floats(),  # NaN and ±Infinity included
    st.sampled_from([-0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]),
    _TEXT,
    _TEXT.map(Text),
    st.integers().map(Integer),
    st.floats().map(Number),
    st.sampled_from([Colour.RED, Level.LOW, Mode.AUTO, *_STR_ENUM]),
    st.uuids(),
    st.sampled_from(
        [b"bytes", bytearray(b"x"), set(), frozenset({1}), (), 1j, datetime.date(2025, 1, 1), orjson.Fragment(b"1")]
    ),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    plain = st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4)
    return st.one_of(
        plain,
        plain,
        st.dictionaries(_KEYS, children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3).map(Sequence),
        st.dictionaries(_TEXT, children, max_size=3).map(Mapping),
        children.map(lambda shared: [shared, {"again": shared}]),
    )


#: a value, and how many lists (or dicts) to put it in: around orjson's bound and the contract's
DOCUMENTS = st.tuples(
    st.recursive(_LEAVES, _containers, max_leaves=14),
    st.sampled_from([0] * 10 + [1, 253, 254, 255, 300, LEVELS - 2, LEVELS - 1, LEVELS]),
    st.booleans(),
)

#: only plain values, mostly: what both checks must call plain (within orjson's nesting)
_CLEAN_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=8)
PLAIN = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        _CLEAN_TEXT,
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_CLEAN_TEXT, children, max_size=4),
    max_leaves=20,
)


def test_the_modules_bound_the_depth_as_this_test_does() -> None:
    assert _storable.MAX_DEPTH == LEVELS
    if native_is_plain_json is not None:
        from pytest_atlas.validation import _plaincheck

        assert _plaincheck.MAX_DEPTH == LEVELS


@pytest.mark.skipif(os.environ.get("PYTEST_ATLAS_NO_EXTENSION") == "1", reason="built without the C check")
def test_the_c_check_is_built_and_used() -> None:
    """The suite's install (``pip install -e .``, with a compiler) builds it; is_valid uses it."""
    assert native_is_plain_json is not None
    assert type(native_is_plain_json).__name__ == "builtin_function_or_method"
    assert _storable.is_plain_json is native_is_plain_json


@needs_native
@settings(max_examples=1500)
@given(DOCUMENTS)
@example(((1, 2), 0, False))
@example(({"a": [math.nan]}, 0, False))
@example(({"\ud800\udc00": 1}, 0, False))
@example((2**64 - 1, 0, False))
@example((2**64, 0, False))
@example((-(2**63) - 1, 0, False))
@example((1, LEVELS - 1, True))
@example((1, LEVELS, False))
def test_the_c_check_follows_the_contract(drawn: tuple[Any, int, bool]) -> None:
    document = nested(*drawn)
    expected = spec(document)
    assert native(document) is expected
    if expected:
        assert storable(document), document  # the exact walk finds nothing either
    # the Python check says the same within orjson's nesting, and "not known" beyond it
    by_python = is_plain_json_in_python(document)
    assert by_python is (expected and nesting(document) <= ORJSON_NESTING)


@needs_native
@settings(max_examples=500)
@given(PLAIN, st.sampled_from([0, 1, 100, ORJSON_NESTING - 10]), st.booleans())
def test_both_checks_call_plain_json_plain(value: Any, containers: int, as_dict: bool) -> None:
    document = nested(value, containers, as_dict)
    assert nesting(document) <= ORJSON_NESTING
    assert native(document) is True
    assert is_plain_json_in_python(document) is True
    assert storable(document)


_NOT_PLAIN = [
    pytest.param((1, 2), id="tuple"),
    pytest.param((), id="empty-tuple"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(2**64, id="2**64"),
    pytest.param(-(2**63) - 1, id="-2**63-1"),
    pytest.param(10**30, id="10**30"),
    pytest.param(-(10**30), id="-10**30"),
    pytest.param(b"x", id="bytes"),
    pytest.param(bytearray(b"x"), id="bytearray"),
    pytest.param({1, 2}, id="set"),
    pytest.param(frozenset(), id="frozenset"),
    pytest.param(1j, id="complex"),
    pytest.param(Colour.RED, id="enum"),
    pytest.param(Level.LOW, id="int-enum"),
    pytest.param(Mode.AUTO, id="str-enum"),
    *[pytest.param(member, id="enum.StrEnum") for member in _STR_ENUM],
    pytest.param(uuid.UUID(int=1), id="uuid"),
    pytest.param(orjson.Fragment(b"1"), id="orjson-fragment"),
    pytest.param(datetime.datetime(2025, 11, 3, 14, 22, 5), id="datetime"),
    pytest.param(Text("x"), id="str-subclass"),
    pytest.param(Integer(1), id="int-subclass"),
    pytest.param(Number(1.5), id="float-subclass"),
    pytest.param(Mapping(a=1), id="dict-subclass"),
    pytest.param(Sequence([1]), id="list-subclass"),
    pytest.param(object(), id="object"),
    pytest.param({1: "a"}, id="int-key"),
    pytest.param({None: "a"}, id="none-key"),
    pytest.param({True: "a"}, id="bool-key"),
    pytest.param({(1,): "a"}, id="tuple-key"),
    pytest.param({Text("k"): "a"}, id="str-subclass-key"),
    pytest.param("a\x00b", id="nul-ascii"),
    pytest.param("é\x00", id="nul-latin1"),
    pytest.param("€\x00", id="nul-bmp"),
    pytest.param("😀\x00", id="nul-astral"),
    pytest.param("\ud800", id="lone-high-surrogate"),
    pytest.param("\udfff", id="lone-low-surrogate"),
    pytest.param("x\ud800\udc00", id="surrogate-pair"),
    pytest.param("😀\udc00", id="surrogate-in-astral-text"),
    pytest.param({"a\x00": 1}, id="nul-key"),
    pytest.param({"\ud800": 1}, id="surrogate-key"),
    pytest.param({"€\udfff": 1}, id="surrogate-bmp-key"),
]

_PLAIN = [
    pytest.param(None, id="null"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(0, id="0"),
    pytest.param(2**63 - 1, id="2**63-1"),
    pytest.param(2**63, id="2**63"),
    pytest.param(2**64 - 1, id="2**64-1"),
    pytest.param(-(2**63), id="-2**63"),
    pytest.param(-0.0, id="-0.0"),
    pytest.param(5e-324, id="tiny-float"),
    pytest.param(1.7976931348623157e308, id="largest-float"),
    pytest.param("", id="empty-text"),
    pytest.param("\\u0000", id="escaped-nul-text"),
    pytest.param("naïve café", id="latin1"),
    pytest.param("€ and ĳ", id="bmp"),
    pytest.param("😀 \U0010ffff", id="astral"),
    pytest.param([], id="empty-list"),
    pytest.param({}, id="empty-dict"),
    pytest.param({"naïve": {"€": ["😀", 1.5, None]}}, id="nested"),
]


@needs_native
@pytest.mark.parametrize("value", _NOT_PLAIN)
@pytest.mark.parametrize("where", ["top", "in-list", "in-dict"])
def test_what_the_c_check_does_not_call_plain(value: Any, where: str) -> None:
    document = {"top": value, "in-list": [1, value], "in-dict": {"a": {"b": value}}}[where]
    assert native(document) is False
    assert is_plain_json_in_python(document) is False


@needs_native
@pytest.mark.parametrize("value", _PLAIN)
def test_what_the_c_check_calls_plain(value: Any) -> None:
    for document in (value, [value], {"k": [value]}):
        assert native(document) is True
        assert is_plain_json_in_python(document) is True
        assert storable(document)


@needs_native
@pytest.mark.parametrize("as_dict", [False, True], ids=["lists", "dicts"])
@pytest.mark.parametrize(
    ("levels", "plain"),
    [(LEVELS - 1, True), (LEVELS, True), (LEVELS + 1, False)],
    ids=["511-levels", "512-levels", "513-levels"],
)
@pytest.mark.parametrize("innermost", ["scalar", "empty-list", "empty-dict"])
def test_the_depth_bound(as_dict: bool, levels: int, plain: bool, innermost: str) -> None:
    """The document is level 1: ``levels`` counts the containers and the innermost value."""
    leaf: Any = {"scalar": "x", "empty-list": [], "empty-dict": {}}[innermost]
    document = nested(leaf, levels - 1, as_dict)
    assert native(document) is plain
    assert storable(document) is plain  # the walk reports x-depth at 513 levels, and only there
    if not plain:
        [violation] = storability_violations(document, "test")
        assert violation.keyword == "x-depth"
    assert is_plain_json_in_python(document) is False  # deeper than orjson writes: "not known"


@needs_native
def test_orjson_bound_of_the_python_check() -> None:
    """254 containers one in another: both plain; 255: the Python check does not know, the C one does."""
    assert is_plain_json_in_python(nested(1, ORJSON_NESTING, False)) is True
    assert native(nested(1, ORJSON_NESTING, False)) is True
    assert is_plain_json_in_python(nested(1, ORJSON_NESTING + 1, True)) is False
    assert native(nested(1, ORJSON_NESTING + 1, True)) is True
    assert storable(nested(1, ORJSON_NESTING + 1, True))


@needs_native
def test_the_c_check_does_not_hold_or_leak_references() -> None:
    text, big = "never shared " * 3, 2**63 + 5
    document = {"a": [text, big, 1.5], "b": {"c": text}}
    before = [sys.getrefcount(value) for value in (document, text, big)]
    for _ in range(1000):
        assert native(document) is True
        assert native([document, (1,)]) is False
    assert [sys.getrefcount(value) for value in (document, text, big)] == before


_FREE_FORM = validator_for("session-metadata")


def _in_session_metadata(document: Any) -> dict[str, Any]:
    return {"learning_key": "k", "metadata": {"caller": document}}  # caller metadata: any JSON


def _verdicts(check: Callable[[Any], bool], document: Any) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_storable, "is_plain_json", check)
        yield _FREE_FORM.is_valid(document)
        result = _FREE_FORM.check(document)
        yield result.valid
        yield sorted((v.path, v.keyword) for v in result.errors)
        yield sorted((v.path, v.keyword) for v in result.warnings)


@needs_native
@settings(max_examples=300)
@given(DOCUMENTS)
@example(((1, 2), 0, False))
@example(("\ud800\udc00", 0, False))
@example((1, 300, False))
@example((1, LEVELS - 3, True))
@example((1, LEVELS, True))
@example(({"score": math.nan}, 0, False))
def test_is_valid_and_check_give_the_same_verdicts_with_either_check(drawn: tuple[Any, int, bool]) -> None:
    document = _in_session_metadata(nested(*drawn))
    with_c = list(_verdicts(native, document))
    with_python = list(_verdicts(is_plain_json_in_python, document))
    assert with_c == with_python
    assert with_c[0] is with_c[1]  # is_valid agrees with check
    if spec(document):  # plain caller metadata: only the schema can fail it, and this one does not
        assert with_c[0] is True


def test_without_the_module_the_python_check_is_used(tmp_path: Any) -> None:
    """A pure wheel (no compiler where it was built): ``_plaincheck`` cannot be imported."""
    script = textwrap.dedent(
        """
        import importlib.abc, math, sys

        class NoExtension(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "pytest_atlas.validation._plaincheck":
                    raise ImportError("not built")
                return None

        sys.meta_path.insert(0, NoExtension())
        from pytest_atlas import is_valid
        from pytest_atlas.validation import _storable

        assert "pytest_atlas.validation._plaincheck" not in sys.modules
        assert _storable.native_is_plain_json is None
        assert _storable.is_plain_json is _storable.is_plain_json_in_python
        document = {"learning_key": "k", "metadata": {"caller": [1, "a", {"b": None}]}}
        assert is_valid(document, "session-metadata") is True
        for bad in ((1, 2), math.nan, "a\\x00", {1: 2}):
            assert is_valid({"learning_key": "k", "metadata": {"caller": bad}}, "session-metadata") is False, bad
        print("FALLBACK OK")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "FALLBACK OK"
