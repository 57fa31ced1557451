"""Bounded accumulation of per-row findings into groups and a census (memory does not grow with rows)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_atlas.contracts._result import ColumnReport, FieldCensus, ViolationGroup
from pytest_atlas.validation import PayloadCheck, UnknownField, Violation

__all__ = ["KEEP_CENSUS", "KEEP_GROUPS", "ColumnAccumulator", "merge_states"]

#: what one id range of a split scan keeps (far above what a report lists), so that the ranges'
#: findings merge into exactly the report of one scan
KEEP_GROUPS = 2_000
KEEP_CENSUS = 10_000

_INDEX = re.compile(r"\[\d+\]")


def normalise_path(path: str) -> str:
    """``$.reward_audit[2].stage`` → ``$.reward_audit[*].stage``: rows group by shape, not by index."""
    return _INDEX.sub("[*]", path)


class ColumnAccumulator:
    """Collects the findings of one column, row by row, in bounded memory.

    At most ``max_groups`` distinct (path, keyword) groups per severity and ``max_census`` distinct
    unknown keys are listed, the first seen; further distinct ones are only counted (``truncated``).
    ``keep_groups`` and ``keep_census`` (at least those) are how many are tracked: one id range of a
    split scan tracks more than it lists, so that :func:`merge_states` can merge the ranges exactly.
    """

    def __init__(
        self,
        report: ColumnReport,
        *,
        samples: int = 5,
        max_groups: int = 200,
        max_census: int = 500,
        keep_groups: int | None = None,
        keep_census: int | None = None,
    ) -> None:
        self.report = report
        self.samples = samples
        self.max_groups = max_groups
        self.max_census = max_census
        self.keep_groups = max(keep_groups or max_groups, max_groups)
        self.keep_census = max(keep_census or max_census, max_census)
        self._groups: dict[tuple[str, str, str, str | None], ViolationGroup] = {}
        self._census: dict[tuple[str, str], FieldCensus] = {}
        self._truncated: set[tuple[str, ...]] = set()
        self._truncated_cap = 10_000
        self._dropped = 0

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
                if sum(1 for k in self._groups if k[2] == violation.severity) >= self.keep_groups:
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
                if len(self._census) >= self.keep_census:
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
        truncated = set(self._truncated)  # this accumulator can still merge (and finish) later
        listed: list[ViolationGroup] = []
        per_severity: dict[str, int] = {}
        unlisted: list[tuple[str, ...]] = []
        for group_key, group in self._groups.items():  # the first seen, as in a scan that keeps no more
            per_severity[group.severity] = per_severity.get(group.severity, 0) + 1
            if per_severity[group.severity] <= self.max_groups:
                listed.append(group)
            else:
                unlisted.append(("group", *map(str, group_key)))
        census = list(self._census.values())
        unlisted += [("census", entry.path, entry.key) for entry in census[self.max_census :]]
        for marker in unlisted:
            if len(truncated) < self._truncated_cap:
                truncated.add(marker)
        groups = sorted(listed, key=lambda g: (-g.count, g.path, g.keyword))
        report.errors = [g for g in groups if g.severity == "error"]
        report.warnings = [g for g in groups if g.severity == "warning"]
        report.unknown_fields = sorted(census[: self.max_census], key=lambda e: (-e.count, e.path, e.key))
        report.truncated = len(truncated)
        return report

    # -- merging the id ranges of a split scan -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What this accumulator found, JSON-ready, in the order it was seen (for :func:`merge_states`)."""
        report = self.report
        return {
            "rows_checked": report.rows_checked,
            "rows_null": report.rows_null,
            "rows_with_errors": report.rows_with_errors,
            "rows_with_warnings": report.rows_with_warnings,
            "problem": report.problem,
            "groups": [
                {
                    "key": list(key),
                    "count": group.count,
                    "example": dataclasses.asdict(group.example),
                    "sample_keys": group.sample_keys,
                }
                for key, group in self._groups.items()
            ],
            "census": [[entry.path, entry.key, entry.count, entry.types] for entry in self._census.values()],
            "dropped": len(self._truncated),
        }

    def _merge(self, state: Mapping[str, Any]) -> None:
        report = self.report
        for name in ("rows_checked", "rows_null", "rows_with_errors", "rows_with_warnings"):
            setattr(report, name, getattr(report, name) + int(state[name]))
        if report.problem is None and state.get("problem"):
            report.problem = str(state["problem"])
        for item in state["groups"]:
            path, keyword, severity, quirk = item["key"]
            group_key = (path, keyword, severity, quirk)
            group = self._groups.get(group_key)
            if group is None:
                if sum(1 for k in self._groups if k[2] == severity) >= self.keep_groups:
                    self._truncate(("group", *map(str, group_key)))
                    continue
                group = ViolationGroup(
                    path=path, keyword=keyword, severity=severity, count=0, example=Violation(**item["example"])
                )
                self._groups[group_key] = group
            group.count += int(item["count"])
            room = self.samples - len(group.sample_keys)
            if room > 0:
                group.sample_keys.extend(dict(key) for key in item["sample_keys"][:room])
        for path, key, count, types in state["census"]:
            entry = self._census.get((path, key))
            if entry is None:
                if len(self._census) >= self.keep_census:
                    self._truncate(("census", path, key))
                    continue
                entry = FieldCensus(path=path, key=key, count=0, types={})
                self._census[(path, key)] = entry
            entry.count += int(count)
            for name, times in types.items():
                entry.types[name] = entry.types.get(name, 0) + int(times)
        self._dropped += int(state.get("dropped", 0))


def merge_states(report: ColumnReport, states: Sequence[Mapping[str, Any]], *, samples: int = 5) -> ColumnReport:
    """The report of one scan over the rows of every id range, from the ranges' :meth:`~ColumnAccumulator.state`
    in range order: counts and census added, the first few sample keys and the first example kept, the
    listing caps applied to the findings in the order one scan would have seen them. Exact as long as no
    range dropped findings beyond :data:`KEEP_GROUPS`/:data:`KEEP_CENSUS`; what ranges dropped is
    counted in ``truncated``."""
    accumulator = ColumnAccumulator(report, samples=samples)
    for state in states:
        accumulator._merge(state)
    accumulator.finish()
    report.truncated += accumulator._dropped
    return report
