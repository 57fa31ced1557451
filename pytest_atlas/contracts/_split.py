"""Splitting a big table's scan into id ranges, and merging the ranges' reports into one.

A column whose table holds more than ``rows_per_part`` rows (in the scope of ``since``) is scanned
as ``ceil(rows / rows_per_part)`` ranges, rounded up to a power of two (at most :data:`MAX_PARTS`),
of its table's integer key, cut evenly between the smallest and the largest key. The first range
has no lower bound and the last none above, so every row belongs to exactly one range, including
rows written after the plan was made. Each range is scanned on its own (by its own pytest item,
perhaps in another process); :func:`merge_parts` turns the ranges' reports back into the report one
scan of the whole column gives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pytest_atlas._arguments import check_positive_int
from pytest_atlas._dsn import Dsn, hide_password
from pytest_atlas.contracts._accumulate import merge_states
from pytest_atlas.contracts._check import _column_type, _read_only, _since_condition
from pytest_atlas.contracts._result import ColumnReport
from pytest_atlas.contracts._targets import TABLES, Column

__all__ = ["MAX_PARTS", "IdRange", "merge_parts", "plan_ranges"]

#: at most this many ranges per column, however big the table
MAX_PARTS = 64
_INTEGER_TYPES = ("smallint", "integer", "bigint")


@dataclass(frozen=True)
class IdRange:
    """Range ``index`` of ``count`` (from 1): rows whose ``key`` is ``>= low`` and ``< high`` (None: unbounded)."""

    key: str
    low: int | None
    high: int | None
    index: int
    count: int

    @property
    def label(self) -> str:
        """``ids 1 to 249,999``: the range as the report shows it."""
        low = "" if self.low is None else f"{self.low:,}"
        high = "" if self.high is None else f"{self.high - 1:,}"
        if self.low is None and self.high is None:
            return f"every {self.key}"
        if self.low is None:
            return f"{self.key} up to {high}"
        if self.high is None:
            return f"{self.key} from {low}"
        return f"{self.key} {low} to {high}"

    def conditions(self) -> tuple[list[sql.Composable], list[Any]]:
        """The SQL conditions (and their parameters) that select this range's rows."""
        out: list[sql.Composable] = []
        params: list[Any] = []
        if self.low is not None:
            out.append(sql.SQL("{} >= %s").format(sql.Identifier(self.key)))
            params.append(self.low)
        if self.high is not None:
            out.append(sql.SQL("{} < %s").format(sql.Identifier(self.key)))
            params.append(self.high)
        return out, params

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "low": self.low, "high": self.high, "index": self.index, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdRange:
        low, high = data.get("low"), data.get("high")
        return cls(
            key=str(data["key"]),
            low=None if low is None else int(low),
            high=None if high is None else int(high),
            index=int(data["index"]),
            count=int(data["count"]),
        )


def cut(key: str, low: int, high: int, parts: int) -> list[IdRange]:
    """``parts`` ranges of even width over the keys ``low`` to ``high`` (inclusive), open at both ends."""
    parts = max(1, min(parts, high - low + 1))
    bounds = [low + (high - low + 1) * index // parts for index in range(1, parts)]
    edges: list[int | None] = [None, *bounds, None]
    return [IdRange(key, edges[i], edges[i + 1], i + 1, parts) for i in range(parts)]


def plan_ranges(
    conninfo_or_connection: str | Dsn | psycopg.Connection[Any],
    columns: Iterable[Column],
    since: date | None,
    rows_per_part: int,
) -> dict[str, list[IdRange]]:
    """``{table: ranges}`` for every table of ``columns`` with more than ``rows_per_part`` rows in scope
    and an integer key, read in a READ ONLY transaction (a table that cannot be measured is not
    split: its items report the problem). Raises :class:`~pytest_atlas.errors.AtlasError` only when
    the database cannot be reached."""
    conninfo_or_connection = hide_password(conninfo_or_connection)  # frames show it redacted
    check_positive_int("rows_per_part", rows_per_part, example=100_000)
    with _read_only(conninfo_or_connection) as (conn, _):
        return _plan(conn, columns, since, rows_per_part)


def _plan(
    conn: psycopg.Connection[Any], columns: Iterable[Column], since: date | None, rows_per_part: int
) -> dict[str, list[IdRange]]:
    plan: dict[str, list[IdRange]] = {}
    for name in dict.fromkeys(column.table.name for column in columns):
        table = TABLES[name]
        key = table.key[0]
        try:
            with conn.transaction():
                if _column_type(conn, name, key)[1] not in _INTEGER_TYPES:
                    continue
                conditions, params = _since_condition(table, since)
                where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
                row = (
                    conn.cursor(row_factory=tuple_row)
                    .execute(
                        sql.SQL("SELECT count(*), min({key}), max({key}) FROM {table} WHERE {where}").format(
                            key=sql.Identifier(key), table=sql.Identifier(name), where=where
                        ),
                        params,
                    )
                    .fetchone()
                )
        except psycopg.Error:
            continue  # its items report the problem when they run
        if row is None or row[1] is None or int(row[0]) < rows_per_part:
            continue
        # a power of two, so that 2, 4 or 8 pytest-xdist workers get equal shares
        parts = min(MAX_PARTS, 1 << max(0, math.ceil(int(row[0]) / rows_per_part) - 1).bit_length())
        if parts > 1:
            plan[name] = cut(key, int(row[1]), int(row[2]), parts)
    return plan


def merge_parts(parts: Sequence[ColumnReport], *, samples: int = 5) -> ColumnReport:
    """One column's report from the reports of its id ranges (each made with ``id_range``, in any
    order): what one scan of all their rows reports."""
    if not parts:
        raise ValueError("merge_parts needs the report of at least one id range")
    ordered = sorted(parts, key=lambda part: int((part.part or {}).get("range", {}).get("index", 0)))
    first = ordered[0]
    merged = ColumnReport(table=first.table, column=first.column, schema=first.schema)
    states = [part.part["state"] for part in ordered if part.part is not None]
    if len(states) != len(ordered):
        raise ValueError("merge_parts needs reports made by an id range scan (their .part is set)")
    merge_states(merged, states, samples=samples)
    merged.empty_run = merged.rows_checked == 0 and any(part.empty_run for part in ordered)
    return merged
