"""Rendering of gate and contract results: terminal sections, Markdown, the JSON report. Rendering
only: nothing here evaluates a check or touches a database. Tables go through the one renderer
(:func:`pytest_atlas._table.render_table`), so every key and value printed is escaped.

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

from pytest_atlas._outcome import OUTCOMES
from pytest_atlas._properties import RESULT_PROPERTY, parse_result_property, result_property
from pytest_atlas._table import escape
from pytest_atlas._table import render_table as _render_table

if TYPE_CHECKING:  # only for annotations: building a report must not load numpy and scipy
    from pytest_atlas._config import AtlasSettings
    from pytest_atlas.gates._result import GateResult, KeyResult

__all__ = [
    "REPORT_FORMAT",
    "RESULT_PROPERTY",
    "build_report",
    "contract_section",
    "gate_section",
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
#: a line of a terminal section and its colour (None, "red", "green", "yellow")
Line = tuple[str, str | None]


# ------------------------------------------------------------------------------------------------
# gate tables
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
    if row.statistic == "presence":
        return f"presence {row.value:.1%}"
    sign = "+" if row.statistic == "diff" and row.value > 0 else ""
    return f"{row.statistic} {sign}{row.value:.3f}"


def _outcome(row: KeyResult) -> str:
    from pytest_atlas.gates._result import NEW_KEY

    if row.statistic == NEW_KEY:
        return "NEW KEY (allowed)" if row.accepted else "NEW KEY"
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
        shown = result.rows
        if result.kind == "fields":  # hundreds of paths: the ones that did not pass, and a count of the rest
            shown = tuple(row for row in result.rows if row.outcome.value != "pass" or row.accepted)
            passed = len(result.rows) - len(shown)
        for row in shown:
            n = f"{row.n}" + (f" (+{row.missing} missing)" if row.missing else "")
            uncertain = row.detail.get("uncertain") if row.detail else None
            n += f" (+{uncertain} uncertain)" if uncertain else ""
            worst = ", ".join(f"#{session}" for session in row.worst) or "-"
            lines.append(
                (result.name, _row_key(result, row), n, _value(row), row.bound, row.threshold, _outcome(row), worst)
            )
        if result.kind == "fields" and passed:
            lines.append((result.name, f"({passed} more paths)", "-", "-", "-", "-", "PASS", "-"))
    return lines


def _row_key(result: GateResult, row: KeyResult) -> str:
    return _path(row.learning_key) if result.kind == "fields" else _key(row.learning_key)


def _path(path: str) -> str:
    return path if len(path) <= 60 else "…" + path[-59:]


def render_table(results: Iterable[GateResult]) -> str:
    """A fixed-width table, one line per gate and learning key (every cell escaped)."""
    return _render_table([HEADERS, *_rows(results)])


def _reasons(result: GateResult) -> list[str]:
    """One line per row that did not pass: ``key: reason [accepted ...]`` (escaped)."""
    lines = []
    undecided: list[KeyResult] = []
    for row in result.rows:
        if result.kind == "fields" and row.outcome.value == "inconclusive" and not row.accepted:
            undecided.append(row)  # often dozens of rarely written paths: one line for all of them
        elif row.outcome.value != "pass":
            note = f" [accepted: {row.accepted}]" if row.accepted else ""
            lines.append(escape(f"{_row_key(result, row)}: {row.reason}{note}"))
    if undecided:
        worst = max(float(row.detail.get("drop_detectable") or 0.0) for row in undecided)
        named = ", ".join(_path(row.learning_key) for row in undecided[:3]) + (", ..." if len(undecided) > 3 else "")
        lines.append(
            escape(
                f"{len(undecided)} path(s) inconclusive ({named}): no drop beyond noise, but these windows can only "
                f"detect drops up to {worst:.1%} in their shares; add sessions (every row is in the JSON report)"
            )
        )
    return lines


def render_failure(result: GateResult) -> str:
    """What an assertion helper or a gate item shows when it does not pass."""
    head = escape(f"{result.kind} gate {result.name!r}: {result.summary}")
    if result.error is not None:
        return "\n".join([head, *(f"  {escape(line)}" for line in result.error.splitlines())])
    lines = [head, "", render_table([result])]
    if not result.rows:
        lines.append(f"  {escape(result.message or 'the selection matched no sessions')}")
    lines += [f"  {line}" for line in _reasons(result)]
    lines += [f"  note: {escape(note)}" for note in result.notes]
    return "\n".join(lines)


def _problem_lines(prefix: str, problem: str) -> list[Line]:
    """A problem as terminal lines: the first after ``prefix``, its hint on the next (escaped)."""
    first, *rest = problem.splitlines() or [""]
    return [(escape(prefix + first), "red"), *((escape(line), None) for line in rest)]


def _results(payloads: Iterable[Mapping[str, Any]]) -> list[GateResult]:
    from pytest_atlas.gates._result import GateResult

    return [GateResult.from_dict(p) for p in sorted(payloads, key=lambda p: str(p.get("nodeid")))]


def _counts(payloads: Sequence[Mapping[str, Any]], noun: str) -> str:
    """``3 gates: 1 passed, 1 failed, 1 inconclusive``: the items' outcomes, every one counted."""
    words = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive", "error": "error"}
    tally = {outcome: 0 for outcome in OUTCOMES}
    for payload in payloads:
        tally[str(payload.get("outcome", "error"))] = tally.get(str(payload.get("outcome", "error")), 0) + 1
    parts = [
        f"{count} {words.get(outcome, outcome)}" + ("s" if outcome == "error" and count != 1 else "")
        for outcome, count in tally.items()
        if count
    ]
    total = len(payloads)
    return f"{total} {noun}{'' if total == 1 else 's'}: " + (", ".join(parts) or "none")


def _color(payloads: Sequence[Mapping[str, Any]]) -> str:
    outcomes = {str(p.get("outcome")) for p in payloads if p.get("blocking")}
    if "fail" in outcomes or "error" in outcomes:
        return "red"
    return "yellow" if "inconclusive" in outcomes else "green"


def gate_section(payloads: Sequence[Mapping[str, Any]], settings: AtlasSettings, target: str | None) -> list[Line]:
    """The ``atlas gates`` terminal section: database, table, reasons, notes, the count line."""
    results = _results(payloads)
    lines: list[Line] = []
    if target:
        lines.append((f"database: {escape(target)}", None))
    lines += [(line, None) for line in render_table(results).splitlines()]
    for result in results:
        if result.error is not None:
            lines += _problem_lines(f"{result.name}: ERROR: ", result.error)
        elif not result.rows:
            lines.append((escape(f"{result.name}: FAIL: {result.message}"), "red"))
        lines += [(escape(f"{result.name} / ") + line, None) for line in _reasons(result)]
        lines += [(escape(f"{result.name}: note: {note}"), None) for note in result.notes]
    lines.append((f"gates: {_counts(payloads, 'gate')}", _color(payloads)))
    return lines


# ------------------------------------------------------------------------------------------------
# contract tables
# ------------------------------------------------------------------------------------------------


def _contract_rows(payloads: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(payloads, key=lambda p: (int(p.get("order", 0)), str(p.get("name"))))


def contract_section(payloads: Sequence[Mapping[str, Any]], settings: AtlasSettings, target: str | None) -> list[Line]:
    """The ``atlas contract`` terminal section: database and scope, table, problems, the count line."""
    from pytest_atlas.contracts._result import SUMMARY_HEADERS, SUMMARY_NUMBERS, summary_row

    scope = []
    if settings.contract_since:
        scope.append(f"since {settings.contract_since.isoformat()}")
    if settings.contract_limit:
        scope.append(f"newest {settings.contract_limit:,} rows per table")
    lines: list[Line] = []
    if target:
        lines.append((escape(f"database: {target}") + (f" ({', '.join(scope)})" if scope else ""), None))
    ordered = _contract_rows(payloads)
    table = _render_table([SUMMARY_HEADERS, *(summary_row(p.get("row", p)) for p in ordered)], right=SUMMARY_NUMBERS)
    for index, line in enumerate(table.splitlines()):
        failed = index > 1 and ordered[index - 2].get("outcome") != "pass"
        lines.append((line, "red" if failed else None))
    problems: dict[str, list[str]] = {}  # one line per distinct problem (an unreachable database: one)
    for payload in ordered:
        if payload.get("outcome") == "error" and payload.get("problem"):
            problems.setdefault(str(payload.get("problem")), []).append(str(payload.get("name")))
    for problem, names in problems.items():
        which = names[0] if len(names) == 1 else f"{len(names)} checks ({names[0]}, ...)"
        lines += _problem_lines(f"{which}: ERROR: ", problem)
    rows = sum(int(p.get("row", {}).get("rows", 0)) for p in ordered)
    errors = sum(int(p.get("row", {}).get("errors", 0)) for p in ordered)
    warnings = sum(int(p.get("row", {}).get("warnings", 0)) for p in ordered)
    lines.append(
        (
            f"contract: {_counts(ordered, 'check')}; {errors:,} error(s) and {warnings:,} warning(s) in {rows:,} rows",
            _color(ordered),
        )
    )
    return lines


# ------------------------------------------------------------------------------------------------
# Markdown ($GITHUB_STEP_SUMMARY)
# ------------------------------------------------------------------------------------------------

_ICON = {"PASS": "✅", "OK": "✅", "FAIL": "❌", "NEW": "❌", "INCONCLUSIVE": "⚠️", "ERROR": "💥"}


def _md(text: str) -> str:
    """A Markdown table cell: escaped, pipes and backticks neutralised, no HTML."""
    return escape(" ".join(text.split("\n"))).replace("|", "\\|").replace("`", "'").replace("<", "&lt;")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]], outcome_column: int) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [_md(cell) for cell in row]
        label = row[outcome_column]
        cells[outcome_column] = f"{_ICON.get(label.split()[0].upper(), '')} {cells[outcome_column]}".strip()
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_markdown(
    gates: Sequence[Mapping[str, Any]] | Iterable[GateResult],
    contracts: Sequence[Mapping[str, Any]] = (),
    *,
    target: str | None = None,
    title: str = "pytest-atlas",
    charts: bool = True,
) -> str:
    """A Markdown section (for $GITHUB_STEP_SUMMARY): the gate table and the contract table, each
    followed by the reasons of what did not pass, and (``charts``) the gates' charts as Mermaid
    ``xychart-beta`` blocks. ``gates`` are payloads or :class:`GateResult`."""
    from pytest_atlas.gates._result import GateResult

    gate_results = [g if isinstance(g, GateResult) else GateResult.from_dict(g) for g in gates]
    out = [f"### {title}" + (f": `{_md(target)}`" if target else ""), ""]
    if gate_results:
        out += [f"**gates**: {_counts([r.to_dict() for r in gate_results], 'gate')}", ""]
        out += _md_table(HEADERS, _rows(gate_results), 6)
        reasons = [f"- **{_md(r.name)}**: {_md(r.error or r.message)}" for r in gate_results if r.error or not r.rows]
        reasons += [
            f"- **{_md(r.name)}** `{_md(_row_key(r, row))}`: {_md(row.reason)}"
            for r in gate_results
            for row in r.rows
            if row.outcome.value != "pass"
        ]
        if reasons:
            out += ["", *reasons]
        out.append("")
        if charts:
            from pytest_atlas._charts import mermaid_charts

            out += mermaid_charts([r.to_dict() for r in gate_results])
    if contracts:
        from pytest_atlas.contracts._result import SUMMARY_HEADERS, summary_row

        ordered = _contract_rows(contracts)
        out += [f"**contract**: {_counts(ordered, 'check')}", ""]
        out += _md_table(SUMMARY_HEADERS, (summary_row(p.get("row", p)) for p in ordered), 6)
        problems = [
            f"- **{_md(str(p.get('name')))}**: {_md(str(p.get('summary', '')))}"
            for p in ordered
            if p.get("outcome") != "pass"
        ]
        if problems:
            out += ["", *problems]
        out.append("")
    return "\n".join(out) + "\n"


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


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any] | str) -> Path:
    """Write the JSON report (a document) or a rendered one (text, e.g. the HTML report) to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = report if isinstance(report, str) else json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    target.write_text(text, encoding="utf-8")
    return target
