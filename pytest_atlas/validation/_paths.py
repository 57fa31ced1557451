"""The JSON paths a document carries, in the collapsed form of the unknown-fields census.

Array indices become ``[*]`` and the keys of maps (objects the schema describes with
``patternProperties`` or an ``additionalProperties`` subschema, e.g. ``learning_usage.roles``)
become ``*``, exactly as the census of :mod:`pytest_atlas.contracts` names paths; named
properties and caller keys keep their names. So a document with 40 steps has one path
``$.steps[*].id``, not 40.

Two of Atlas's tolerated quirks are read as the shape they stand for, so that a census does not
see them as a different field or a different type: ``tags`` written as one string counts as an
array of strings (quirk ``tags-as-string``), and a ``reward_summary`` of the ``{average, count}``
shape counts as the ``{score}`` shape (quirk ``reward-summary-step-average``).

A subschema marked ``"x-atlas-volatile": true`` describes a field Atlas writes only on some runs
by design (``review_status`` only on an alert or an auto-approval) or a free-form subtree; its
path and every path below it are reported as volatile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_atlas._violation import json_path
from pytest_atlas.validation._schemas import QUIRK, resolve_ref, uri_of

__all__ = ["VOLATILE", "DocumentPaths", "PathWalker", "field_type"]

#: the annotation that marks a subschema (and everything below it) as volatile
VOLATILE = "x-atlas-volatile"
_MAX_DEPTH = 64
_BRANCHES = ("allOf", "anyOf", "oneOf", "then", "else")


def field_type(value: object) -> str:
    """The JSON type of a value as a field census counts it: ``number`` covers integers, so that a
    score written as ``1`` in one session and ``0.5`` in the next is one type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _tags_as_array(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _summary_as_score(value: Any) -> Any:
    if isinstance(value, Mapping) and "average" in value and "score" not in value:
        return {"score": value["average"], **{k: v for k, v in value.items() if k not in ("average", "count")}}
    return value


#: quirk id -> the value read in its place (the shape the quirk stands for)
CANONICAL: dict[str, Callable[[Any], Any]] = {
    "tags-as-string": _tags_as_array,
    "reward-summary-step-average": _summary_as_score,
}

_Located = tuple[Any, str]  # a subschema and the URI it was read from


@dataclass(frozen=True)
class _Shape:
    """What the schema says about one collapsed path: the union of every subschema that applies."""

    properties: Mapping[str, tuple[_Located, ...]]
    map_values: tuple[_Located, ...]
    items: tuple[_Located, ...]
    quirks: frozenset[str]
    volatile: bool


def _expand(located: tuple[_Located, ...]) -> list[_Located]:
    """The subschemas in force: ``$ref`` followed, ``allOf``/``anyOf``/``oneOf``/``then``/``else`` opened."""
    out: list[_Located] = []
    seen: set[int] = set()
    stack = list(located)
    while stack:
        node, uri = stack.pop()
        if not isinstance(node, Mapping) or id(node) in seen or len(seen) > 10_000:
            continue
        seen.add(id(node))
        out.append((node, uri))
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                target, target_uri = resolve_ref(ref, uri)
                stack.append((target, target_uri.split("#", 1)[0] + "#"))  # the document's URI, no fragment
            except (KeyError, IndexError, ValueError):  # pragma: no cover - the shipped schemas resolve
                pass
        for branch in _BRANCHES:
            value = node.get(branch)
            if isinstance(value, Mapping):
                stack.append((value, uri))
            elif isinstance(value, list):
                stack.extend((entry, uri) for entry in value)
    return out


def _shape(located: tuple[_Located, ...]) -> _Shape:
    properties: dict[str, list[_Located]] = {}
    map_values: list[_Located] = []
    items: list[_Located] = []
    quirks: set[str] = set()
    volatile = False
    for node, uri in _expand(located):
        volatile = volatile or node.get(VOLATILE) is True
        if isinstance(node.get(QUIRK), str):
            quirks.add(node[QUIRK])
        for key, sub in (node.get("properties") or {}).items():
            properties.setdefault(key, []).append((sub, uri))
        for sub in (node.get("patternProperties") or {}).values():
            map_values.append((sub, uri))
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and extra and not node.get("properties"):
            map_values.append((extra, uri))
        for keyword in ("items", "prefixItems"):
            value = node.get(keyword)
            if isinstance(value, Mapping):
                items.append((value, uri))
            elif isinstance(value, list):
                items.extend((entry, uri) for entry in value)
    return _Shape(
        {key: tuple(subs) for key, subs in properties.items()},
        tuple(map_values),
        tuple(items),
        frozenset(quirks),
        volatile,
    )


@dataclass
class DocumentPaths:
    """The paths of one document: collapsed path -> the JSON types found there, and which are volatile."""

    types: dict[str, set[str]]
    volatile: set[str]


class PathWalker:
    """Lists the collapsed JSON paths of documents of one schema (``None``: no schema, indices only).

    The schema is read once per path shape and remembered, so walking many documents costs the
    walk of the documents.
    """

    def __init__(self, schema_name: str | None) -> None:
        self.schema_name = schema_name
        root: tuple[_Located, ...] = ()
        if schema_name is not None:
            from pytest_atlas.validation._schemas import document

            root = ((document(schema_name), uri_of(schema_name) + "#"),)
        self._root = root
        self._shapes: dict[tuple[tuple[int, str], ...], _Shape] = {}

    def _shape(self, located: tuple[_Located, ...]) -> _Shape:
        # schema nodes are read once and kept (``document`` caches them), so their ids are stable
        key = tuple((id(node), uri) for node, uri in located)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _shape(located)
        return shape

    def paths(self, document: Any) -> DocumentPaths:
        """Every path below the root of ``document`` (the root itself is not a field)."""
        out = DocumentPaths({}, set())
        if document is None:
            return out
        for path, value, volatile in self._walk(document, [], self._root, False, 0):
            out.types.setdefault(path, set()).add(field_type(value))
            if volatile:
                out.volatile.add(path)
        return out

    def _walk(
        self, value: Any, segments: list[str | int], located: tuple[_Located, ...], volatile: bool, depth: int
    ) -> Iterator[tuple[str, Any, bool]]:
        shape = self._shape(located) if located else None
        if shape is not None:
            volatile = volatile or shape.volatile
            for quirk in sorted(shape.quirks):
                if quirk in CANONICAL:
                    value = CANONICAL[quirk](value)
        if segments:
            yield json_path(segments), value, volatile
        if depth >= _MAX_DEPTH:
            return
        if isinstance(value, Mapping):
            for key, child in value.items():
                key = str(key)
                if shape is not None and key in shape.properties:
                    yield from self._walk(child, [*segments, key], shape.properties[key], volatile, depth + 1)
                elif shape is not None and shape.map_values:
                    yield from self._walk(child, [*segments, "*"], shape.map_values, volatile, depth + 1)
                else:
                    yield from self._walk(child, [*segments, key], (), volatile, depth + 1)
        elif isinstance(value, list | tuple):
            items = shape.items if shape is not None else ()
            for child in value:
                yield from self._walk(child, [*segments, "[*]"], items, volatile, depth + 1)
