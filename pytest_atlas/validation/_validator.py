"""Compiled validators: jsonschema-rs for the verdict, python-jsonschema for the details.

A :class:`PayloadValidator` holds, for one schema, three jsonschema-rs validators (the ``lenient``,
``no_quirk`` and ``closed`` variants, see :mod:`._schemas`) and, built on first need, one
python-jsonschema validator. Validators of the shipped schemas are compiled once per process.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from pytest_atlas._arguments import did_you_mean, unknown_names
from pytest_atlas._violation import UnknownField, Violation, preview
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.validation import _schemas, _storable
from pytest_atlas.validation._census import KeyCensus, Unsupported
from pytest_atlas.validation._explain import census_of_invalid, explain
from pytest_atlas.validation._storable import storability_violations

__all__ = ["PayloadCheck", "PayloadValidator", "validator_for"]

# what jsonschema-rs raises on Python values it cannot read (bytes, non-string keys, huge ints, ...)
_ENGINE_ERRORS = (ValueError, TypeError, OverflowError, RecursionError)


@dataclass(frozen=True)
class PayloadCheck:
    """Everything known about one payload: errors, warnings (tolerated quirks) and, when asked for,
    the keys the schema does not describe."""

    schema: str
    errors: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()
    unknown_fields: tuple[UnknownField, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def violations(self) -> tuple[Violation, ...]:
        return self.errors + self.warnings


def _census_order(field: UnknownField) -> tuple[str, str, str]:
    """Unknown fields in one order whichever way they were found (path, key, type)."""
    return (field.path, field.key, field.json_type)


def _refuse_retrieval(uri: str) -> Any:
    raise ValueError(f"pytest-atlas does not fetch schemas over the network: {uri}")


@functools.cache
def _rs_registry(variant: _schemas.Variant, names: tuple[str, ...]) -> Any:
    """The shipped schemas ``names`` (a schema's $ref closure) in their ``variant`` form."""
    return jsonschema_rs.Registry(
        [(_schemas.uri_of(name), _schemas.variant_document(name, variant)) for name in names],
        retriever=_refuse_retrieval,
    )


@functools.cache
def _py_registry(names: tuple[str, ...]) -> Any:
    from pytest_atlas.validation._detail import registry

    return registry({name: _schemas.document(name) for name in names})


def _compile_rs(schema: Any, variant: _schemas.Variant, names: tuple[str, ...] | None = None) -> Any:
    """jsonschema-rs's validator of ``schema`` in its ``variant`` form; ``names`` are the shipped schemas
    it may ``$ref`` (default: those it reaches)."""
    needed = _schemas.closure_of(schema) if names is None else names
    return jsonschema_rs.Draft202012Validator(
        _schemas.derive(schema, variant) if variant != "lenient" else schema,
        registry=_rs_registry(variant, needed),
        validate_formats=True,
        retriever=_refuse_retrieval,
    )


class PayloadValidator:
    """The compiled validators of one schema. Build with :func:`validator_for`.

    Only what is used is compiled, on first use: the lenient variant (the verdict) at once, the
    others when a document needs them (warnings, the census), python-jsonschema for failures.
    Each compiles against the shipped schemas its ``$ref``s reach, not all of them.
    """

    def __init__(self, name: str, schema: Mapping[str, Any], names: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.schema = schema
        self._names = _schemas.closure_of(schema) if names is None else names
        self._lenient = self._compile("lenient")
        self._detail: Any = None
        self._pruning: Any = None
        self._failures = 0  # failing documents detailed so far
        self._parts: dict[str, Any] = {}
        self._clean = PayloadCheck(name)

    def _compile(self, variant: _schemas.Variant) -> Any:
        return _compile_rs(self.schema, variant, self._names)

    @functools.cached_property
    def _no_quirk(self) -> Any:
        return self._compile("no_quirk")

    @functools.cached_property
    def _closed(self) -> Any:
        return self._compile("closed")

    @functools.cached_property
    def _key_census(self) -> KeyCensus | None:
        """The census walk of a shipped schema (a custom one takes the validator's way, also a copy of
        a shipped one: the walk relies on what tests/contracts/test_schema_files.py checks of the
        shipped files, that a quirk sits only where ``false`` makes the schema stricter, so that a
        document valid under ``no_quirk`` is valid under the lenient schema too)."""
        if self.name not in _schemas.ALL_NAMES or self.schema is not _schemas.document(self.name):
            return None
        uri = _schemas.uri_of(self.name)
        registry = _rs_registry("no_quirk", self._names)

        def compile_at(location: str) -> Any:
            return jsonschema_rs.Draft202012Validator(
                {"$ref": location}, registry=registry, validate_formats=True, retriever=_refuse_retrieval
            )

        return KeyCensus(self.schema, uri, compile_at)

    def __repr__(self) -> str:
        return f"<PayloadValidator {self.name}>"

    # -- the verdict ---------------------------------------------------------------------------------

    def is_valid(self, document: Any) -> bool:
        """The pass/fail verdict (warnings do not fail)."""
        # _storable.is_plain_json looked up per call: the C check, or the Python one (tests swap them)
        if not _storable.is_plain_json(document) and storability_violations(document, self.name, limit=1):
            return False
        try:
            return bool(self._lenient.is_valid(document))
        except _ENGINE_ERRORS:
            return not self._detail_violations(document)

    # -- everything ------------------------------------------------------------------------------------

    def check(self, document: Any, *, census: bool = False, storable: bool = False) -> PayloadCheck:
        """Errors, warnings and (with ``census=True``) unknown fields of ``document``.

        ``storable=True`` says that ``document`` is known to be plain, finite, NUL-free JSON no deeper
        than :data:`~._storable.MAX_DEPTH` (what orjson reads from a ``jsonb`` value's text with fewer
        brackets than that: orjson refuses numbers that overflow to infinity): the walk that checks
        it is skipped.
        """
        plain = storable or _storable.is_plain_json(document)
        if not plain:
            problems = storability_violations(document, self.name)
            if problems:
                if any(v.keyword == "x-depth" for v in problems):
                    return PayloadCheck(self.name, errors=tuple(problems))
                return PayloadCheck(self.name, errors=tuple(problems) + tuple(self._detail_violations(document)))
        try:
            strict = self._closed if census else self._no_quirk
            if strict.is_valid(document):
                return self._clean
            if census:  # no error and no quirk: only unknown keys, which the census walk finds
                walk = self._key_census
                if walk is not None and self._no_quirk.is_valid(document):  # so valid, no quirk (see _key_census)
                    walked = self._unknown_keys(walk, document)
                    if walked is not None:
                        return PayloadCheck(self.name, unknown_fields=walked)
            if self._lenient.is_valid(document):
                return self._explain(strict, document)
        except _ENGINE_ERRORS:
            pass
        errors = self._detail_violations(document, plain=plain)
        if not errors:
            errors = [self._disagreement(document)]
        warnings: list[Violation] = []
        unknown: list[UnknownField] = []
        try:
            warnings = explain(
                list(self._no_quirk.iter_errors(document)), document, self.name, self.schema, self._accepts
            ).warnings
            if census:
                unknown = census_of_invalid(list(self._closed.iter_errors(document)), self.schema, self._accepts)
                unknown.sort(key=_census_order)
        except _ENGINE_ERRORS:
            pass
        warnings.sort(key=lambda v: (v.path, v.message))
        return PayloadCheck(self.name, errors=tuple(errors), warnings=tuple(warnings), unknown_fields=tuple(unknown))

    def errors(self, document: Any) -> list[Violation]:
        return list(self.check(document).errors)

    # -- internals -------------------------------------------------------------------------------------

    def _accepts(self, location: str, value: Any) -> bool:
        """Does the lenient subschema at ``location`` (a quirk's own shape) accept ``value``?"""
        part = self._parts.get(location)
        if part is None:
            reference = location if "://" in location.split("#", 1)[0] else None
            if reference is None:  # a location inside a custom schema without $id
                part = jsonschema_rs.Draft202012Validator(
                    {"$defs": {"root": self.schema}, "$ref": "#/$defs/root" + location.lstrip("#")},
                    registry=_rs_registry("lenient", self._names),
                    validate_formats=True,
                    retriever=_refuse_retrieval,
                )
            else:
                owner = _schemas.name_of_uri(reference)
                part = jsonschema_rs.Draft202012Validator(
                    {"$ref": reference},
                    registry=_rs_registry(
                        "lenient", _schemas.closure(owner) if owner in _schemas.ALL_NAMES else self._names
                    ),
                    validate_formats=True,
                    retriever=_refuse_retrieval,
                )
            self._parts[location] = part
        try:
            return bool(part.is_valid(value))
        except _ENGINE_ERRORS:
            return False

    def _unknown_keys(self, walk: KeyCensus, document: Any) -> tuple[UnknownField, ...] | None:
        """The census of a document valid under ``no_quirk``, by the walk (None: it cannot say)."""
        try:
            found = walk(document)
        except Unsupported:
            return None
        found.sort(key=_census_order)
        return tuple(found)

    def _explain(self, strict: Any, document: Any) -> PayloadCheck:
        found = explain(list(strict.iter_errors(document)), document, self.name, self.schema, self._accepts)
        warnings = list(found.warnings)
        for error in found.unexplained:  # pragma: no cover - every variant failure maps to a quirk or a key
            warnings.append(
                Violation(
                    schema=self.name,
                    path="$" + "".join(f"[{p!r}]" for p in error.instance_path),
                    keyword="x-atlas-quirk",
                    message=f"tolerated: {error.message[:200]}",
                    value=preview(error.instance),
                    severity="warning",
                )
            )
        warnings.sort(key=lambda v: (v.path, v.message))
        found.unknown.sort(key=_census_order)
        return PayloadCheck(self.name, warnings=tuple(warnings), unknown_fields=tuple(found.unknown))

    def prepare(self) -> PayloadValidator:
        """Compile everything a check can need now: the fast engine's variants and the detailed-error
        engine (python-jsonschema, imported on the first failing document otherwise). Call it where
        time is not measured -- at import or in a fixture -- so that no Hypothesis example pays for
        the first failure. Returns the validator."""
        for variant in ("_lenient", "_no_quirk", "_closed"):
            getattr(self, variant)
        self._detail_engine()
        return self

    def _detail_engine(self) -> Any:
        from pytest_atlas.validation._detail import detail_validator

        if self._detail is None:
            self._detail = detail_validator(self.schema, _py_registry(self._names))
        return self._detail

    def _detail_violations(self, document: Any, *, plain: bool = False) -> list[Violation]:
        """python-jsonschema's errors of ``document``; ``plain``: it is known to be plain, storable JSON,
        so (after the first few failures, which would pay for compiling them) the subtrees the fast
        engine accepts are not walked again."""
        from pytest_atlas.validation._detail import detail_violations

        engine = self._detail_engine()
        if plain:
            self._failures += 1
            if self._failures > _PRUNE_AFTER:
                engine = self._pruning_engine()
        try:
            return detail_violations(engine, document, self.name)
        except RecursionError:
            return [
                Violation(
                    schema=self.name,
                    path="$",
                    keyword="x-depth",
                    value=preview(document, 40),
                    message="the document is nested too deeply for python-jsonschema to report on it",
                )
            ]

    def _pruning_engine(self) -> Any:
        from pytest_atlas.validation._detail import pruning_validator

        if self._pruning is None:
            locations = _shipped_locations(self._names) if self.name in _schemas.ALL_NAMES else {}
            unusable: set[str] = set()

            def accepts(subschema: Any, value: Any) -> bool:
                location = locations.get(id(subschema))
                if location is None or location in unusable:
                    return False
                try:
                    return self._accepts(location, value)
                except (ValueError, jsonschema_rs.ReferencingError):  # a location it cannot compile alone
                    unusable.add(location)
                    return False

            self._pruning = pruning_validator(self.schema, _py_registry(self._names), accepts)
        return self._pruning

    def _disagreement(self, document: Any) -> Violation:
        return Violation(
            schema=self.name,
            path="$",
            keyword="x-engine",
            value=preview(document, 40),
            message="jsonschema-rs rejected this document but python-jsonschema found no error; please report "
            "this pytest-atlas bug with the document",
        )


#: failing documents a validator details in full before it prunes the subtrees the fast engine accepts
_PRUNE_AFTER = 16


@functools.cache
def _shipped_locations(names: tuple[str, ...]) -> dict[int, str]:
    """Every subschema object of the shipped (lenient) schemas ``names`` → its location (``uri#pointer``)."""
    found: dict[int, str] = {}
    for name in names:
        stack: list[tuple[Any, str]] = [(_schemas.document(name), "")]
        while stack:
            node, pointer = stack.pop()
            if isinstance(node, dict):
                found.setdefault(id(node), f"{_schemas.uri_of(name)}#{pointer}")
                for key, value in node.items():
                    if key not in ("const", "enum", "examples", "default"):
                        stack.append((value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"))
            elif isinstance(node, list):
                stack.extend((item, f"{pointer}/{index}") for index, item in enumerate(node))
    return found


@functools.cache
def _shipped(name: str) -> PayloadValidator:
    schema = _schemas.document(name)
    names = _schemas.closure(name)
    try:
        return PayloadValidator(name, schema, names)
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        raise _schemas.compile_error(names, exc) from None


#: the shipped schemas' validators by name: the hot path (``is_valid(doc, "session-metadata")``) finds
#: its validator in one dict lookup (a file name or ``$id`` still goes through :func:`_name_of`)
_BY_NAME: dict[str, PayloadValidator] = {}

_CUSTOM: OrderedDict[str, PayloadValidator] = OrderedDict()
_CUSTOM_LIMIT = 32


def validator_for(schema: str | Mapping[str, Any]) -> PayloadValidator:
    """The compiled validator of a shipped schema (by name, file name or ``$id``) or of your own
    draft 2020-12 schema (a mapping; it may ``$ref`` the shipped schemas by their ``$id``)."""
    if isinstance(schema, str):
        found = _BY_NAME.get(schema)
        if found is None:
            found = _shipped(_name_of(schema))
            if schema == found.name:
                _BY_NAME[schema] = found
        return found
    if isinstance(schema, Mapping):
        return _custom(schema)
    raise InvalidArgument(
        f"schema must be a schema name such as 'session-metadata' or a JSON Schema mapping, got "
        f"{type(schema).__name__}",
        hint=f"use one of: {', '.join(_schemas.SCHEMA_NAMES)}",
    )


def _name_of(text: str) -> str:
    name = _schemas.name_of_uri(text) or text.removesuffix(".schema.json").removesuffix(".json")
    if name in _schemas.SCHEMA_NAMES:
        return name
    error = unknown_names("payload schema", [name], _schemas.SCHEMA_NAMES)
    shown = f"unknown payload schema {text!r}" + did_you_mean(name, _schemas.SCHEMA_NAMES)
    raise InvalidArgument(shown, hint=error.hint)


def _custom(schema: Mapping[str, Any]) -> PayloadValidator:
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"the schema mapping is not JSON: {exc}",
            hint="pass a JSON Schema built from dicts, lists, strings and numbers",
        ) from None
    cached = _CUSTOM.get(key)
    if cached is not None:
        _CUSTOM.move_to_end(key)
        return cached
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidArgument(
            f"the schema is not a valid draft 2020-12 schema: {exc.message}",
            hint="check it with jsonschema.Draft202012Validator.check_schema",
        ) from None
    name = str(schema.get("title") or schema.get("$id") or "custom schema")
    try:
        validator = PayloadValidator(name, schema)
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        raise InvalidArgument(
            f"cannot compile the schema: {exc}",
            hint="$ref may only point inside the schema or at the shipped pytest-atlas schemas (by their $id)",
        ) from None
    _CUSTOM[key] = validator
    if len(_CUSTOM) > _CUSTOM_LIMIT:
        _CUSTOM.popitem(last=False)
    return validator
