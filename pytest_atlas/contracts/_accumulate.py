"""Bounded accumulation of per-row findings into groups and a census (memory does not grow with rows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_atlas.contracts._result import ColumnReport, FieldCensus, ViolationGroup
from pytest_atlas.validation import PayloadCheck, UnknownField, Violation

__all__ = ["ColumnAccumulator"]

_INDEX = re.compile(r"\[\d+\]")


def normalise_path(path: str) -> str:
    """``$.reward_audit[2].stage`` → ``$.reward_audit[*].stage``: rows group by shape, not by index."""
    return _INDEX.sub("[*]", path)


class ColumnAccumulator:
    """Collects the findings of one column, row by row, in bounded memory.

    At most ``max_groups`` distinct (path, keyword) groups per severity and ``max_census`` distinct
    unknown keys are kept; further distinct ones are only counted (``truncated``).
    """

    def __init__(self, report: ColumnReport, *, samples: int = 5, max_groups: int = 200, max_census: int = 500) -> None:
        self.report = report
        self.samples = samples
        self.max_groups = max_groups
        self.max_census = max_census
        self._groups: dict[tuple[str, str, str, str | None], ViolationGroup] = {}
        self._census: dict[tuple[str, str], FieldCensus] = {}
        self._truncated: set[tuple[str, ...]] = set()
        self._truncated_cap = 10_000

    def add_null(self) -> None:
        self.report.rows_null += 1

    def add(self, result: PayloadCheck, key: Mapping[str, Any]) -> None:
        self.report.rows_checked += 1
        if result.errors:
            self.report.rows_with_errors += 1
        if result.warnings:
            self.report.rows_with_warnings += 1
        self._add_violations(result.errors, key)
        self._add_violations(result.warnings, key)
        self._add_census(result.unknown_fields)

    def add_violations(self, violations: Iterable[Violation], key: Mapping[str, Any]) -> None:
        """A row that could not be validated at all (unparsable text): count it with its violations."""
        found = list(violations)
        self.report.rows_checked += 1
        if any(v.is_error for v in found):
            self.report.rows_with_errors += 1
        self._add_violations(found, key)

    def _add_violations(self, violations: Iterable[Violation], key: Mapping[str, Any]) -> None:
        seen: set[tuple[str, str, str, str | None]] = set()
        for violation in violations:
            group_key = (normalise_path(violation.path), violation.keyword, violation.severity, violation.quirk)
            if group_key in seen:  # one row counts once per group
                continue
            seen.add(group_key)
            group = self._groups.get(group_key)
            if group is None:
                if sum(1 for k in self._groups if k[2] == violation.severity) >= self.max_groups:
                    self._truncate(("group", *map(str, group_key)))
                    continue
                group = ViolationGroup(
                    path=group_key[0],
                    keyword=violation.keyword,
                    severity=violation.severity,
                    count=0,
                    example=violation.at(table=self.report.table, column=self.report.column, primary_key=dict(key)),
                )
                self._groups[group_key] = group
            group.count += 1
            if len(group.sample_keys) < self.samples:
                group.sample_keys.append(dict(key))

    def _add_census(self, unknown: Iterable[UnknownField]) -> None:
        per_row: dict[tuple[str, str], set[str]] = {}
        for item in unknown:
            per_row.setdefault((item.path, item.key), set()).add(item.json_type)
        for census_key, types in per_row.items():
            entry = self._census.get(census_key)
            if entry is None:
                if len(self._census) >= self.max_census:
                    self._truncate(("census", *census_key))
                    continue
                entry = FieldCensus(path=census_key[0], key=census_key[1], count=0, types={})
                self._census[census_key] = entry
            entry.count += 1
            for name in types:
                entry.types[name] = entry.types.get(name, 0) + 1

    def _truncate(self, marker: tuple[str, ...]) -> None:
        if len(self._truncated) < self._truncated_cap:
            self._truncated.add(marker)

    def finish(self) -> ColumnReport:
        report = self.report
        groups = sorted(self._groups.values(), key=lambda g: (-g.count, g.path, g.keyword))
        report.errors = [g for g in groups if g.severity == "error"]
        report.warnings = [g for g in groups if g.severity == "warning"]
        report.unknown_fields = sorted(self._census.values(), key=lambda e: (-e.count, e.path, e.key))
        report.truncated = len(self._truncated)
        return report
