"""Rendering of gate (and contract) results: text tables, Markdown, the JSON report. Rendering only:
nothing here evaluates a gate or touches a database.

The JSON report (``--atlas-report PATH``) is one document::

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
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_atlas._properties import OUTCOMES, RESULT_PROPERTY, parse_result_property, result_property

if TYPE_CHECKING:  # only for annotations: building a report must not load numpy and scipy
    from pytest_atlas.gates._result import GateResult, KeyResult

__all__ = [
    "REPORT_FORMAT",
    "RESULT_PROPERTY",
    "build_report",
    "parse_result_property",
    "render_failure",
    "render_markdown",
    "render_table",
    "result_property",
    "write_report",
]

REPORT_FORMAT = "pytest-atlas-report"
_OUTCOMES = OUTCOMES

HEADERS = ("gate", "learning key", "n", "statistic", "bound / interval", "threshold", "outcome", "worst sessions")


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------


def _key(key: str) -> str:
    if key == "":
        return "(no key)"
    return key if len(key) <= 16 else key[:12] + "…"


def _value(row: KeyResult) -> str:
    if row.value is None or (isinstance(row.value, float) and not math.isfinite(row.value)):
        return row.statistic
    if row.statistic in ("alerts",):
        return f"{row.statistic} {int(row.value)}"
    if row.statistic == "pending":
        return f"pending {row.value:.0%}"
    sign = "+" if row.statistic == "diff" and row.value > 0 else ""
    return f"{row.statistic} {sign}{row.value:.3f}"


def _outcome(row: KeyResult) -> str:
    label = row.outcome.value.upper()
    if row.accepted and row.outcome.value != "pass":
        label += " (accepted)"
    return label


def _rows(results: Iterable[GateResult]) -> list[tuple[str, ...]]:
    lines: list[tuple[str, ...]] = []
    for result in results:
        if result.error is not None:
            lines.append((result.name, "-", "-", "-", "-", "-", "ERROR", "-"))
            continue
        if not result.rows:
            lines.append((result.name, "-", "0", "-", "-", "-", "FAIL", "no sessions matched"))
            continue
        for row in result.rows:
            n = f"{row.n}" + (f" (+{row.missing} missing)" if row.missing else "")
            uncertain = row.detail.get("uncertain") if row.detail else None
            n += f" (+{uncertain} uncertain)" if uncertain else ""
            worst = ", ".join(f"#{session}" for session in row.worst) or "-"
            lines.append(
                (result.name, _key(row.learning_key), n, _value(row), row.bound, row.threshold, _outcome(row), worst)
            )
    return lines


def render_table(results: Iterable[GateResult]) -> str:
    """A fixed-width table, one line per gate and learning key."""
    lines = [HEADERS, *_rows(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def render_markdown(results: Iterable[GateResult], *, title: str = "pytest-atlas gates") -> str:
    """A Markdown table (for $GITHUB_STEP_SUMMARY)."""
    icon = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️", "ERROR": "💥"}
    out = [f"### {title}", "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    materialised = list(results)
    for line in _rows(materialised):
        cells = list(line)
        cells[6] = f"{icon.get(cells[6].split()[0], '')} {cells[6]}".strip()
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    reasons = [f"- **{r.name}**: {r.error or r.message}" for r in materialised if r.error or not r.rows]
    reasons += [
        f"- **{r.name}** `{_key(row.learning_key)}`: {row.reason}"
        for r in materialised
        for row in r.rows
        if row.outcome.value != "pass"
    ]
    if reasons:
        out += ["", *reasons]
    return "\n".join(out) + "\n"


def render_failure(result: GateResult) -> str:
    """What an assertion helper or a gate item shows when it does not pass."""
    head = f"{result.kind} gate {result.name!r}: {result.summary}"
    lines = [head, "", render_table([result])]
    if result.error is not None:
        return "\n".join([head, f"  {result.error}"])
    if not result.rows:
        lines.append(f"  {result.message or 'the selection matched no sessions'}")
    for row in result.rows:
        if row.outcome.value != "pass":
            note = f" [accepted: {row.accepted}]" if row.accepted else ""
            lines.append(f"  {_key(row.learning_key)}: {row.reason}{note}")
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# the JSON report
# ------------------------------------------------------------------------------------------------


def build_report(
    payloads: Sequence[Mapping[str, Any]], *, exit_status: int | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report document for the given payloads (grouped by their ``kind``)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    summary = dict.fromkeys(_OUTCOMES, 0)
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


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return target
