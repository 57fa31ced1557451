"""The fast storability checks of ``is_valid`` (``is_plain_json``: the C one of ``_plain.c`` where it
is built, the Python one otherwise) never call a document storable that the exact walk
(``storability_violations``) refuses, and call the plain documents storable. Both are checked here
(tests/contracts/test_storable_native.py checks the C one against the contract).

The documents are JSON-like Python values with every quirk mixed in anywhere: tuples, NaN and
±Infinity, NUL, lone surrogates and high-low pairs in strings and keys, subclasses of the JSON
types, Enum members (plain, int and str), UUIDs, orjson Fragments, integers beyond 64 bits,
non-string keys, foreign objects, nesting around orjson's and pytest-atlas's depth limits, and the
same sub-object (or the same NaN object) reached twice.
"""

from __future__ import annotations

import datetime
import enum
import math
import uuid
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_atlas import is_valid
from pytest_atlas.validation import MAX_DEPTH, validator_for
from pytest_atlas.validation._storable import (
    _children,
    _children_by_iteration,
    _children_by_traversal,
    _values_are_json,
    _writes_as_plain_json,
    is_plain_json,
    is_plain_json_in_python,
    native_is_plain_json,
    storability_violations,
)

#: both fast checks (the C one where it is built)
CHECKS = [is_plain_json_in_python] + ([native_is_plain_json] if native_is_plain_json is not None else [])


class Colour(enum.Enum):
    RED = 1
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Mode(str, enum.Enum):
    AUTO = "auto"


class Text(str):
    pass


class Number(float):
    pass


class Integer(int):
    pass


class Mapping(dict[Any, Any]):
    pass


class Sequence(list[Any]):
    pass


_NAN = float("nan")


class _Holder:
    pass


def _attributes(**values: Any) -> dict[str, Any]:
    """An object's ``__dict__``: a ``dict`` whose values live in the object (a split table)."""
    holder = _Holder()
    for name, value in values.items():
        setattr(holder, name, value)
    return holder.__dict__


#: pieces strings and keys are made of: plain text, NUL, lone surrogates, a valid pair, non-ASCII
_PIECES = st.one_of(
    st.text(max_size=4),
    st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00", "naïve", "😀", "\\u0000"]),
)
_TEXT = st.lists(_PIECES, max_size=4).map("".join)
_KEY = st.one_of(_TEXT, _TEXT.map(Text), st.integers(-3, 3), st.none(), st.booleans(), st.tuples(st.integers()))

_QUIRKY_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.floats(),  # NaN and ±Infinity included
    st.just(_NAN),
    _TEXT,
    _TEXT.map(Text),
    st.floats().map(Number),
    st.integers().map(Integer),
    st.sampled_from([*Colour, *Level, *Mode]),
    st.uuids(),
    st.just(orjson.Fragment(b"1")),
    st.just(b"bytes"),
    st.just(datetime.datetime(2025, 11, 3, 14, 22, 5)),
    st.just(1j),
    st.just(frozenset()),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEY, children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3).map(Sequence),
        st.dictionaries(_TEXT, children, max_size=3).map(Mapping),
        children.map(lambda shared: [shared, {"again": shared}]),  # one object reached twice
        st.just([_NAN, _NAN]),  # the same NaN object twice
    )


def _mostly_plain(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(_CLEAN_TEXT, _CLEAN_TEXT, _CLEAN_TEXT, _TEXT, _WITH_NUL)
    plain = st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
    return st.one_of(plain, plain, plain, _containers(children))


def _nested(value: Any, levels: int, as_dict: bool) -> Any:
    for _ in range(levels):
        value = {"k": value} if as_dict else [value]
    return value


#: levels around orjson's limit (254 below the top) and MAX_DEPTH
_LEVELS = st.sampled_from([0, 0, 0, 1, 252, 253, 254, 255, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 3])

#: (value, levels, as_dict): the test nests ``value`` itself (Hypothesis cannot print 500 levels)
QUIRKY = st.tuples(st.recursive(_QUIRKY_LEAF, _containers, max_leaves=12), _LEVELS, st.booleans())

#: plain JSON only: what the fast path must call storable by itself (within 64-bit integers and
#: orjson's depth, without surrogate code points or NUL)
_CLEAN_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=8)
_WITH_NUL = st.builds("{}\x00{}".format, _CLEAN_TEXT, _CLEAN_TEXT)
_CLEAN_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _CLEAN_TEXT,
)
CLEAN = st.tuples(
    st.recursive(
        _CLEAN_LEAF,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(_CLEAN_TEXT, children, max_size=4),
        max_leaves=20,
    ),
    st.sampled_from([0, 1, 200]),
    st.booleans(),
)


#: plain JSON with a quirk here and there: the documents the fast check most often calls plain
ALMOST_PLAIN = st.tuples(
    st.recursive(st.one_of(*[_CLEAN_LEAF] * 7, _TEXT, _WITH_NUL, _QUIRKY_LEAF), _mostly_plain, max_leaves=16),
    st.sampled_from([0] * 8 + [1, 253, 254, MAX_DEPTH]),
    st.booleans(),
)


def _storable(document: Any) -> bool:
    return not storability_violations(document, "test", limit=1)


@settings(max_examples=1000)
@given(QUIRKY | ALMOST_PLAIN)
@example(([1, (2,)], 0, False))
@example(({"a": [_NAN]}, 0, False))
@example(({"a": {"b": [float("-inf")]}}, 0, False))
@example(([Colour.RED], 0, False))
@example(([uuid.UUID(int=1)], 0, False))
@example(({"a\x00": 1}, 0, False))
@example((["a\x00"], 0, False))
@example(({"\\\x00": 1}, 0, False))
@example((["\\\\\x00"], 0, False))
@example(({"\ud800": 1}, 0, False))
@example(([orjson.Fragment(b"NaN")], 0, False))
@example((_attributes(a=1, b=_NAN), 0, False))
@example((_attributes(a=1, b=(2,)), 0, False))
@example((1, MAX_DEPTH, False))
@example((1, MAX_DEPTH, True))
def test_the_fast_check_never_calls_an_unstorable_document_storable(drawn: tuple[Any, int, bool]) -> None:
    document = _nested(*drawn)
    for check in CHECKS:
        if check(document):
            assert _storable(document), (check, document)
    # the pass over the values gives the same answer however it lists a level's children
    if _writes_as_plain_json(document):
        by_iteration = _values_are_json(document, _children_by_iteration)
        assert _values_are_json(document, _children_by_traversal) is by_iteration
        if by_iteration:
            assert _storable(document), document


@settings(max_examples=500)
@given(CLEAN)
@example(([_attributes(a=1, b=[2.5, None])], 0, False))
@example(({"\\u0000": None}, 0, False))
@example((["\\\\u0000", "a\\\\\\u0000"], 0, False))
def test_the_fast_check_calls_plain_json_storable(drawn: tuple[Any, int, bool]) -> None:
    document = _nested(*drawn)
    assert _storable(document)  # the strategy is right
    assert is_plain_json(document)
    for check in CHECKS:
        assert check(document), check


def test_what_orjson_writes_without_complaint_is_not_plain() -> None:
    """Each of these passes ``orjson.dumps`` as the fast check calls it: only the pass after it
    finds them."""
    for value in ((1, 2), _NAN, math.inf, -math.inf, Colour.RED, Colour.BLUE, uuid.UUID(int=7), orjson.Fragment(b"1")):
        for check in CHECKS:
            assert not check({"k": [value]}), (check, value)
        assert not _storable({"k": [value]}), value


def test_storable_values_the_fast_check_leaves_to_the_walk() -> None:
    """Storable, but not plain to the fast checks: the walk decides, and calls them storable."""
    for value in (
        Level.LOW,
        Mode.AUTO,
        Text("x"),
        Number(1.5),
        Mapping(a=1),
        Sequence([1]),
        2**64,
        "\ud83d\ude00",
    ):
        for check in CHECKS:
            assert not check([value]), (check, value)
        assert _storable([value]), value
    # deeper than orjson writes: not known to the Python check; the C one walks up to MAX_DEPTH
    deep = _nested(1, 300, as_dict=False)
    assert not is_plain_json_in_python(deep)
    assert _storable(deep)


def test_this_interpreter_lists_children_in_one_call() -> None:
    """CPython's gc.get_referents returns every item of a list and every value of a dict: the fast
    pass uses it (elsewhere it falls back to one container at a time, which the property above
    also checks)."""
    assert _children is _children_by_traversal


@given(st.lists(st.recursive(_CLEAN_LEAF, _mostly_plain, max_leaves=6), max_size=6))
def test_both_ways_list_the_same_children(level: list[Any]) -> None:
    plain = [value for value in level if type(value) in (dict, list, str, int, float, bool, type(None))]
    by_iteration = sorted(map(id, _children_by_iteration(plain)))
    by_traversal = sorted(map(id, _children_by_traversal(plain)))
    if all(type(key) is str for value in plain if type(value) is dict for key in value):
        assert by_traversal == by_iteration
    else:  # the keys of a dict that has a non-str key come too
        assert set(by_iteration) <= set(by_traversal)


_FREE_FORM = validator_for("session-metadata")


def _reference_is_valid(document: Any) -> bool:
    """is_valid as it was before the fast check changed: the exact walk, then jsonschema-rs."""
    if not _storable(document):
        return False
    try:
        return bool(_FREE_FORM._lenient.is_valid(document))
    except (ValueError, TypeError, OverflowError, RecursionError):
        return not _FREE_FORM.errors(document)


@settings(max_examples=300)
@given(QUIRKY | ALMOST_PLAIN)
def test_is_valid_keeps_its_verdicts(drawn: tuple[Any, int, bool]) -> None:
    document = {"learning_key": "k", "metadata": {"caller": _nested(*drawn)}}  # caller metadata: any JSON
    assert is_valid(document, "session-metadata") is _reference_is_valid(document)
