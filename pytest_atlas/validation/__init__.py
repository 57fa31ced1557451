"""Payload validation: JSON Schemas (draft 2020-12) for every Atlas JSONB payload.

The pass/fail verdict comes from jsonschema-rs (compiled once per schema and cached); documents that
fail are re-checked with python-jsonschema for detailed errors. Formats (``date-time``) are checked
for real. Tolerated Atlas quirks pass and come back as warnings.

    >>> from pytest_atlas.validation import validate, iter_errors, is_valid, SCHEMA_NAMES
    >>> is_valid({"score": 0.9}, "reward-stats")
    True
    >>> [v.format() for v in iter_errors({"score": "0.9"}, "reward-stats")]
    ['$.score: type: expected number, got string "0.9"']
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_atlas._violation import Severity, UnknownField, Violation, json_path, preview
from pytest_atlas.errors import PayloadError
from pytest_atlas.validation._paths import DocumentPaths, PathWalker, field_type
from pytest_atlas.validation._schemas import BASE_URI, SCHEMA_NAMES, document, uri_of
from pytest_atlas.validation._storable import MAX_DEPTH
from pytest_atlas.validation._validator import PayloadCheck, PayloadValidator, validator_for

__all__ = [
    "BASE_URI",
    "MAX_DEPTH",
    "SCHEMA_NAMES",
    "DocumentPaths",
    "PathWalker",
    "PayloadCheck",
    "PayloadError",
    "PayloadValidator",
    "Severity",
    "UnknownField",
    "Violation",
    "check_payload",
    "field_type",
    "is_valid",
    "iter_errors",
    "json_path",
    "load_schema",
    "preview",
    "schema_uri",
    "validate",
    "validator_for",
]

Schema = str | Mapping[str, Any]


def validate(instance: Any, schema: Schema) -> list[Violation]:
    """Check ``instance`` against ``schema`` (a name from :data:`SCHEMA_NAMES` or your own schema).

    Returns the warnings (tolerated Atlas quirks; empty for a clean payload). Raises
    :class:`~pytest_atlas.errors.PayloadError`, carrying every violation, when there is any error.
    """
    result = validator_for(schema).check(instance)
    if result.errors:
        raise PayloadError(result.schema, result.errors + result.warnings)
    return list(result.warnings)


def iter_errors(instance: Any, schema: Schema, *, warnings: bool = False) -> Iterator[Violation]:
    """Every error of ``instance`` (and, with ``warnings=True``, every tolerated quirk), sorted by path."""
    result = validator_for(schema).check(instance)
    yield from result.errors
    if warnings:
        yield from result.warnings


def is_valid(instance: Any, schema: Schema) -> bool:
    """The verdict only: True when ``instance`` has no error (warnings do not count). The fast path."""
    return validator_for(schema).is_valid(instance)


def check_payload(instance: Any, schema: Schema, *, census: bool = True) -> PayloadCheck:
    """Errors, warnings and the keys the schema does not describe (``unknown_fields``)."""
    return validator_for(schema).check(instance, census=census)


def load_schema(name: str) -> dict[str, Any]:
    """A copy of a shipped schema document (``load_schema("session-metadata")``)."""
    validator = validator_for(name)
    return copy.deepcopy(dict(document(validator.name)))


def schema_uri(name: str) -> str:
    """The ``$id`` of a shipped schema: what your own schemas ``$ref``."""
    return uri_of(validator_for(name).name)
