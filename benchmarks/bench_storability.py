"""What the storability checks of ``is_valid`` cost, and what any other way of making them could cost at best.

``is_valid`` = jsonschema-rs's verdict + a check of the whole Python document for what no JSON Schema
engine sees (nesting depth, tuples and other Python types, NaN/Infinity, ``\\u0000``, lone surrogates).
jsonschema-rs reads the Python objects in place and only those its schema looks at, so it cannot do
any of this for us. On the corpus of ``bench_validation.py`` this prints, per document (CPU time,
median of interleaved rounds):

* jsonschema-rs alone, the compiled validator ``is_valid`` uses;
* the check ``is_valid`` does (``is_plain_json``): the C walk of ``_plain.c`` (``_plaincheck``),
  one pass by exact type that also reads every string and key (the row says when it is not built);
* the Python check it replaces where the C one is not built (``is_plain_json_in_python``), and its
  two passes alone: ``orjson.dumps`` with the search for ``\\u0000`` in its output, and the exact-type
  pass over the values (tuples, NaN/Infinity, Enum members, UUIDs: what orjson writes without complaint);
* ``orjson.dumps`` alone, and ``orjson.loads(orjson.dumps(doc)) == doc`` (an equality check that
  would find tuples, NaN, Enums and UUIDs without a Python pass: it costs more than the pass);
* the previous check, one Python pass over every node (strings and keys included);
* a pass that visits every node in C and checks nothing (``gc.get_referents`` level by level): the
  floor of anything done on the Python side;
* that pass plus the exact type of every node (what tuples and foreign objects need);
* jsonschema-rs on the schema with the checks folded in (``allOf`` with a recursive schema that
  allows the JSON types only, which NaN and ±Infinity fail, and no ``\\u0000`` in strings or keys);
  it still cannot see tuples (read as arrays) or lone surrogates (it cannot read them as text);
  and the same with the types only;

and for each, the ratio ``is_valid`` / jsonschema-rs it would allow at best (engine / (engine + it)).

    python benchmarks/bench_storability.py
    python benchmarks/bench_storability.py --repeats 11
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson
from bench_validation import session_metadata

from pytest_atlas._table import render_table
from pytest_atlas.validation import validator_for
from pytest_atlas.validation._schemas import closure, document
from pytest_atlas.validation._storable import (
    _AS_PLAIN_JSON_ONLY,
    _LONE_SURROGATE,
    MAX_DEPTH,
    _refuse,
    _values_are_json,
    _writes_as_plain_json,
    is_plain_json_in_python,
    native_is_plain_json,
)
from pytest_atlas.validation._validator import _refuse_retrieval, _rs_registry

_PLAIN_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def previous_walk(document: Any) -> bool:
    """The check before orjson did the strings and keys: Python work for every node."""
    lone = _LONE_SURROGATE.search
    level, depth = [document], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return False
        following: list[Any] = []
        for value in level:
            kind = type(value)
            if kind is str:
                if "\x00" in value or (not value.isascii() and lone(value)):
                    return False
            elif kind is dict:
                for key in value:
                    if type(key) is not str or "\x00" in key or (not key.isascii() and lone(key)):
                        return False
                following.extend(value.values())
            elif kind is list:
                following.extend(value)
            elif kind is float:
                if value - value != 0.0:
                    return False
            elif kind is int or kind is bool or value is None:
                pass
            else:
                return False
        level = following
    return True


def dumps_only(document: Any) -> bytes:
    return orjson.dumps(document, option=_AS_PLAIN_JSON_ONLY, default=_refuse)


def round_trip_equal(document: Any) -> bool:
    written = orjson.dumps(document, option=_AS_PLAIN_JSON_ONLY, default=_refuse)
    return b"\\u0000" not in written and bool(orjson.loads(written) == document)


def visit_only(value: Any) -> bool:
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return False
        level = gc.get_referents(*level)
    return True


def visit_and_type(value: Any) -> bool:
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH or not _PLAIN_TYPES.issuperset(map(type, level)):
            return False
        level = gc.get_referents(*level)
    return True


def folded(nul: bool) -> Any:
    name = "session-metadata"
    ref = {"$ref": "#/$defs/plain"}
    plain: dict[str, Any] = {
        "type": ["object", "array", "string", "number", "boolean", "null"],
        "items": ref,
        "additionalProperties": ref,
    }
    if nul:
        plain["not"] = {"type": "string", "pattern": "\u0000"}
        plain["propertyNames"] = {"not": {"pattern": "\u0000"}}
    return jsonschema_rs.Draft202012Validator(
        {"allOf": [dict(document(name)), ref], "$defs": {"plain": plain}},
        registry=_rs_registry("lenient", closure(name)),
        validate_formats=True,
        retriever=_refuse_retrieval,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20251125)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    corpus = [session_metadata(rng) for _ in range(args.docs)]
    engine = validator_for("session-metadata")._lenient
    with_nul, types_only = folded(nul=True), folded(nul=False)
    work: list[tuple[str, Callable[[Any], Any], bool]] = [
        ("jsonschema-rs alone (the validator is_valid uses)", engine.is_valid, False),
        *(
            [("the check is_valid does: the C walk (_plain.c)", native_is_plain_json, False)]
            if native_is_plain_json is not None
            else []
        ),
        ("the Python check (is_plain_json_in_python, pure wheels)", is_plain_json_in_python, False),
        ("  of which: orjson.dumps + search for \\u0000", _writes_as_plain_json, False),
        ("  of which: the exact-type pass over the values", _values_are_json, False),
        ("orjson.dumps alone (the options is_plain_json uses)", dumps_only, False),
        ("orjson.dumps + loads + == (round-trip equality)", round_trip_equal, False),
        ("the previous check (Python work for every node)", previous_walk, False),
        ("a C pass over every node, no check (gc.get_referents)", visit_only, False),
        ("  + the exact type of every node", visit_and_type, False),
        ("jsonschema-rs, checks folded in: JSON types + no \\u0000", with_nul.is_valid, True),
        ("jsonschema-rs, checks folded in: JSON types only", types_only.is_valid, True),
    ]
    for doc in corpus[:5]:  # warm-up
        for _, run, _ in work:
            run(doc)
    passes: dict[str, list[float]] = {name: [] for name, _, _ in work}
    for _ in range(args.repeats):  # interleaved
        for name, run, _ in work:
            started = time.process_time()
            for doc in corpus:
                run(doc)
            passes[name].append((time.process_time() - started) / len(corpus) * 1e6)
    cost = {name: statistics.median(times) for name, times in passes.items()}
    base = cost[work[0][0]]
    rows = [("per document", "µs (CPU)", "best is_valid / jsonschema-rs it allows")]
    for name, _, replaces_engine in work:
        extra = cost[name] - base if replaces_engine else cost[name]
        best = "" if name == work[0][0] else f"{base / (base + max(extra, 0.0)):.2f}"
        rows.append((name, f"{cost[name]:.1f}", best))
    built = "" if native_is_plain_json is not None else "; the C check is not built here (a pure install)"
    print(f"{len(corpus)} session-metadata documents, median of {args.repeats} interleaved rounds{built}\n")
    print(render_table(rows, right={1, 2}))


if __name__ == "__main__":
    main()
