"""Contract results as text: the ``atlas contract`` terminal section (database and scope, the summary
table, one line per distinct problem, the count line)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_atlas._table import escape, render_table
from pytest_atlas.reporting._lines import Line, color, counts, problem_lines

if TYPE_CHECKING:
    from pytest_atlas._config import AtlasSettings

__all__ = ["contract_rows", "contract_section"]


def contract_rows(payloads: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(payloads, key=lambda p: (int(p.get("order", 0)), str(p.get("name"))))


def contract_section(payloads: Sequence[Mapping[str, Any]], settings: AtlasSettings, target: str | None) -> list[Line]:
    """The ``atlas contract`` terminal section: database and scope, table, problems, the count line."""
    from pytest_atlas.contracts import SUMMARY_HEADERS, SUMMARY_NUMBERS, summary_row

    scope = []
    if settings.contract_since:
        scope.append(f"since {settings.contract_since.isoformat()}")
    if settings.contract_limit:
        scope.append(f"newest {settings.contract_limit:,} rows per table")
    lines: list[Line] = []
    if target:
        lines.append((escape(f"database: {target}") + (f" ({', '.join(scope)})" if scope else ""), None))
    ordered = contract_rows(payloads)
    table = render_table([SUMMARY_HEADERS, *(summary_row(p.get("row", p)) for p in ordered)], right=SUMMARY_NUMBERS)
    for index, line in enumerate(table.splitlines()):
        failed = index > 1 and ordered[index - 2].get("outcome") != "pass"
        lines.append((line, "red" if failed else None))
    problems: dict[str, list[str]] = {}  # one line per distinct problem (an unreachable database: one)
    for payload in ordered:
        if payload.get("outcome") == "error" and payload.get("problem"):
            problems.setdefault(str(payload.get("problem")), []).append(str(payload.get("name")))
    for problem, names in problems.items():
        which = names[0] if len(names) == 1 else f"{len(names)} checks ({names[0]}, ...)"
        lines += problem_lines(f"{which}: ERROR: ", problem)
    rows = sum(int(p.get("row", {}).get("rows", 0)) for p in ordered)
    errors = sum(int(p.get("row", {}).get("errors", 0)) for p in ordered)
    warnings = sum(int(p.get("row", {}).get("warnings", 0)) for p in ordered)
    lines.append(
        (
            f"contract: {counts(ordered, 'check')}; {errors:,} error(s) and {warnings:,} warning(s) in {rows:,} rows",
            color(ordered),
        )
    )
    # the checks that ran (not those -k, --lf or a stop left out), and the items they ran as
    ran = [p for p in ordered if p.get("outcome") not in ("deselected", "not-run")]
    split = [p for p in ran if p.get("parts")]
    if split:
        items = sum(len(p.get("parts") or ()) or 1 for p in ran)
        split_names = ", ".join(str(p.get("name")) for p in split)
        lines.append(
            (
                f"({len(ran)} check{'' if len(ran) == 1 else 's'} ran as {items} item{'' if items == 1 else 's'}: "
                f"{split_names} in id ranges, each merged into one check; see --atlas-contract-split-rows)",
                None,
            )
        )
    return lines
