"""The result of a contract check: grouped violations, the unknown-fields census, and their renderings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from pytest_atlas._table import escape, escape_lines, render_table
from pytest_atlas.validation import Violation

__all__ = [
    "NO_DOCUMENTS",
    "NO_ROWS",
    "SUMMARY_HEADERS",
    "SUMMARY_NUMBERS",
    "ColumnReport",
    "ContractReport",
    "FieldCensus",
    "RelationReport",
    "ViolationGroup",
    "summary_row",
]

Key = Mapping[str, Any]

#: what a relational check says when none of the run's relational checks read a single row
NO_ROWS = (
    "no row was checked anywhere in this run: a check of nothing proves nothing (is --atlas-contract-since "
    "after the newest row, or is this the database Atlas writes to?)"
)
#: what a JSON column's check says when none of the run's JSON columns held a document (rows the
#: relational checks read are no evidence for the JSON schemas)
NO_DOCUMENTS = (
    "no JSON document was checked anywhere in this run: a check of nothing proves nothing (is "
    "--atlas-contract-since after the newest row, or is this the database Atlas writes to?)"
)


def _key_text(key: Key) -> str:
    return ",".join(f"{name}={value}" for name, value in key.items())


@dataclass
class ViolationGroup:
    """All rows that break the schema the same way: same column, JSON path (indices as ``[*]``) and keyword.

    ``sample_keys`` are the smallest primary keys of its rows (at most ``samples``), ``example`` the
    violation of the row with the smallest key (its message and value come from that row): the same
    whatever order the rows were read in.
    """

    path: str
    keyword: str
    severity: str
    count: int
    example: Violation
    sample_keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def quirk(self) -> str | None:
        return self.example.quirk

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "keyword": self.keyword,
            "severity": self.severity,
            "count": self.count,
            "quirk": self.quirk,
            "message": self.example.message,
            "value": self.example.value,
            "sample_keys": self.sample_keys,
        }


@dataclass
class FieldCensus:
    """A key the schema does not describe: where, in how many rows, with which JSON types."""

    path: str
    key: str
    count: int
    types: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ColumnReport:
    """The check of one table's JSON column."""

    table: str
    column: str
    schema: str
    rows_checked: int = 0
    rows_null: int = 0
    rows_with_errors: int = 0
    rows_with_warnings: int = 0
    errors: list[ViolationGroup] = field(default_factory=list)
    warnings: list[ViolationGroup] = field(default_factory=list)
    unknown_fields: list[FieldCensus] = field(default_factory=list)
    #: set when the column could not be checked at all (missing table, wrong column type, failed query)
    problem: str | None = None
    #: the problem may pass (the server cut the connection mid-read): reading again may succeed
    transient: bool = field(default=False, compare=False)
    #: groups or census entries dropped to bound memory (distinct paths beyond the cap)
    truncated: int = 0
    #: set when no check of the whole run read a row: the column then fails (no verdict without evidence)
    empty_run: bool = False
    #: set when this report covers one id range of a split scan: ``{"range": ..., "state": ...}``, the
    #: range and its findings in the order they were seen (JSON-ready), which
    #: :func:`~pytest_atlas.contracts.merge_parts` merges into the report of the whole column
    part: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def error_count(self) -> int:
        return sum(group.count for group in self.errors) + (1 if self.problem else 0)

    @property
    def warning_count(self) -> int:
        return sum(group.count for group in self.warnings)

    @property
    def outcome(self) -> str:
        """``error`` (could not check), ``fail`` (violations, or no row in the whole run) or ``pass``."""
        if self.problem:
            return "error"
        return "fail" if self.errors or self.empty_run else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "schema": self.schema,
            "outcome": self.outcome,
            "problem": self.problem,
            "rows_checked": self.rows_checked,
            "rows_null": self.rows_null,
            "rows_with_errors": self.rows_with_errors,
            "rows_with_warnings": self.rows_with_warnings,
            "errors": [group.to_dict() for group in self.errors],
            "warnings": [group.to_dict() for group in self.warnings],
            "unknown_fields": [entry.to_dict() for entry in self.unknown_fields],
            "truncated": self.truncated,
            "empty_run": self.empty_run,
        }

    def summary(self) -> dict[str, Any]:
        """This column's row of the summary table, JSON-ready."""
        return {
            "name": self.name,
            "schema": self.schema,
            "rows": self.rows_checked,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "unknown": len(self.unknown_fields),
            "outcome": self.outcome,
            "problem": self.problem,
        }

    def render(self) -> str:
        """This column's part of the report (what a failing ``--atlas-contract`` item shows)."""
        lines = [
            f"{self.name} against {self.schema}: {self.rows_checked:,} rows checked"
            f" ({self.rows_null:,} NULL skipped), {self.rows_with_errors:,} with errors,"
            f" {self.rows_with_warnings:,} with warnings"
        ]
        if self.problem:
            lines.append(f"  could not check: {self.problem}")
        if self.empty_run:
            lines.append(f"  {NO_DOCUMENTS}")
        lines += _group_lines("errors", self.errors)
        lines += _group_lines("warnings", self.warnings)
        if self.unknown_fields:
            lines.append("  unknown fields (keys the schema does not describe):")
            for entry in self.unknown_fields:
                share = f" ({entry.count / self.rows_checked:.0%} of rows)" if self.rows_checked else ""
                types = ", ".join(
                    f"{name}×{count}" if len(entry.types) > 1 else name for name, count in entry.types.items()
                )
                lines.append(f"    {_join(entry.path, entry.key)}  {types}  {_plural(entry.count, 'row')}{share}")
        if self.truncated:
            lines.append(f"  ({self.truncated:,} further distinct paths were counted but not listed)")
        return escape_lines("\n".join(lines))


#: the columns of the contract summary table (check_database's report and --atlas-contract's section)
SUMMARY_HEADERS = ("check", "schema", "rows", "errors", "warnings", "unknown keys", "result")
#: the summary columns that hold numbers (right-aligned)
SUMMARY_NUMBERS = frozenset({2, 3, 4, 5})


def summary_row(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """One row of the summary table from a part's :meth:`~ColumnReport.summary` (also as JSON)."""
    outcome = str(summary.get("outcome", "error"))
    unknown = summary.get("unknown")
    return (
        str(summary.get("name", "")),
        str(summary.get("schema", "")),
        f"{int(summary.get('rows', 0)):,}",
        f"{int(summary.get('errors', 0)):,}",
        f"{int(summary.get('warnings', 0)):,}",
        "" if unknown is None else f"{int(unknown):,}",
        "ok" if outcome == "pass" else outcome.upper(),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _group_lines(title: str, groups: Sequence[ViolationGroup]) -> list[str]:
    if not groups:
        return []
    lines = [f"  {title}:"]
    for group in groups:
        keyword = f"{group.keyword}({group.quirk})" if group.quirk else group.keyword
        samples = "; ".join(_key_text(key) for key in group.sample_keys)
        lines.append(
            f"    {group.path}  {keyword}  {group.count:,} row{'' if group.count == 1 else 's'}"
            f"{'  e.g. ' + samples if samples else ''}"
        )
        lines.append(f"        {group.example.message}")
    return lines


@dataclass
class RelationReport:
    """A relational check (values of status columns, timestamps, step ids against the plan)."""

    table: str
    check: str
    description: str
    severity: str = "error"
    rows_checked: int = 0
    count: int = 0
    sample_keys: list[dict[str, Any]] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    problem: str | None = None
    #: the problem may pass (the server cut the connection mid-read): reading again may succeed
    transient: bool = field(default=False, compare=False)
    #: set when no check of the whole run read a row: the check then fails
    empty_run: bool = False

    @property
    def name(self) -> str:
        return f"{self.table}[{self.check}]"

    @property
    def outcome(self) -> str:
        if self.problem:
            return "error"
        return "fail" if (self.count and self.severity == "error") or self.empty_run else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome}

    def summary(self) -> dict[str, Any]:
        """This check's row of the summary table, JSON-ready."""
        errors = self.count if self.severity == "error" else 0
        return {
            "name": self.name,
            "schema": "(relational)",
            "rows": self.rows_checked,
            "errors": errors + (1 if self.problem else 0),
            "warnings": self.count - errors,
            "unknown": None,
            "outcome": self.outcome,
            "problem": self.problem,
        }

    def render(self) -> str:
        return escape_lines(self._render())

    def _render(self) -> str:
        head = f"{self.name}: {self.description}"
        if self.problem:
            return f"{head}\n  could not check: {self.problem}"
        if self.empty_run:
            return f"{head}\n  {NO_ROWS}"
        if not self.count:
            return f"{head}: ok ({self.rows_checked:,} rows)"
        tag = "" if self.severity == "error" else "warning: "
        samples = "; ".join(_key_text(key) for key in self.sample_keys)
        lines = [f"{head}\n  {tag}{self.count:,} row{'' if self.count == 1 else 's'}  e.g. {samples}"]
        lines += [f"    {example}" for example in self.examples]
        return "\n".join(lines)


@dataclass
class ContractReport:
    """Everything :func:`~pytest_atlas.check_database` found. ``str(report)`` is the readable table;
    :meth:`to_json` the machine-readable form. ``report.ok`` is False on any error."""

    database: str
    since: date | None = None
    limit: int | None = None
    columns: list[ColumnReport] = field(default_factory=list)
    relations: list[RelationReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed; False on any error, and when no check read a row."""
        return all(item.outcome == "pass" for item in self.items())

    @property
    def rows_checked(self) -> int:
        """Rows read by all checks together (relational checks count the rows they looked at)."""
        return sum(item.rows_checked for item in self.items())

    @property
    def empty(self) -> bool:
        """True when checks had no evidence: no JSON column held a document, or no check read a row
        (those checks cannot pass)."""
        return any(item.empty_run for item in self.items())

    def mark_empty(self) -> None:
        """Mark the checks that had no evidence, where none of them has a problem: the JSON columns
        when none held a document (rows the relational checks read say nothing of the JSON), every
        check when no check read anything (the relational checks look at the rows of a few tables:
        a database of discovery runs alone has none for them, and that is fine)."""
        everything: list[ColumnReport | RelationReport] = [*self.columns, *self.relations]
        for items in (list(self.columns), everything):
            if items and not any(item.problem for item in items) and not any(item.rows_checked for item in items):
                for item in items:
                    item.empty_run = True

    @property
    def error_count(self) -> int:
        return sum(c.error_count for c in self.columns) + sum(
            (r.count if r.severity == "error" else 0) + (1 if r.problem else 0) for r in self.relations
        )

    @property
    def warning_count(self) -> int:
        return sum(c.warning_count for c in self.columns) + sum(
            r.count for r in self.relations if r.severity == "warning"
        )

    def items(self) -> Iterator[ColumnReport | RelationReport]:
        yield from self.columns
        yield from self.relations

    def column(self, name: str) -> ColumnReport:
        """The report of ``table.column``."""
        for report in self.columns:
            if report.name == name:
                return report
        raise KeyError(f"{name!r} was not checked; checked: {', '.join(c.name for c in self.columns)}")

    def violations(self) -> Iterator[Violation]:
        """The example violation of every group (errors, then warnings), located in its row."""
        for report in self.columns:
            for group in (*report.errors, *report.warnings):
                yield group.example

    def census(self) -> Counter[str]:
        """``table.column:$.path.key`` → rows, over every column."""
        counts: Counter[str] = Counter()
        for report in self.columns:
            for entry in report.unknown_fields:
                counts[f"{report.name}:{_join(entry.path, entry.key)}"] += entry.count
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "pytest-atlas-contract",
            "version": 1,
            "database": self.database,
            "since": self.since.isoformat() if self.since else None,
            "limit": self.limit,
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "empty": self.empty,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "columns": [c.to_dict() for c in self.columns],
            "relations": [r.to_dict() for r in self.relations],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)

    def render(self, *, details: bool = True) -> str:
        scope = []
        if self.since:
            scope.append(f"since {self.since.isoformat()}")
        if self.limit:
            scope.append(f"newest {self.limit:,} rows per table")
        head = f"Atlas contract check of {self.database}" + (f" ({', '.join(scope)})" if scope else "")
        rows = [SUMMARY_HEADERS, *(summary_row(item.summary()) for item in self.items())]
        lines = [escape(head), "", render_table(rows, right=SUMMARY_NUMBERS)]
        verdict = "OK" if self.ok else "FAILED"
        lines += ["", f"{verdict}: {_plural(self.error_count, 'error')}, {_plural(self.warning_count, 'warning')}"]
        for kind, nothing in ((self.columns, NO_DOCUMENTS), (self.relations, NO_ROWS)):
            if any(item.empty_run for item in kind):
                lines.append(nothing.replace("--atlas-contract-since", "since"))
        if details:
            for c in self.columns:
                if c.problem or c.errors or c.warnings or c.unknown_fields:
                    lines += ["", c.render()]
            for r in self.relations:
                if r.problem or r.count:
                    lines += ["", r.render()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()
