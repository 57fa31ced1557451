"""The fields gate: which JSON paths a window of sessions carries, compared with a baseline.

Three parts, each usable alone:

* :func:`field_census` -- a pure function over ``(session id, document)`` rows (newest first):
  for every collapsed JSON path (see :class:`~pytest_atlas.validation.PathWalker`), how many rows
  carry it, the JSON types found there, and a few session ids to look at;
* :func:`field_rows` -- a pure comparison of two censuses: one row per gated path, failing on a
  presence drop beyond noise, a type change, or (opt-in) a new path;
* :func:`fetch_census` -- the census of a selection, read from the database (read-only).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pytest_atlas import stats
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._result import KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import filters, read_only

if TYPE_CHECKING:
    from pytest_atlas.stats import ShareComparison

__all__ = [
    "SESSION_TABLES",
    "FieldOptions",
    "PathCensus",
    "PathStats",
    "checked_column",
    "fetch_census",
    "field_census",
    "field_columns",
    "field_rows",
]

#: the tables whose rows belong to a session: their JSON columns are what a fields gate can read
SESSION_TABLES = ("sessions", "plans", "step_results", "step_attempts", "trajectory_events")


def field_columns() -> dict[str, str]:
    """``table.column`` -> schema name of every JSON column a fields gate reads: the contract
    catalogue's columns of :data:`SESSION_TABLES` (read on first use)."""
    from pytest_atlas.domain import ATLAS_COLUMNS

    return {name: schema for name, schema in ATLAS_COLUMNS.items() if name.partition(".")[0] in SESSION_TABLES}


def checked_column(column: object) -> str:
    """``column`` when a fields gate can read it, else InvalidArgument listing the columns."""
    columns = field_columns()
    if not isinstance(column, str) or column not in columns:
        raise InvalidArgument(f"unknown JSON column {column!r}", hint="columns: " + ", ".join(columns))
    return column


#: session ids kept per path (and per type) for the "worst sessions" column
SAMPLES = 5
#: the statistic of a fields-gate row
PRESENCE = "presence"


@dataclass
class PathStats:
    """One path of a census: ``count`` rows carry it, ``types`` rows per JSON type; ``absent`` and
    ``by_type`` hold the newest few session ids without it and with each type."""

    count: int = 0
    types: dict[str, int] = field(default_factory=dict)
    absent: list[int] = field(default_factory=list)
    by_type: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "types": dict(sorted(self.types.items())),
            "absent": list(self.absent),
            "by_type": {name: list(ids) for name, ids in sorted(self.by_type.items())},
        }


@dataclass
class PathCensus:
    """The field census of one window: ``n`` rows, and per collapsed path its :class:`PathStats`.
    ``volatile`` names the paths the schema marks volatile (``x-atlas-volatile``)."""

    column: str
    n: int = 0
    paths: dict[str, PathStats] = field(default_factory=dict)
    volatile: set[str] = field(default_factory=set)
    #: the newest few session ids of the window (the ones to look at for a path no row carries)
    newest: list[int] = field(default_factory=list)
    #: the session id of every row, when the census was read with ``with_ids`` (never stored): how
    #: a fields gate finds sessions its baseline shares with it
    sessions: array[int] | None = field(default=None, repr=False, compare=False)

    def share(self, path: str) -> float:
        stats = self.paths.get(path)
        return (stats.count if stats else 0) / self.n if self.n else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "n": self.n,
            "paths": {path: stats.to_json() for path, stats in sorted(self.paths.items())},
            "volatile": sorted(self.volatile),
            "newest": list(self.newest),
        }

    @classmethod
    def from_json(cls, data: Any) -> PathCensus:
        """A census from :meth:`to_json` output, every field checked (InvalidArgument names the first
        problem): counts are integers within ``n``, type counts add up to at least one per row that
        carries the path and at most one per type, ids are integers."""
        if not isinstance(data, Mapping) or set(data) != {"column", "n", "paths", "volatile", "newest"}:
            raise InvalidArgument(
                "a field census is an object with exactly column, n, paths, volatile and newest",
                hint="save the baseline again with --atlas-save-baseline",
            )
        column, n, paths, volatile = data["column"], data["n"], data["paths"], data["volatile"]
        checked_column(column)
        n = _count("n", n, 2**53)
        if not isinstance(paths, Mapping) or not isinstance(volatile, list):
            raise InvalidArgument("paths must be an object and volatile a list", hint="save the baseline again")
        census = cls(column, n, volatile={str(v) for v in volatile if isinstance(v, str)})
        census.newest = _ids("newest", data["newest"])
        if len(census.newest) != min(n, SAMPLES):
            raise InvalidArgument(
                f"newest lists {len(census.newest)} session(s), a window of {n} has {min(n, SAMPLES)}",
                hint="save the baseline again",
            )
        if len(census.volatile) != len(volatile):
            raise InvalidArgument("volatile must list path strings", hint="save the baseline again")
        for path, entry in paths.items():
            census.paths[str(path)] = _path_stats(str(path), entry, n)
        return census


def _count(name: str, value: Any, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise InvalidArgument(
            f"{name} must be an integer from 0 to {high}, got {value!r}", hint="save the baseline again"
        )
    return value


def _ids(name: str, value: Any) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) > SAMPLES
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise InvalidArgument(f"{name} must list at most {SAMPLES} session ids", hint="save the baseline again")
    return list(value)


def _path_stats(path: str, entry: Any, n: int) -> PathStats:
    if not isinstance(entry, Mapping) or set(entry) != {"count", "types", "absent", "by_type"}:
        raise InvalidArgument(f"path {path}: expected count, types, absent and by_type", hint="save the baseline again")
    count = _count(f"path {path}: count", entry["count"], n)
    if count == 0:
        raise InvalidArgument(
            f"path {path}: a census lists only paths some row carries", hint="save the baseline again"
        )
    types, by_type = entry["types"], entry["by_type"]
    if not isinstance(types, Mapping) or not types or not isinstance(by_type, Mapping):
        raise InvalidArgument(f"path {path}: types must be a non-empty object", hint="save the baseline again")
    checked = {str(name): _count(f"path {path}: types.{name}", value, count) for name, value in types.items()}
    if sum(checked.values()) < count or any(value == 0 for value in checked.values()):
        raise InvalidArgument(
            f"path {path}: type counts ({sum(checked.values())}) do not cover its {count} row(s)",
            hint="save the baseline again",
        )
    if set(by_type) - set(checked):
        raise InvalidArgument(f"path {path}: by_type names a type it does not count", hint="save the baseline again")
    return PathStats(
        count,
        checked,
        _ids(f"path {path}: absent", entry["absent"]),
        {str(name): _ids(f"path {path}: by_type.{name}", ids) for name, ids in by_type.items()},
    )


# ------------------------------------------------------------------------------------------------
# the census (pure)
# ------------------------------------------------------------------------------------------------


def field_census(rows: Iterable[tuple[int, Any]], column: str = "sessions.metadata") -> PathCensus:
    """The census of ``rows`` (session id, JSON document), **newest first**.

    A row whose document is null carries no path. Per path: the rows that carry it, per JSON type
    the rows that hold it (``number`` covers integers), the newest :data:`SAMPLES` session ids
    without the path and with each type. Memory grows with the number of distinct paths, not rows.
    """
    checked_column(column)
    from pytest_atlas.validation import PathWalker  # the schemas load on first use

    walker = PathWalker(field_columns()[column])
    census = PathCensus(column)
    newest = census.newest
    unfilled: set[str] = set()  # paths whose sample of absent sessions is not full yet
    for session_id, document in rows:
        found = walker.paths(document)
        census.volatile |= found.volatile
        for path, types in found.types.items():
            stats = census.paths.get(path)
            if stats is None:  # every earlier row lacked it: the newest of them are its absent sample
                stats = census.paths[path] = PathStats(absent=newest[:SAMPLES])
                if len(stats.absent) < SAMPLES:
                    unfilled.add(path)
            stats.count += 1
            for name in types:
                stats.types[name] = stats.types.get(name, 0) + 1
                sample = stats.by_type.setdefault(name, [])
                if len(sample) < SAMPLES:
                    sample.append(session_id)
        for path in unfilled - found.types.keys():
            absent = census.paths[path].absent
            absent.append(session_id)
            if len(absent) >= SAMPLES:
                unfilled.discard(path)
        if len(newest) < SAMPLES:
            newest.append(session_id)
        census.n += 1
    return census


# ------------------------------------------------------------------------------------------------
# the comparison (pure)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldOptions:
    """How strictly a fields gate compares (see :class:`~pytest_atlas.gates.GateSpec`)."""

    min_presence: float = 0.5
    max_presence_drop: float = 0.05
    min_effect: float | None = 0.25
    alpha: float = 0.05
    power: float = 0.8
    new_paths: bool = False
    exclude: tuple[str, ...] = ()
    exclude_volatile: bool = True


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def _types(stats: PathStats | None) -> str:
    if stats is None or not stats.types:
        return "-"
    return "/".join(sorted(stats.types))


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.0%}" if value in (0.0, 1.0) else f"{value:.1%}"


def field_rows(candidate: PathCensus, baseline: PathCensus, options: FieldOptions) -> list[KeyResult]:
    """One row per path the comparison covers, with Holm's correction across all its tests.

    Covered: every baseline path (after ``exclude`` and, with ``exclude_volatile``, the paths the
    schema marks volatile). A path present in at least ``min_presence`` of the baseline gets the
    presence test; every baseline path the candidate carries gets the type test (did the share of
    its rows holding only the baseline's JSON types drop beyond noise?); with ``new_paths`` every
    candidate path the baseline never had is a failing row.
    """

    def gated(path: str) -> bool:
        if any(_under(path, prefix) for prefix in options.exclude):
            return False
        return not (options.exclude_volatile and (path in baseline.volatile or path in candidate.volatile))

    def share_test(
        base_hits: int, base_n: int, cand_hits: int, cand_n: int, min_effect: float | None
    ) -> ShareComparison:
        return stats.compare_shares(
            base_hits,
            base_n,
            cand_hits,
            cand_n,
            tolerance=options.max_presence_drop,
            min_effect=min_effect,
            alpha=options.alpha,
            power=options.power,
        )

    paths = [path for path in sorted(baseline.paths) if gated(path)]
    presence: dict[str, ShareComparison] = {}
    types: dict[str, ShareComparison] = {}
    for path in paths:
        base = baseline.paths[path]
        cand = candidate.paths.get(path)
        if baseline.share(path) >= options.min_presence:
            presence[path] = share_test(
                base.count, baseline.n, cand.count if cand else 0, candidate.n, options.min_effect
            )
        if cand is not None and set(cand.types) - set(base.types):
            held = sum(count for name, count in cand.types.items() if name not in base.types)
            types[path] = share_test(base.count, base.count, max(cand.count - held, 0), cand.count, None)
    family = [*presence.items(), *types.items()]
    adjusted = stats.holm([result.p_value for _, result in family])
    decided = {
        (path, index < len(presence)): result.with_p_adjusted(p)
        for index, ((path, result), p) in enumerate(zip(family, adjusted, strict=True))
    }
    rows = [
        _row(path, decided.get((path, True)), decided.get((path, False)), candidate, baseline, options)
        for path in paths
        if path in presence or path in candidate.paths
    ]
    if options.new_paths:
        rows += [
            _new_row(path, candidate) for path in sorted(candidate.paths) if path not in baseline.paths and gated(path)
        ]
    return sorted(rows, key=lambda row: row.learning_key)


def _row(
    path: str,
    presence: ShareComparison | None,
    types: ShareComparison | None,
    candidate: PathCensus,
    baseline: PathCensus,
    options: FieldOptions,
) -> KeyResult:
    from pytest_atlas._outcome import Outcome

    base, cand = baseline.paths[path], candidate.paths.get(path)
    shares = f"{_pct(baseline.share(path))} -> {_pct(candidate.share(path))}"
    reasons: list[str] = []
    outcome = Outcome.PASS
    # the newest candidate rows without the path (the newest rows at all, when none carries it)
    worst: list[int] = cand.absent if cand is not None else candidate.newest
    if presence is not None:
        outcome, reasons = presence.outcome, [presence.reason]
    else:
        reasons.append(f"present in {_pct(baseline.share(path))} of the baseline (below min_presence): share not gated")
    if types is not None and cand is not None:
        new = sorted(set(cand.types) - set(base.types))
        counts = ", ".join(f"{cand.types[name]} {name}" for name in new)
        if types.outcome is Outcome.FAIL:
            reasons.insert(
                0,
                f"type changed: {_types(base)} in the baseline, now {counts} of {cand.count} row(s) "
                + ("(p<1e-16)" if (types.p_adjusted or 0.0) < 1e-16 else f"(p={types.p_adjusted:.3g})"),
            )
            if outcome is not Outcome.FAIL:
                worst = [session for name in new for session in cand.by_type.get(name, [])][:SAMPLES]
            outcome = Outcome.FAIL
        else:
            reasons.append(f"{counts} of {cand.count} row(s) with a type the baseline did not have, within noise")
    detail: dict[str, Any] = {
        "path": path,
        "baseline_share": baseline.share(path),
        "candidate_share": candidate.share(path),
        "n_baseline": baseline.n,
        "baseline_types": _types(base),
        "candidate_types": _types(cand),
        # whether any test judged the path (a rare path with the baseline's types is only shown)
        "tested": presence is not None or types is not None,
    }
    if presence is not None:
        detail["drop_detectable"] = presence.drop_detectable
    return KeyResult(
        learning_key=path,
        n=candidate.n,
        statistic=PRESENCE,
        value=candidate.share(path) if candidate.n else None,
        bound=shares,
        threshold=f"drop <= {options.max_presence_drop:.0%}" if presence is not None else "same types",
        outcome=outcome,
        reason="; ".join(reasons),
        worst=tuple(worst) if outcome is not Outcome.PASS else (),
        p_value=presence.p_value if presence is not None else None,
        p_adjusted=presence.p_adjusted if presence is not None else None,
        detail=detail,
    )


def _new_row(path: str, candidate: PathCensus) -> KeyResult:
    from pytest_atlas._outcome import Outcome

    stats = candidate.paths[path]
    return KeyResult(
        learning_key=path,
        n=candidate.n,
        statistic=PRESENCE,
        value=candidate.share(path),
        bound=f"new -> {_pct(candidate.share(path))}",
        threshold="no new paths",
        outcome=Outcome.FAIL,
        reason=f"new path: {stats.count} of {candidate.n} candidate row(s) carry it ({_types(stats)}), the "
        "baseline none (new_paths = true)",
        worst=tuple(session for ids in stats.by_type.values() for session in ids)[:SAMPLES],
        detail={
            "path": path,
            "baseline_share": 0.0,
            "candidate_share": candidate.share(path),
            "baseline_types": "-",
            "candidate_types": _types(stats),
        },
    )


# ------------------------------------------------------------------------------------------------
# the census of a selection, from the database
# ------------------------------------------------------------------------------------------------


def fetch_census(
    conn: psycopg.Connection[Any], selection: Selection, column: str = "sessions.metadata", *, with_ids: bool = False
) -> PathCensus:
    """The census of ``column`` over the selected sessions (``last``: the newest N sessions), read in
    one read-only, streamed query, newest first. For a table other than ``sessions`` every row of
    the selected sessions counts. With ``with_ids`` the census keeps each row's session id
    (``PathCensus.sessions``, 8 bytes a row)."""
    checked_column(column)
    table, _, name = column.partition(".")
    params: dict[str, Any] = {}
    limit = sql.SQL("")
    if selection.last is not None:
        params["last"] = selection.last
        limit = sql.SQL(" LIMIT %(last)s")
    picked = sql.SQL(
        "WITH picked AS (SELECT s.id, s.created_at{own} FROM sessions AS s WHERE {where} "
        "ORDER BY s.created_at DESC, s.id DESC{limit}) "
    ).format(
        own=sql.SQL(", s.{} AS doc").format(sql.Identifier(name)) if table == "sessions" else sql.SQL(""),
        where=filters(selection, params),
        limit=limit,
    )
    if table == "sessions":
        query = picked + sql.SQL("SELECT id, doc FROM picked ORDER BY created_at DESC, id DESC")
    else:
        query = picked + sql.SQL(
            "SELECT t.session_id, t.{col} FROM {table} AS t JOIN picked AS p ON p.id = t.session_id "
            "ORDER BY p.created_at DESC, p.id DESC"
        ).format(col=sql.Identifier(name), table=sql.Identifier(table))
    sessions = array("q")

    def rows(cursor: psycopg.Cursor[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        for session_id, document in cursor.stream(query, params):
            if with_ids:
                sessions.append(int(session_id))
            yield int(session_id), document

    with read_only(conn) as cursor:
        census = field_census(rows(cursor), column)
    if with_ids:
        census.sessions = sessions
    return census
