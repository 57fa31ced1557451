"""Is a Python value a JSON document PostgreSQL's ``jsonb`` can hold?

JSON Schema engines do not see these problems (jsonschema-rs reads NaN as null; python-jsonschema
calls it a number), yet Atlas's INSERT fails on each of them:

* non-finite floats (``NaN``, ``Infinity``): ``json.dumps`` writes them, ``jsonb`` rejects them;
* ``\\u0000`` in a string or key: ``jsonb`` rejects it;
* a lone surrogate (``"\\ud800"`` not followed by a low surrogate, or a low one without its high
  one) in a string or key: not Unicode text; ``json.dumps`` writes it as an escape ``jsonb`` rejects
  (a high-low pair is written as one escaped character, which ``jsonb`` takes);
* values JSON has no type for (bytes, sets, tuples, datetimes, non-string keys);
* nesting deeper than :data:`MAX_DEPTH`: Python's ``json`` cannot round-trip it.

Two ways to find them. :func:`storability_violations`, the exact walk, reports each problem with its
path. :data:`is_plain_json`, the fast check of ``is_valid``, only says True ("certainly plain,
storable JSON") or False ("not known": the walk decides). It is the C extension
``pytest_atlas.validation._plaincheck`` (``_plain.c``, built with the package by ``hatch_build.py``),
one walk of the document by exact type that runs no Python code, or, where that module was not
built, :func:`is_plain_json_in_python` (orjson and a pass over the values). Both say "not known"
for any surrogate in a string or key, a high-low pair too (orjson refuses them; the walk takes
pairs), and accept the same documents, except that the C one also takes those nested deeper than
orjson writes (254 arrays or objects one in another), up to :data:`MAX_DEPTH` levels: for those the
Python one says "not known" and the walk, which allows :data:`MAX_DEPTH` levels too, calls them
storable; the verdicts are the same.
"""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from pytest_atlas._violation import Violation, json_path, preview

__all__ = ["MAX_DEPTH", "is_plain_json", "is_plain_json_in_python", "storability_violations"]

#: documents nested deeper than this are reported (``x-depth``) instead of being walked
MAX_DEPTH = 512

#: orjson.dumps options that make it refuse (call ``default`` for) subclasses, datetimes, dataclasses
_AS_PLAIN_JSON_ONLY = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)

#: how orjson writes a NUL character (it writes every control character but \b\t\n\f\r as \u00XX)
_NUL_ESCAPE = re.compile(rb"\\u0000").search
#: the same, not the tail of an escaped backslash: the text ``\u0000`` (a backslash, then 'u0000')
#: is written ``\\u0000``; a NUL after a backslash ``\\\u0000``
_REAL_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000").search

#: a surrogate code point that is not half of a high-low pair
_LONE_SURROGATE = re.compile("[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")


def is_plain_json_in_python(document: Any) -> bool:
    """True when ``document`` is plain, finite JSON without NUL or a surrogate, with at most 254 arrays
    and objects one in another (orjson's limit; :data:`MAX_DEPTH` allows more). False means "not
    known": :func:`storability_violations` decides.

    The fast check where the C one is not built, two passes: :func:`_writes_as_plain_json` (orjson, in
    C: every string and key) and :func:`_values_are_json` (one type test per value, none per key or
    character).
    """
    return _writes_as_plain_json(document) and _values_are_json(document)


def _writes_as_plain_json(document: Any) -> bool:
    """``orjson.dumps`` writes ``document`` and its output holds no NUL.

    orjson raises on what it cannot write as plain JSON: keys that are not exact ``str``,
    subclasses of ``str``/``int``/``dict``/``list``, floats' subclasses, datetimes, dataclasses,
    bytes, sets and other foreign types, strings with a surrogate (a lone one, or a pair, which the
    walk decides), integers beyond 64 bits, arrays and objects nested more than 254 deep. It
    writes NUL as ``\\u0000``, which one search of its output finds.
    """
    try:
        written = orjson.dumps(document, option=_AS_PLAIN_JSON_ONLY, default=_refuse)
    except Exception:  # orjson's TypeError, or whatever an Enum's ``value`` raises
        return False
    return _NUL_ESCAPE(written) is None or _REAL_NUL_ESCAPE(written) is None


_JSON_TYPES_BUT_FLOAT = frozenset({str, dict, list, int, bool, type(None)})


def _children_by_traversal(level: list[Any]) -> list[Any]:
    """The items of the lists and the values of the dicts in ``level``, in one C call."""
    return gc.get_referents(*level)


def _children_by_iteration(level: list[Any]) -> list[Any]:
    """The same, one container at a time (where :func:`_traversal_yields_every_item` is False)."""
    following: list[Any] = []
    for value in level:
        if type(value) is dict:
            following.extend(value.values())
        elif type(value) is list:
            following.extend(value)
    return following


def _traversal_yields_every_item() -> bool:
    """Does ``gc.get_referents`` return every item of a list and every value of a dict here?

    CPython's lists and dicts visit all of them, atomic ones included, but the language only
    promises the objects that may form a cycle: this looks, once, with an item of each kind.
    """
    items: list[Any] = [1.5, float("nan"), 1, 2**70, True, None, "s", 1j, b"b", (), [], {}]
    by_str = {str(index): item for index, item in enumerate(items)}
    by_any: dict[Any, Any] = {0: None, **by_str}  # a table that keeps its keys
    del by_any[0]
    wanted = set(map(id, items))
    return all(wanted <= set(map(id, gc.get_referents(container))) for container in (items, by_str, by_any))


_children = _children_by_traversal if _traversal_yields_every_item() else _children_by_iteration


def _values_are_json(document: Any, children: Callable[[list[Any]], list[Any]] = _children) -> bool:
    """No value of ``document`` is one orjson writes without complaint although it is not a JSON
    value: a tuple (written as an array), NaN or ±Infinity (as null), an Enum member (as its
    value), a UUID, an orjson Fragment. One breadth-first pass over the values, by exact type; at
    most :data:`MAX_DEPTH` levels. The keys are :func:`_writes_as_plain_json`'s to check (a level
    may hold some: ``gc.get_referents`` returns the keys of a dict whose keys are not all exact
    ``str``)."""
    level = [document]
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:  # orjson refuses far less; this does not rely on its limit
            return False
        for value in level:
            kind = type(value)
            if kind in _JSON_TYPES_BUT_FLOAT:
                continue
            if kind is not float or value - value:  # value - value: NaN for NaN and ±Infinity
                return False  # a tuple, an Enum member, a UUID, a subclass: let the slow path decide
        level = children(level)
    return True


def _refuse(value: Any) -> Any:
    raise TypeError  # orjson calls this for what it cannot write itself: not plain JSON


def _native_check() -> Callable[[Any], bool] | None:
    """The C check, if it was built for this interpreter and counts levels up to the same limit."""
    try:
        from pytest_atlas.validation import _plaincheck
    except ImportError:  # a pure wheel: no compiler where it was built, or PYTEST_ATLAS_NO_EXTENSION=1
        return None
    if _plaincheck.MAX_DEPTH != MAX_DEPTH:  # pragma: no cover - a module built from another _plain.c
        return None
    return _plaincheck.is_plain_json


#: the C check (None where it was not built)
native_is_plain_json: Final = _native_check()

#: True when ``document`` is plain, finite JSON PostgreSQL ``jsonb`` can hold (exact JSON types,
#: ``str`` keys, integers within 64 bits, no NUL or surrogate in a string or key, at most
#: :data:`MAX_DEPTH` levels); False means "not known": :func:`storability_violations` decides.
#: The C check where it was built, :func:`is_plain_json_in_python` otherwise.
is_plain_json: Callable[[Any], bool] = native_is_plain_json or is_plain_json_in_python


def storability_violations(document: Any, schema: str, *, limit: int = 100) -> list[Violation]:
    """Every storability problem of ``document``, with its path (at most ``limit``)."""
    found: list[Violation] = []
    for violation in _walk(document, schema):
        found.append(violation)
        if len(found) >= limit:
            break
    return found


def _walk(document: Any, schema: str) -> Iterator[Violation]:
    # explicit stack of (value, path, depth): no recursion, so 10,000 levels are fine
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(document, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            shown = json_path(path[:6]) + f"…({len(path)} levels)"
            yield Violation(
                schema=schema,
                path=shown,
                keyword="x-depth",
                value=preview(value, 40),
                message=f"nested deeper than {MAX_DEPTH} levels: Python's json module cannot load or dump "
                "this document reliably, so it was not checked further",
            )
            continue
        if isinstance(value, str):
            yield from _text_problems(schema, path, value)
        elif value is None or isinstance(value, bool | int):
            pass
        elif isinstance(value, float):
            if not math.isfinite(value):
                yield Violation(
                    schema=schema,
                    path=json_path(path),
                    keyword="x-nonfinite",
                    value=preview(value),
                    message=f"{preview(value)} is not a JSON number: PostgreSQL jsonb rejects it, so Atlas's "
                    "INSERT of this payload would fail",
                )
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                if not isinstance(key, str):
                    yield Violation(
                        schema=schema,
                        path=json_path(path),
                        keyword="x-json-type",
                        value=repr(key)[:80],
                        message=f"object key {key!r} is a Python {type(key).__name__}: JSON keys are strings",
                    )
                    key = str(key)
                else:
                    yield from _text_problems(schema, path, key, key_text=True)
                children.append((item, (*path, key), depth + 1))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((item, (*path, index), depth + 1) for index, item in reversed(list(enumerate(value))))
        else:
            yield Violation(
                schema=schema,
                path=json_path(path),
                keyword="x-json-type",
                value=preview(value),
                message=f"a Python {type(value).__name__} is not a JSON value (use dicts, lists, str, int, "
                "float, bool and None)",
            )


def _text_problems(schema: str, path: tuple[str | int, ...], text: str, key_text: bool = False) -> Iterator[Violation]:
    """What makes a string or key unstorable: ``\\u0000`` (``x-nul``), a lone surrogate (``x-surrogate``)."""
    problems = []
    if "\x00" in text:
        problems.append(("x-nul", "\\u0000, which PostgreSQL jsonb cannot store"))
    found = None if text.isascii() else _LONE_SURROGATE.search(text)
    if found is not None:
        point = f"\\u{ord(found.group()):04x}"
        problems.append(
            ("x-surrogate", f"a lone surrogate ({point}), which is not Unicode text: PostgreSQL jsonb rejects it")
        )
    what = "key" if key_text else "string"
    for keyword, problem in problems:
        yield Violation(
            schema=schema,
            path=json_path(path),
            keyword=keyword,
            value=preview(text),
            message=f"the {what} contains {problem}",
        )
