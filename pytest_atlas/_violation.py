"""Violations as data: where a payload breaks its schema, in JSON-path form, with a short preview."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = ["Severity", "UnknownField", "Violation", "first_sentence", "json_path", "json_type", "preview"]

Severity = Literal["error", "warning"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(segments: Iterable[str | int]) -> str:
    """``["a", 0, "b c"]`` → ``$.a[0]['b c']`` (JSONPath, the form jq and PostgreSQL users read).

    The wildcards ``"*"`` (any key) and ``"[*]"`` (any index) render as ``.*`` and ``[*]``.
    """
    out = ["$"]
    for segment in segments:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif segment == "*":
            out.append(".*")
        elif segment == "[*]":
            out.append("[*]")
        elif _IDENTIFIER.match(segment):
            out.append(f".{segment}")
        else:
            escaped = segment.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of a schema description, whitespace-normalised, without its final period."""
    flat = " ".join(text.split())
    head = flat.split(". ", 1)[0].rstrip(".")
    return head if len(head) <= limit else head[: limit - 3] + "..."


def json_type(value: object) -> str:
    """The JSON type name of a Python value (``python:<type>`` for values JSON cannot hold)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else "non-finite number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return f"python:{type(value).__name__}"


def preview(value: object, limit: int = 80) -> str:
    """A short JSON-like rendering of ``value``: never longer than about ``limit`` characters,
    never walks deeper than a few levels, so it is safe on a 50 MB string or 10,000 nested lists."""
    parts: list[str] = []
    _render(value, parts, [limit], depth=0)
    return "".join(parts)


def _render(value: object, out: list[str], budget: list[int], depth: int) -> None:
    if budget[0] <= 0:
        out.append("…")
        return
    if isinstance(value, str):
        text = value
        room = max(budget[0] - 2, 8)
        if len(text) > room:
            shown = json.dumps(text[:room], ensure_ascii=False)[:-1] + f'…" ({len(text):,} chars)'
        else:
            shown = json.dumps(text, ensure_ascii=False)
        out.append(shown)
        budget[0] -= len(shown)
        return
    if value is None or isinstance(value, bool | int | float):
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        else:
            shown = json.dumps(value)
        out.append(shown)
        budget[0] -= len(shown)
        return
    if isinstance(value, Mapping | list):
        is_map = isinstance(value, Mapping)
        if depth >= 3:
            shown = "{…}" if is_map else "[…]"
            out.append(shown)
            budget[0] -= len(shown)
            return
        out.append("{" if is_map else "[")
        budget[0] -= 1
        items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
        for index, (key, item) in enumerate(items):
            if index:
                out.append(", ")
                budget[0] -= 2
            if budget[0] <= 0:
                out.append("…")
                break
            if is_map:
                key_text = json.dumps(str(key), ensure_ascii=False) + ": "
                out.append(key_text)
                budget[0] -= len(key_text)
            _render(item, out, budget, depth + 1)
        out.append("}" if is_map else "]")
        budget[0] -= 1
        return
    text = f"<python {type(value).__name__}>"
    out.append(text)
    budget[0] -= len(text)


@dataclass(frozen=True)
class Violation:
    """One way a payload breaks its schema (or, with severity ``warning``, one tolerated Atlas quirk).

    ``path`` is a JSONPath into the payload (``$.adaptive_summary.mode``), ``keyword`` the JSON Schema
    keyword that failed (or an ``x-`` pseudo-keyword for checks outside JSON Schema: ``x-nonfinite``,
    ``x-depth``, ``x-json-type``, ``x-nul``, ``x-surrogate``, ``x-parse`` and the relational ``x-…`` checks of
    :func:`pytest_atlas.check_database`), ``value`` a truncated rendering of the offending value.
    ``table``/``column``/``primary_key`` are set when the payload came from a database row.
    """

    schema: str
    path: str
    keyword: str
    message: str
    value: str = ""
    severity: Severity = "error"
    schema_path: str = ""
    quirk: str | None = None
    table: str | None = None
    column: str | None = None
    primary_key: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def where(self) -> str:
        """``sessions.metadata id=42`` for database rows, the schema name otherwise."""
        if self.table is None:
            return self.schema
        location = f"{self.table}.{self.column}" if self.column else self.table
        if self.primary_key:
            location += " " + " ".join(f"{key}={value}" for key, value in self.primary_key.items())
        return location

    def format(self, *, location: bool = False) -> str:
        """One line: ``$.reward_stats.score: type: expected number, got string "0.9"``."""
        head = f"{self.where}: " if location else ""
        tag = "" if self.is_error else "warning: "
        return f"{head}{tag}{self.path}: {self.keyword}: {self.message}"

    def at(self, *, table: str | None, column: str | None, primary_key: Mapping[str, Any] | None) -> Violation:
        """The same violation, located in a database row."""
        return replace(self, table=table, column=column, primary_key=primary_key)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.primary_key is not None:
            out["primary_key"] = dict(self.primary_key)
        return out

    def __str__(self) -> str:
        return self.format(location=self.table is not None)


@dataclass(frozen=True)
class UnknownField:
    """A key the schema does not describe, found where the schema tolerates extra keys.

    ``path`` is the JSONPath of the object holding it, with array indices and map keys replaced by
    ``*`` (``$.reward_audit[*]``); ``json_type`` is the JSON type of its value.
    """

    path: str
    key: str
    json_type: str
