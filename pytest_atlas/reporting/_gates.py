"""Gate results as text: the gate table, the failure text of a gate or reward assertion, and the
``atlas gates`` terminal section. Rendering only; every cell goes through the one table renderer
(:func:`pytest_atlas._table.render_table`), so every key and value printed is escaped."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_atlas._table import escape, render_table
from pytest_atlas.reporting._lines import Line, color, counts, problem_lines

if TYPE_CHECKING:  # only for annotations: rendering must not load numpy and scipy
    from pytest_atlas._config import AtlasSettings
    from pytest_atlas.gates import GateResult, KeyResult

__all__ = [
    "HEADERS",
    "gate_rows",
    "gate_section",
    "gate_table",
    "key_label",
    "render_failure",
    "results_of",
    "row_label",
]

HEADERS = ("gate", "learning key", "n", "statistic", "bound / interval", "threshold", "outcome", "worst sessions")


def key_label(key: str) -> str:
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
    from pytest_atlas.gates import NEW_KEY

    if row.statistic == NEW_KEY:
        return "NEW KEY (allowed)" if row.accepted else "NEW KEY"
    label = row.outcome.value.upper()
    if row.accepted and row.outcome.value != "pass":
        label += " (accepted)"
    return label


def gate_rows(results: Iterable[GateResult]) -> list[tuple[str, ...]]:
    lines: list[tuple[str, ...]] = []
    for result in results:
        if result.not_run is not None:
            lines.append((result.name, "-", "-", "-", "-", "-", result.outcome.value.upper().replace("-", " "), "-"))
            continue
        if result.error is not None:
            lines.append((result.name, "-", "-", "-", "-", "-", "ERROR", "-"))
            continue
        if not result.rows:
            lines.append((result.name, "-", "0", "-", "-", "-", "FAIL", "no sessions matched"))
            continue
        shown = result.rows
        if result.kind == "fields":  # hundreds of paths: the ones that did not pass, and a count of the rest
            shown = tuple(row for row in result.rows if row.outcome.value != "pass" or row.accepted)
        for row in shown:
            n = f"{row.n}" + (f" (+{row.missing} missing)" if row.missing else "")
            uncertain = row.detail.get("uncertain") if row.detail else None
            n += f" (+{uncertain} uncertain)" if uncertain else ""
            worst = ", ".join(f"#{session}" for session in row.worst) or "-"
            lines.append(
                (result.name, row_label(result, row), n, _value(row), row.bound, row.threshold, _outcome(row), worst)
            )
        if len(shown) < len(result.rows):
            more = len(result.rows) - len(shown)
            lines.append((result.name, f"({more} more paths)", "-", "-", "-", "-", "PASS", "-"))
    return lines


def row_label(result: GateResult, row: KeyResult) -> str:
    """The row's name in a table: a learning key (shortened), or a fields gate's JSON path."""
    if result.kind == "fields":
        return row.learning_key if len(row.learning_key) <= 60 else "…" + row.learning_key[-59:]
    return key_label(row.learning_key)


def gate_table(results: Iterable[GateResult]) -> str:
    """A fixed-width table, one line per gate and learning key (every cell escaped)."""
    return render_table([HEADERS, *gate_rows(results)])


def _reasons(result: GateResult) -> list[str]:
    """One line per row that did not pass: ``key: reason [accepted ...]`` (escaped). The inconclusive
    paths of a fields gate (often dozens of rarely written ones) share one line."""
    lines = []
    undecided: list[KeyResult] = []
    for row in result.rows:
        if result.kind == "fields" and row.outcome.value == "inconclusive" and not row.accepted:
            undecided.append(row)
        elif row.outcome.value != "pass":
            note = f" [accepted: {row.accepted}]" if row.accepted else ""
            lines.append(escape(f"{row_label(result, row)}: {row.reason}{note}"))
    if undecided:
        worst = max(float(row.detail.get("drop_detectable") or 0.0) for row in undecided)
        named = ", ".join(row_label(result, row) for row in undecided[:3]) + (", ..." if len(undecided) > 3 else "")
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
    lines = [head, "", gate_table([result])]
    if not result.rows:
        lines.append(f"  {escape(result.message or 'the selection matched no sessions')}")
    lines += [f"  {line}" for line in _reasons(result)]
    lines += [f"  note: {escape(note)}" for note in result.notes]
    return "\n".join(lines)


def results_of(payloads: Iterable[Mapping[str, Any]]) -> list[GateResult]:
    from pytest_atlas.gates import GateResult

    return [GateResult.from_dict(p) for p in sorted(payloads, key=lambda p: str(p.get("nodeid")))]


def gate_section(payloads: Sequence[Mapping[str, Any]], settings: AtlasSettings, target: str | None) -> list[Line]:
    """The ``atlas gates`` terminal section: database, table, reasons, notes, the count line."""
    results = results_of(payloads)
    lines: list[Line] = []
    if target:
        lines.append((f"database: {escape(target)}", None))
    lines += [(line, None) for line in gate_table(results).splitlines()]
    for result in results:
        if result.not_run is not None:
            lines.append((escape(f"{result.name}: {result.summary}"), "yellow" if result.deselected else "red"))
        elif result.error is not None:
            lines += problem_lines(f"{result.name}: ERROR: ", result.error)
        elif not result.rows:
            lines.append((escape(f"{result.name}: FAIL: {result.message}"), "red"))
        lines += [(escape(f"{result.name} / ") + line, None) for line in _reasons(result)]
        lines += [(escape(f"{result.name}: note: {note}"), None) for note in result.notes]
    lines.append((f"gates: {counts(payloads, 'gate')}", color(payloads)))
    return lines
