"""The Markdown section a run appends to ``$GITHUB_STEP_SUMMARY``: the gate table and the contract
table (drawn by :func:`pytest_atlas._table.markdown_table`), each followed by the reasons of what did
not pass, and the charts of the HTML report as Mermaid ``xychart-beta`` blocks (GitHub draws them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_atlas._table import markdown_cell, markdown_code, markdown_table
from pytest_atlas.reporting._charts import mermaid_charts
from pytest_atlas.reporting._contracts import contract_rows
from pytest_atlas.reporting._gates import HEADERS, gate_rows, row_label
from pytest_atlas.reporting._lines import counts

if TYPE_CHECKING:
    from pytest_atlas.gates import GateResult

__all__ = ["render_markdown"]


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
    from pytest_atlas.gates import GateResult

    gate_results = [g if isinstance(g, GateResult) else GateResult.from_dict(g) for g in gates]
    out = [f"### {title}" + (f": `{markdown_code(target)}`" if target else ""), ""]
    if gate_results:
        out += [f"**gates**: {counts([r.to_dict() for r in gate_results], 'gate')}", ""]
        out += markdown_table([HEADERS, *gate_rows(gate_results)], outcome_column=6)
        reasons = [
            f"- **{markdown_cell(r.name)}**: {markdown_cell(r.summary if r.not_run else r.error or r.message)}"
            for r in gate_results
            if r.error or not r.rows
        ]
        reasons += [
            f"- **{markdown_cell(r.name)}** `{markdown_code(row_label(r, row))}`: {markdown_cell(row.reason)}"
            for r in gate_results
            for row in r.rows
            if row.outcome.value != "pass"
        ]
        if reasons:
            out += ["", *reasons]
        out.append("")
        if charts:
            out += mermaid_charts([r.to_dict() for r in gate_results])
    if contracts:
        from pytest_atlas.contracts import SUMMARY_HEADERS, summary_row

        ordered = contract_rows(contracts)
        out += [f"**contract**: {counts(ordered, 'check')}", ""]
        out += markdown_table([SUMMARY_HEADERS, *(summary_row(p.get("row", p)) for p in ordered)], outcome_column=6)
        problems = [
            f"- **{markdown_cell(str(p.get('name')))}**: {markdown_cell(str(p.get('summary', '')))}"
            for p in ordered
            if p.get("outcome") != "pass"
        ]
        if problems:
            out += ["", *problems]
        out.append("")
    return "\n".join(out) + "\n"
