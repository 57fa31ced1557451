"""Quirk warnings and unknown fields of a document that passes the lenient schema.

Such a document fails the ``no_quirk``/``closed`` variants exactly where it relies on a tolerated
quirk (a ``false`` subschema standing in for an ``x-atlas-quirk`` one) or on an extra key (an
``additionalProperties: false`` standing in for ``{}``). jsonschema-rs reports each of those
failures with its absolute keyword location, which points back into the lenient schema, where the
quirk's id and description live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_atlas._violation import (
    UnknownField,
    Violation,
    first_sentence,
    json_path,
    json_type,
    preview,
)
from pytest_atlas.validation._schemas import QUIRK, lookup

__all__ = ["Explanation", "census_of_invalid", "explain"]


@dataclass
class Explanation:
    warnings: list[Violation]
    unknown: list[UnknownField]
    unexplained: list[Any]


#: does the lenient subschema at this location accept this value?
Accepts = Callable[[str, Any], bool]


def explain(errors: Sequence[Any], document: Any, schema_name: str, root: Any, accepts: Accepts) -> Explanation:
    """Turn the ``no_quirk``/``closed`` errors of ``document`` into warnings and census.

    Errors that are neither a quirk the value really has nor an extra key are ``unexplained``: for a
    document that fails the lenient schema too, those are its real errors.
    """
    result = Explanation([], [], [])
    for error in errors:
        hits = _explain_one(error, root, accepts)
        if hits is None:
            result.unexplained.append(error)
            continue
        for hit in hits:
            if isinstance(hit, UnknownField):
                result.unknown.append(hit)
            else:
                result.warnings.append(_warning(hit, document, schema_name))
    return result


def census_of_invalid(errors: Sequence[Any], root: Any, accepts: Accepts) -> list[UnknownField]:
    """The unknown keys of a document that fails the lenient schema.

    Outside ``anyOf`` every extra key is reported directly. Inside one, the document matches no
    branch cleanly, so the census follows the branch it comes closest to: first one whose type
    fits the value, then the fewest errors that are not extra keys or quirks. When branches tie,
    only the keys that all of them call unknown count.
    """
    found: list[UnknownField] = []
    for error in errors:
        found.extend(_census(error, root, accepts)[0])
    return found


#: a branch's distance from the value: (rejects the value's type outright, errors that are real)
_Distance = tuple[bool, int]


def _census(error: Any, root: Any, accepts: Accepts) -> tuple[list[UnknownField], int]:
    """(unknown keys, number of real errors) under ``error``."""
    if type(error.kind).__name__ == "AnyOf":
        here = list(error.instance_path)
        branches: list[tuple[_Distance, list[UnknownField]]] = []
        for branch in error.kind.context:
            unknown: list[UnknownField] = []
            real = 0
            wrong_type = False
            for sub in branch:
                sub_unknown, sub_real = _census(sub, root, accepts)
                unknown.extend(sub_unknown)
                real += sub_real
                wrong_type |= type(sub.kind).__name__ == "Type" and list(sub.instance_path) == here
            branches.append(((wrong_type, real), unknown))
        if not branches:
            return [], 1
        nearest = min(distance for distance, _ in branches)
        closest = [unknown for distance, unknown in branches if distance == nearest]
        agreed = set(closest[0]).intersection(*closest[1:])
        return [hit for hit in closest[0] if hit in agreed], nearest[1]
    hits = _explain_one(error, root, accepts)
    if hits is None:
        return [], 1
    return [hit for hit in hits if isinstance(hit, UnknownField)], 0


@dataclass(frozen=True)
class _QuirkHit:
    instance_path: tuple[str | int, ...]
    quirk: str
    description: str
    location: str


def _location(error: Any) -> str:
    location = error.absolute_keyword_location
    if location:
        return str(location)
    return "#/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in error.schema_path)


def _node(location: str, root: Any) -> Any:
    try:
        return lookup(location, root=root)
    except (KeyError, IndexError, ValueError):
        return None


def _explain_one(error: Any, root: Any, accepts: Accepts) -> list[_QuirkHit | UnknownField] | None:
    kind = type(error.kind).__name__
    location = _location(error)
    if kind == "FalseSchema":
        node = _node(location, root)
        if isinstance(node, dict) and QUIRK in node and accepts(location, error.instance):
            return [_QuirkHit(tuple(error.instance_path), str(node[QUIRK]), str(node.get("description", "")), location)]
        return None
    if kind == "AdditionalProperties":
        node = _node(location, root)
        if node != {}:
            return None
        instance = error.instance
        holder = _normalise(error.evaluation_path, error.instance_path)
        return [
            UnknownField(
                path=json_path(holder),
                key=str(key),
                json_type=json_type(instance.get(key)) if isinstance(instance, dict) else "unknown",
            )
            for key in error.kind.unexpected
        ]
    if kind == "AnyOf":
        for branch in error.kind.context:
            hits: list[_QuirkHit | UnknownField] = []
            for sub in branch:
                explained = _explain_one(sub, root, accepts)
                if explained is None:
                    break
                hits.extend(explained)
            else:
                return hits
        return None
    return None


_CONSUMING = {
    "properties": "key",
    "patternProperties": "any",
    "additionalProperties": "any",
    "items": "index",
    "prefixItems": "key",
}


def _normalise(evaluation_path: Sequence[str | int], instance_path: Sequence[str | int]) -> list[str | int]:
    """The instance path with array indices and map keys replaced by ``*``, using the keywords that
    consumed each segment along the evaluation path (``properties`` keeps the key).

    jsonschema-rs leaves an empty-string key out of an error's instance path; a map key the
    evaluation path consumed after the instance path ran out is such a key, and becomes ``*``
    like any other (the evaluation path's last step is the error's own keyword: it consumes none)."""
    out: list[str | int] = []
    remaining = list(instance_path)
    steps = list(evaluation_path)[:-1]
    index = 0
    while index < len(steps):
        keyword = steps[index]
        if not remaining:
            if keyword in ("patternProperties", "additionalProperties"):
                out.append("*")  # an empty key jsonschema-rs dropped
                index += 2 if keyword == "patternProperties" else 1
                continue
            index += 1
            continue
        if keyword in ("properties", "prefixItems"):
            out.append(remaining.pop(0))
            index += 2
            continue
        if keyword == "patternProperties":
            remaining.pop(0)
            out.append("*")
            index += 2
            continue
        if keyword in ("additionalProperties", "items"):
            segment = remaining.pop(0)
            out.append("*" if isinstance(segment, str) else "[*]")
            index += 1
            continue
        index += 1
    out.extend(remaining)
    return out


def _warning(hit: _QuirkHit, document: Any, schema_name: str) -> Violation:
    value = _at(document, hit.instance_path)
    summary = first_sentence(hit.description)
    return Violation(
        schema=schema_name,
        path=json_path(hit.instance_path),
        keyword="x-atlas-quirk",
        message=f"{hit.quirk}: {summary}" if summary else hit.quirk,
        value=preview(value),
        severity="warning",
        schema_path=hit.location,
        quirk=hit.quirk,
    )


def _at(document: Any, path: Sequence[str | int]) -> Any:
    node = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
