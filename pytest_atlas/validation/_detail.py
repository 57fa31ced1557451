"""Detailed errors of failing documents, from python-jsonschema, turned into compact Violations.

Only documents that the fast engine rejected come here, so speed matters less than clarity:
``anyOf`` failures are narrowed to the branch the document most nearly matches, and messages are
rebuilt from the error's parts so that a 50 MB string shows up as a short preview.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from pytest_atlas._violation import Violation, first_sentence, json_path, json_type, preview
from pytest_atlas.errors import AtlasError

__all__ = ["detail_validator", "detail_violations", "format_checker", "pruning_validator", "registry"]


def _is_number(checker: Any, instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, float):
        return math.isfinite(instance)
    return isinstance(instance, int)


def _is_integer(checker: Any, instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, float):
        return math.isfinite(instance) and instance.is_integer()
    return isinstance(instance, int)


# JSON numbers are finite: NaN and Infinity are not numbers here (jsonb rejects them).
_TYPE_CHECKER = Draft202012Validator.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
AtlasDraft202012Validator = extend(Draft202012Validator, type_checker=_TYPE_CHECKER)

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$",
    re.ASCII,
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` as the JSON Schema test suite reads it (and jsonschema-rs checks it):
    calendar-correct dates (year 0000 included), ``T``/``t`` separator, an offset or ``Z``, and a
    leap second ``:60`` only at 23:59 UTC. rfc3339-validator rejects every leap second, so the two
    engines would disagree on them; this checker keeps them in step."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 60:
        return False
    leap_year = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 29 if month == 2 and leap_year else _DAYS[month - 1]
    if not 1 <= day <= days:
        return False
    offset = 0
    if match.group(7):
        off_hours, off_minutes = int(match.group(8)), int(match.group(9))
        if off_hours > 23 or off_minutes > 59:
            return False
        offset = (off_hours * 60 + off_minutes) * (1 if match.group(7) == "+" else -1)
    if second == 60:
        return (hour * 60 + minute - offset) % 1440 == 23 * 60 + 59
    return True


_format_checker: FormatChecker | None = None


def format_checker() -> FormatChecker:
    """The format checker of the detailed engine: every format python-jsonschema can check, with
    ``date-time`` checked by :func:`is_date_time` (never skipped)."""
    global _format_checker
    if _format_checker is None:
        checker = FormatChecker(formats=list(Draft202012Validator.FORMAT_CHECKER.checkers))
        checker.checks("date-time")(is_date_time)
        if checker.checkers.get("date-time", (None,))[0] is not is_date_time:  # pragma: no cover - defensive
            raise AtlasError("cannot install the date-time format check", hint="report this pytest-atlas bug")
        _format_checker = checker
    return _format_checker


def registry(schemas: Mapping[str, Mapping[str, Any]]) -> Registry[Any]:
    """A referencing registry holding ``schemas`` (by their ``$id``) and nothing else: no network."""

    def retrieve(uri: str) -> Resource[Any]:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]

    resources = [(schema["$id"], Resource.from_contents(dict(schema))) for schema in schemas.values()]
    return Registry(retrieve=retrieve).with_resources(resources)  # type: ignore[call-arg]


def detail_validator(schema: Mapping[str, Any], reg: Registry[Any]) -> Any:
    return AtlasDraft202012Validator(schema, registry=reg, format_checker=format_checker())


#: does the fast engine accept this value under this subschema (False when it cannot say)?
Accepts = Callable[[Any, Any], bool]


def pruning_validator(schema: Mapping[str, Any], reg: Registry[Any], accepts: Accepts) -> Any:
    """:func:`detail_validator`, except that ``properties`` does not descend into a property whose
    value ``accepts`` passes under its subschema: python-jsonschema finds no error there (the engines
    agree, which the test suite checks), so the errors are the same, and a failing document costs
    the parts that fail instead of the whole document."""

    def properties(validator: Any, properties: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for name, subschema in properties.items():
            if name in instance and not accepts(subschema, instance[name]):
                yield from validator.descend(instance[name], subschema, path=name, schema_path=name)

    pruning = extend(AtlasDraft202012Validator, validators={"properties": properties})
    return pruning(schema, registry=reg, format_checker=format_checker())


def detail_violations(validator: Any, document: Any, schema_name: str) -> list[Violation]:
    """Every error of ``document`` as a Violation, sorted by path."""
    out: list[Violation] = []
    seen: set[tuple[str, str, str]] = set()
    for error in validator.iter_errors(document):
        for violation in _violations_of(error, schema_name):
            key = (violation.path, violation.keyword, violation.message)
            if key not in seen:
                seen.add(key)
                out.append(violation)
    out.sort(key=lambda v: (v.path, v.keyword))
    return out


def _violations_of(error: ValidationError, schema_name: str) -> Iterator[Violation]:
    leaf = _narrow(error)
    yield Violation(
        schema=schema_name,
        path=json_path(leaf.absolute_path),
        keyword=str(leaf.validator),
        message=_message(leaf),
        value=preview(leaf.instance),
        severity="error",
        schema_path="/" + "/".join(str(part) for part in leaf.absolute_schema_path),
    )


def _narrow(error: ValidationError) -> ValidationError:
    """For an anyOf/oneOf failure, the single error of the branch the instance most nearly fits."""
    current = error
    while current.validator in ("anyOf", "oneOf") and current.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in current.context:
            branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        best = min(branches.items(), key=lambda item: _distance(item[1], current))
        errors = best[1]
        if len(errors) != 1:
            break
        current = errors[0]
    return current


def _distance(errors: list[ValidationError], parent: ValidationError) -> tuple[int, int, int]:
    # a branch whose type does not even match is the worst fit; then prefer fewer errors, then deeper ones
    type_mismatch = any(e.validator == "type" and len(e.absolute_path) == len(parent.absolute_path) for e in errors)
    depth = max(len(e.absolute_path) for e in errors)
    return (1 if type_mismatch else 0, len(errors), -depth)


def _names(values: Iterable[Any], limit: int = 8) -> str:
    items = [preview(value, 30) for value in values]
    if len(items) > limit:
        items = [*items[:limit], f"… ({len(items) - limit} more)"]
    return ", ".join(items)


def _message(error: ValidationError) -> str:
    keyword = error.validator
    expected: Any = error.validator_value
    instance = error.instance
    shown = preview(instance, 60)
    text: str
    if keyword == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        found = json_type(instance)
        got = shown if found in ("null", "boolean") else f"{found} {shown}"
        text = f"expected {' or '.join(map(str, wanted))}, got {got}"
    elif keyword == "enum":
        text = f"{shown} is not one of {_names(expected)}"
    elif keyword == "const":
        text = f"expected {preview(expected, 40)}, got {shown}"
    elif keyword == "required":
        missing = [key for key in expected if isinstance(instance, Mapping) and key not in instance]
        text = f"missing required key {_names(missing)}"
    elif keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else set()
        extra = [key for key in instance if key not in allowed] if isinstance(instance, Mapping) else []
        text = f"unexpected key {_names(extra)}"
        if allowed:
            text += f" (allowed: {_names(sorted(allowed), 12)})"
    elif keyword == "pattern" and _quirk_of(error.schema) == "serialisation-fallback":
        return (
            f"expected an object or array, got the string {shown}: a bare string is tolerated only as "
            "Atlas's serialisation fallback, the str() of a dict or list"
        )
    elif keyword == "pattern":
        text = f"{shown} does not match the pattern {expected}"
    elif keyword == "format":
        text = f"{shown} is not a valid {expected}"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {
            "minimum": "less than the minimum",
            "maximum": "greater than the maximum",
            "exclusiveMinimum": "not greater than",
            "exclusiveMaximum": "not less than",
        }[keyword]
        text = f"{shown} is {relation} {expected}"
    elif keyword in ("minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"):
        size = len(instance) if hasattr(instance, "__len__") else 0
        unit = "items" if "Items" in keyword else ("keys" if "Properties" in keyword else "characters")
        bound = "at least" if keyword.startswith("min") else "at most"
        text = f"has {size} {unit}, expected {bound} {expected}"
    elif keyword == "dependentRequired":
        text = error.message if len(error.message) < 200 else error.message[:197] + "..."
    elif keyword == "propertyNames":
        text = f"key {shown} is not allowed here"
    elif keyword in ("anyOf", "oneOf"):
        text = f"{shown} does not match any of the allowed shapes"
    elif keyword == "not" and isinstance(expected, Mapping) and list(expected) == ["required"]:
        text = f"key {_names(expected['required'])} is not allowed here"
    elif (
        keyword == "not"
        and isinstance(expected, Mapping)
        and list(expected) == ["anyOf"]
        and all(isinstance(s, Mapping) and list(s) == ["required"] for s in expected["anyOf"])
    ):
        keys = [key for s in expected["anyOf"] for key in s["required"]]
        text = f"none of the keys {_names(keys)} is allowed here"
    elif keyword == "not":
        text = f"{shown} has a combination of keys or values that is not allowed here"
    elif keyword is False or keyword == "False schema":  # pragma: no cover - depends on jsonschema version
        text = f"no value is allowed here, got {shown}"
    else:
        text = error.message if len(error.message) < 200 else error.message[:197] + "..."
    hint = _hint(error.schema)
    return f"{text} ({hint})" if hint else text


def _quirk_of(schema: Any) -> str | None:
    if isinstance(schema, Mapping) and "x-atlas-quirk" in schema:
        return str(schema["x-atlas-quirk"])
    return None


def _hint(schema: Any) -> str:
    """For failures of a quirk's own shape, the first sentence of its description."""
    if _quirk_of(schema) and isinstance(schema.get("description"), str):
        return first_sentence(schema["description"])
    return ""
