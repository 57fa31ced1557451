"""How results travel from test items to the report: one ``user_properties`` entry per result.

Light on purpose (JSON only): the plugin imports it on every run. Any plugin module adds a result
to the ``--atlas-report`` JSON by appending ``result_property(kind, payload)`` to
``item.user_properties`` during the test; pytest copies user properties into every report, and
pytest-xdist ships reports to the controller, which files the payload under ``results[kind]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["OUTCOMES", "RESULT_PROPERTY", "parse_result_property", "result_property"]

#: the user_properties name under which results travel
RESULT_PROPERTY = "atlas_result"
#: the outcomes a payload may have
OUTCOMES = ("pass", "fail", "inconclusive", "error")


def result_property(kind: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    """A ``(name, value)`` pair for ``item.user_properties`` carrying one result to the report.

    ``payload`` is a JSON-able mapping with at least ``name`` and ``outcome`` (one of
    :data:`OUTCOMES`); ``kind`` says which section of the report it belongs to (``gate``,
    ``contract``, ``assertion`` ...).
    """
    if payload.get("outcome") not in OUTCOMES or not payload.get("name"):
        raise ValueError(f"a report payload needs a name and an outcome in {OUTCOMES}, got {dict(payload)!r}")
    return RESULT_PROPERTY, json.dumps({**payload, "kind": kind}, sort_keys=True, default=str)


def parse_result_property(name: str, value: object) -> dict[str, Any] | None:
    """The payload of a user property written by :func:`result_property`, else None."""
    if name != RESULT_PROPERTY or not isinstance(value, str):
        return None
    try:
        payload = json.loads(value)
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
