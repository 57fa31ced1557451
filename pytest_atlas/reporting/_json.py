"""The JSON report (``--atlas-report PATH``): one document for the whole run::

    {"format": "pytest-atlas-report", "version": 1, "created": ..., "exit_status": 0,
     "summary": {"pass": 3, "fail": 1, "inconclusive": 0, "error": 0},
     "results": {"gate": [...], "contract": [...]}}

Any plugin module adds its results the same way, so they survive pytest-xdist: it appends
``pytest_atlas._properties.result_property(kind, payload)`` to ``item.user_properties`` during the
test; the controller collects every such property from the reports and files the payload under
``results[kind]``. A payload is a JSON object with at least ``name`` and ``outcome`` (pass, fail,
inconclusive or error).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_atlas._outcome import OUTCOMES

__all__ = ["REPORT_FORMAT", "build_report", "write_report"]

REPORT_FORMAT = "pytest-atlas-report"


def build_report(
    payloads: Sequence[Mapping[str, Any]], *, exit_status: int | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report document for the given payloads (grouped by their ``kind``)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    summary = dict.fromkeys(OUTCOMES, 0)
    for payload in payloads:
        kind = str(payload.get("kind", "other"))
        grouped.setdefault(kind, []).append(dict(payload))
        outcome = payload.get("outcome")
        if outcome in summary:
            summary[str(outcome)] += 1
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exit_status": exit_status,
        "summary": summary,
        "results": {kind: sorted(items, key=lambda item: str(item.get("name"))) for kind, items in grouped.items()},
    }
    if extra:
        report.update(extra)
    return report


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any] | str) -> Path:
    """Write the JSON report (a document) or a rendered one (text: the HTML report) to ``path``, whole
    and never through a link (``pytest_atlas.db.write_output``: a path someone else may control raises
    ``UnsafePathError``; one that cannot be written, ``OSError``)."""
    from pytest_atlas.db import write_output  # psycopg: only for a run that writes a report

    text = report if isinstance(report, str) else json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    return write_output(Path(path), text.encode("utf-8"))
