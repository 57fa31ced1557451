"""Bounded accumulation of per-row findings into groups and a census (memory does not grow with rows)."""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_atlas.contracts._result import ColumnReport, FieldCensus, ViolationGroup
from pytest_atlas.validation import PayloadCheck, UnknownField, Violation

__all__ = ["KEEP_CENSUS", "KEEP_GROUPS", "ColumnAccumulator", "merge_states"]

#: how many distinct groups (per severity) and unknown keys a scan tracks: far more than a report lists,
#: so that which ones are listed does not depend on the order rows arrive in, and the id ranges of a
#: split scan merge exactly
KEEP_GROUPS = 2_000
KEEP_CENSUS = 10_000


_INDEX = re.compile(r"\[\d+\]")


def normalise_path(path: str) -> str:
    """``$.reward_audit[2].stage`` → ``$.reward_audit[*].stage``: rows group by shape, not by index."""
    return _INDEX.sub("[*]", path)


def _order(key: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(key.values())


class ColumnAccumulator:
    """Collects the findings of one column, row by row, in bounded memory, whatever order rows come in.

    Each group keeps the ``samples`` smallest primary keys of its rows and its example from the row of
    the smallest; the report lists the ``max_groups`` biggest groups per severity and the
    ``max_census`` most frequent unknown keys (ties by path). Up to ``keep_groups`` groups per
    severity and ``keep_census`` keys are tracked; further distinct ones are only counted, like those
    beyond the listing (``truncated``). So two scans of the same rows in another order (a
    synchronized sequential scan starts mid-table), and the id ranges of a split scan merged by
    :func:`merge_states`, give the same report.
    """

    def __init__(
        self,
        report: ColumnReport,
        *,
        samples: int = 5,
        max_groups: int = 200,
        max_census: int = 500,
        keep_groups: int = KEEP_GROUPS,
        keep_census: int = KEEP_CENSUS,
    ) -> None:
        self.report = report
        self.samples = samples
        self.max_groups = max_groups
        self.max_census = max_census
        self.keep_groups = max(keep_groups, max_groups)
        self.keep_census = max(keep_census, max_census)
        self._groups: dict[tuple[str, str, str, str | None], ViolationGroup] = {}
        self._per_severity: dict[str, int] = {}
        self._census: dict[tuple[str, str], FieldCensus] = {}
        self._truncated: set[tuple[str, ...]] = set()
        self._truncated_cap = 10_000
        self._dropped = 0

    def add_null(self) -> None:
        self.report.rows_null += 1

    def add_clean(self, rows: int) -> None:
        """``rows`` rows checked without an error, a warning or an unknown key."""
        self.report.rows_checked += rows

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

    def _group(self, group_key: tuple[str, str, str, str | None], example: Violation) -> ViolationGroup | None:
        group = self._groups.get(group_key)
        if group is None:
            if self._per_severity.get(group_key[2], 0) >= self.keep_groups:
                self._truncate(("group", *map(str, group_key)))
                return None
            self._per_severity[group_key[2]] = self._per_severity.get(group_key[2], 0) + 1
            group = ViolationGroup(
                path=group_key[0], keyword=group_key[1], severity=group_key[2], count=0, example=example
            )
            self._groups[group_key] = group
        return group

    def _sample(self, group: ViolationGroup, key: Mapping[str, Any], example: Violation) -> None:
        """Keep ``key`` if it is among the group's smallest; the smallest key's violation is the example."""
        order = _order(key)
        current = group.example.primary_key
        if current is not None and order < _order(current):
            group.example = example
        keys = group.sample_keys
        orders = [_order(k) for k in keys]
        if order in orders or (len(keys) >= self.samples and (not keys or order > orders[-1])):
            return
        keys.insert(bisect.bisect_right(orders, order), dict(key))
        del keys[self.samples :]

    def _add_violations(self, violations: Iterable[Violation], key: Mapping[str, Any]) -> None:
        seen: set[tuple[str, str, str, str | None]] = set()
        for violation in violations:
            group_key = (normalise_path(violation.path), violation.keyword, violation.severity, violation.quirk)
            if group_key in seen:  # one row counts once per group
                continue
            seen.add(group_key)
            example = violation.at(table=self.report.table, column=self.report.column, primary_key=dict(key))
            group = self._group(group_key, example)
            if group is None:
                continue
            group.count += 1
            self._sample(group, key, example)

    def _entry(self, census_key: tuple[str, str]) -> FieldCensus | None:
        entry = self._census.get(census_key)
        if entry is None:
            if len(self._census) >= self.keep_census:
                self._truncate(("census", *census_key))
                return None
            entry = FieldCensus(path=census_key[0], key=census_key[1], count=0, types={})
            self._census[census_key] = entry
        return entry

    def _add_census(self, unknown: Iterable[UnknownField]) -> None:
        per_row: dict[tuple[str, str], set[str]] = {}
        for item in unknown:
            per_row.setdefault((item.path, item.key), set()).add(item.json_type)
        for census_key, types in per_row.items():
            entry = self._entry(census_key)
            if entry is None:
                continue
            entry.count += 1
            for name in types:
                entry.types[name] = entry.types.get(name, 0) + 1

    def _truncate(self, marker: tuple[str, ...]) -> None:
        if len(self._truncated) < self._truncated_cap:
            self._truncated.add(marker)

    def finish(self) -> ColumnReport:
        """The report: the biggest groups and the most frequent unknown keys, the rest counted."""
        report = self.report
        truncated = set(self._truncated)  # this accumulator can still merge (and finish) later
        unlisted: list[tuple[str, ...]] = []
        listed: list[ViolationGroup] = []
        ranked = sorted(self._groups.items(), key=lambda item: (-item[1].count, *map(str, item[0])))
        per_severity: dict[str, int] = {}
        for group_key, group in ranked:
            per_severity[group.severity] = per_severity.get(group.severity, 0) + 1
            if per_severity[group.severity] <= self.max_groups:
                listed.append(group)
            else:
                unlisted.append(("group", *map(str, group_key)))
        census = sorted(self._census.values(), key=lambda e: (-e.count, e.path, e.key))
        unlisted += [("census", entry.path, entry.key) for entry in census[self.max_census :]]
        for marker in sorted(unlisted):
            if len(truncated) < self._truncated_cap:
                truncated.add(marker)
        groups = sorted(listed, key=lambda g: (-g.count, g.path, g.keyword))
        report.errors = [g for g in groups if g.severity == "error"]
        report.warnings = [g for g in groups if g.severity == "warning"]
        report.unknown_fields = census[: self.max_census]
        report.truncated = len(truncated)
        return report

    # -- merging the id ranges of a split scan -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What this accumulator tracks, JSON-ready (for :func:`merge_states`)."""
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
            example = Violation(**item["example"])
            group = self._group((path, keyword, severity, quirk), example)
            if group is None:
                continue
            group.count += int(item["count"])
            self._sample(group, example.primary_key or {}, example)  # the range's smallest key's
            for key in item["sample_keys"]:
                self._sample(group, key, example)
        for path, key, count, types in state["census"]:
            entry = self._entry((path, key))
            if entry is None:
                continue
            entry.count += int(count)
            for name, times in types.items():
                entry.types[name] = entry.types.get(name, 0) + int(times)
        self._dropped += int(state.get("dropped", 0))


def merge_states(report: ColumnReport, states: Sequence[Mapping[str, Any]], *, samples: int = 5) -> ColumnReport:
    """The report of one scan over the rows of every id range, from the ranges'
    :meth:`~ColumnAccumulator.state` (in any order): counts and census added, the smallest sample
    keys and their example kept. Exact as long as no range, and not all of them together, met more
    than :data:`KEEP_GROUPS`/:data:`KEEP_CENSUS` distinct findings; what ranges dropped is counted in
    ``truncated``."""
    accumulator = ColumnAccumulator(report, samples=samples)
    for state in states:
        accumulator._merge(state)
    accumulator.finish()
    report.truncated += accumulator._dropped
    return report
