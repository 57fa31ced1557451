"""Reward series: the scores of one learning key as threshold and regression gates (and baseline
files) see them, and the one query that reads them.

A gate over a million sessions fetches one row per learning key (per key and range of 2**24 ids
in a table whose ids reach that; per key and range of heap blocks when a large table's scan is
split among parallel workers): counts, and the scored sessions packed with their ids and
uncertainties (24 bytes a session, more when a chart, ``last`` or per-task means need each
session's time or task); the frequency table, the exact moments and the worst sessions are computed
from those with numpy, which is loaded only when a series is built (through the lazy
:mod:`pytest_atlas.stats`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pytest_atlas import stats
from pytest_atlas._arguments import check_integer, check_number, shown
from pytest_atlas.errors import GateError, InvalidArgument
from pytest_atlas.gates import _scores
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import BareFailed, filters, key_column, run, scored, snapshot

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pytest_atlas.stats import Sample

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

__all__ = [
    "CHART_KEYS",
    "CHART_POINTS",
    "MAX_COUNT",
    "Series",
    "Timeline",
    "check_series",
    "fetch_series",
    "fetch_timeline",
    "reward_chart",
    "series_with_timeline",
]


@dataclass(frozen=True, eq=False)
class Series:
    """The rewards of one learning key (or of all, ``learning_key == "*"``) as a gate sees them.

    ``sample`` holds the scores (frequency table of values rounded to ``digits`` decimals, exact
    mean and variance); ``missing`` counts selected sessions without a usable score (no
    reward_stats, or a score that is null, NaN-like or not a number); ``uncertain`` those left out
    by ``max_uncertainty``; ``worst`` lists the lowest-scoring sessions as ``(id, score)``;
    ``tasks`` maps task text to ``(mean score, sessions)`` when the series has few enough distinct
    tasks to pair on, else None.
    """

    learning_key: str
    sample: Sample
    missing: int = 0
    worst: tuple[tuple[int, float], ...] = ()
    tasks: Mapping[str, tuple[float, int]] | None = None
    uncertainty_mean: float | None = None
    uncertain: int = 0
    digits: int = 4
    #: the ids of the scored sessions the series holds (an int64 array), when it was read from a
    #: database: how a regression gate finds sessions its baseline shares with it; never stored
    ids: Any = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.sample.n

    def to_json(self) -> dict[str, Any]:
        return {
            "learning_key": self.learning_key,
            "digits": self.digits,
            "n": self.n,
            "mean": _finite(self.sample.mean),
            "variance": _finite(self.sample.variance),
            "values": self.sample.values.tolist(),
            "counts": self.sample.counts.tolist(),
            "missing": self.missing,
            "worst": [[session, score] for session, score in self.worst],
            "tasks": None if self.tasks is None else {task: list(pair) for task, pair in self.tasks.items()},
            "uncertainty_mean": self.uncertainty_mean,
            "uncertain": self.uncertain,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Series:
        """Inverse of :meth:`to_json`. The series must be internally consistent (see
        :func:`check_series`); raises InvalidArgument naming the first field that is not."""
        return check_series(data)


#: the largest count a series may hold (more sessions than any database has; keeps numpy exact)
MAX_COUNT = 2**53
_SERIES_FIELDS = frozenset(
    {
        "learning_key",
        "digits",
        "n",
        "mean",
        "variance",
        "values",
        "counts",
        "missing",
        "worst",
        "tasks",
        "uncertainty_mean",
        "uncertain",
    }
)


def _bad(problem: str) -> InvalidArgument:
    return InvalidArgument(problem, hint="the file was edited, truncated or damaged: save the baseline again")


def _count(name: str, value: Any, *, low: int = 0) -> int:
    try:
        return check_integer(name, value, low=low, high=MAX_COUNT)
    except InvalidArgument as exc:
        raise _bad(exc.problem) from None


def _session_id(name: str, value: Any) -> int:
    """A session id: any bigint (Atlas's ids are positive; a database of one's own may hold others)."""
    try:
        return check_integer(name, value, low=-(2**63), high=2**63 - 1)
    except InvalidArgument as exc:
        raise _bad(exc.problem) from None


def _real(name: str, value: Any) -> float:
    try:
        return check_number(name, value)
    except InvalidArgument as exc:
        raise _bad(exc.problem) from None


def check_series(data: Mapping[str, Any]) -> Series:
    """A :class:`Series` from its JSON form, checked field by field and for internal consistency:

    * exactly the fields :meth:`Series.to_json` writes, each of its type and range;
    * ``values`` strictly increasing finite numbers rounded to ``digits`` decimals, one positive
      integer count each; ``n`` the sum of the counts;
    * ``mean`` null exactly when ``n`` is 0, else within rounding (half a unit of the last digit)
      of the frequency table's mean; ``variance`` null below two sessions, else non-negative and
      its square root within rounding of the table's standard deviation;
    * ``worst``: at most ``n`` distinct session ids with their scores, lowest first, the lowest one
      in the table's lowest value;
    * ``tasks``: null, or per-task means and counts whose counts add up to ``n`` and whose weighted
      mean is ``mean``.
    """
    if not isinstance(data, Mapping):
        raise _bad(f"expected a series object, got {shown(data)}")
    unknown = sorted(set(data) - _SERIES_FIELDS)
    missing_fields = sorted(_SERIES_FIELDS - set(data))
    if unknown or missing_fields:
        what = []
        if unknown:
            what.append("unknown field(s) " + ", ".join(map(repr, unknown)))
        if missing_fields:
            what.append("missing field(s) " + ", ".join(missing_fields))
        raise _bad("; ".join(what))
    key = data["learning_key"]
    if not isinstance(key, str):
        raise _bad(f"learning_key must be a string, got {shown(key)}")
    try:
        digits = check_integer("digits", data["digits"], low=0, high=12, example=4)
    except InvalidArgument as exc:
        raise _bad(exc.problem) from None
    values, counts = data["values"], data["counts"]
    if not isinstance(values, list) or not isinstance(counts, list) or len(values) != len(counts):
        raise _bad("values and counts must be lists of the same length")
    scale = 10.0**digits
    half = 0.5 / scale
    previous = -math.inf
    for index, raw in enumerate(values):
        value = _real(f"values[{index}]", raw)
        if value <= previous:
            raise _bad(f"values must be strictly increasing; values[{index}] = {value!r} is not")
        scaled = value * scale
        if abs(scaled - round(scaled)) > 1e-6 + 1e-9 * abs(scaled):
            raise _bad(f"values[{index}] = {value!r} is not rounded to {digits} decimals")
        previous = value
    table_counts = [_count(f"counts[{index}]", raw, low=1) for index, raw in enumerate(counts)]
    n = _count("n", data["n"])
    if n != sum(table_counts):
        raise _bad(f"n is {n} but the counts add up to {sum(table_counts)}")
    missing = _count("missing", data["missing"])
    uncertain = _count("uncertain", data["uncertain"])
    floats = [float(v) for v in values]
    mean = data["mean"]
    variance = data["variance"]
    if n == 0:
        if mean is not None or variance is not None:
            raise _bad("a series without sessions has null mean and variance")
    else:
        mean = _real("mean", mean)
        table_mean = math.fsum(v * c for v, c in zip(floats, table_counts, strict=True)) / n
        if abs(mean - table_mean) > half + 1e-9:
            raise _bad(f"mean {mean!r} does not agree with the frequency table (its mean is {table_mean:.6g})")
        if n == 1:
            if variance is not None:
                raise _bad("a series of one session has a null variance")
        else:
            variance = _real("variance", variance)
            if variance < 0:
                raise _bad(f"variance must not be negative, got {variance!r}")
            table_sd = math.sqrt(
                max(math.fsum(c * (v - table_mean) ** 2 for v, c in zip(floats, table_counts, strict=True)), 0.0)
                / (n - 1)
            )
            allowed = half * math.sqrt(n / (n - 1)) + 1e-9
            if abs(math.sqrt(variance) - table_sd) > allowed:
                raise _bad(
                    f"variance {variance!r} does not agree with the frequency table "
                    f"(its standard deviation is {table_sd:.6g})"
                )
    uncertainty = data["uncertainty_mean"]
    uncertainty_mean = None if uncertainty is None else _real("uncertainty_mean", uncertainty)
    raw_worst = data["worst"]
    if not isinstance(raw_worst, list) or len(raw_worst) > n:
        raise _bad(f"worst must be a list of at most n = {n} [session id, score] pairs")
    worst: list[tuple[int, float]] = []
    for index, pair in enumerate(raw_worst):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _bad(f"worst[{index}] must be a [session id, score] pair, got {shown(pair)}")
        worst.append((_session_id(f"worst[{index}][0]", pair[0]), _real(f"worst[{index}][1]", pair[1])))
    if worst != sorted(worst, key=lambda item: (item[1], item[0])) or len({s for s, _ in worst}) != len(worst):
        raise _bad("worst must list distinct sessions, lowest score first")
    if worst and abs(round(worst[0][1] * scale) / scale - floats[0]) > half + 1e-9:
        raise _bad(f"the lowest score in worst ({worst[0][1]!r}) is not the table's lowest value ({floats[0]!r})")
    raw_tasks = data["tasks"]
    tasks: dict[str, tuple[float, int]] | None = None
    if raw_tasks is not None:
        if not isinstance(raw_tasks, Mapping):
            raise _bad(f"tasks must be null or an object of task -> [mean, count], got {shown(raw_tasks)}")
        tasks = {}
        for task, pair in raw_tasks.items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad(f"tasks[{task!r}] must be a [mean, count] pair, got {shown(pair)}")
            tasks[str(task)] = (_real(f"tasks[{task!r}][0]", pair[0]), _count(f"tasks[{task!r}][1]", pair[1], low=1))
        if sum(count for _, count in tasks.values()) != n:
            raise _bad(f"the task counts add up to {sum(c for _, c in tasks.values())}, not n = {n}")
        if n:
            weighted = math.fsum(m * c for m, c in tasks.values()) / n
            if not math.isclose(weighted, float(mean), rel_tol=1e-9, abs_tol=1e-9):
                raise _bad(f"the per-task means average to {weighted:.6g}, not to the mean {mean!r}")
    sample = stats.Sample.from_counts(
        floats,
        table_counts,
        what=f"series {key!r} values",
        exact_mean=None if n == 0 else float(mean),
        exact_variance=None if n < 2 else float(variance),
    )
    return Series(key, sample, missing, tuple(worst), tasks, uncertainty_mean, uncertain, digits)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def fetch_series(
    conn: psycopg.Connection[Any],
    selection: Selection,
    *,
    by_key: bool = True,
    digits: int = 4,
    worst: int = 5,
    max_tasks: int = 5000,
    tasks: bool = True,
    with_ids: bool = False,
) -> dict[str, Series]:
    """The reward series of the selected sessions, one per learning key (or one pooled series).

    Scores are ``reward_stats.score``, falling back to ``score_mean`` (as Atlas's drift detector
    reads them). The frequency table is rounded to ``digits`` decimals; the mean and variance are
    exact. Keys without a single scored session still appear (n = 0) when they have sessions.
    Per-task means (what a paired comparison needs) are read only with ``tasks`` true; else
    every series has ``tasks`` None. With ``with_ids`` each series keeps the ids of its scored
    sessions (``Series.ids``, 8 bytes a session).
    """
    check_integer("digits", digits, low=0, high=12, example=4)
    series, _ = _grouped_series(
        conn,
        selection,
        by_key=by_key,
        digits=digits,
        worst=worst,
        max_tasks=max_tasks,
        tasks=tasks,
        points=0,
        with_ids=with_ids,
    )
    return series


#: per learning key, the newest scored sessions as (ISO time, score, session id), oldest first
Timeline = dict[str, list[tuple[str, float, int]]]


def series_with_timeline(
    conn: psycopg.Connection[Any],
    selection: Selection,
    *,
    by_key: bool = True,
    digits: int = 4,
    tasks: bool = True,
    points: int = 0,
    with_ids: bool = False,
) -> tuple[dict[str, Series], Timeline | None]:
    """:func:`fetch_series`, and with ``points`` what :func:`fetch_timeline` reads (the newest
    ``points`` scored sessions of each key), from the same scan: a chart then costs no second
    pass over the selection. The timeline is None when it was not read (no ``points``)."""
    check_integer("digits", digits, low=0, high=12, example=4)
    if points < 1:
        return fetch_series(conn, selection, by_key=by_key, digits=digits, tasks=tasks, with_ids=with_ids), None
    return _grouped_series(
        conn,
        selection,
        by_key=by_key,
        digits=digits,
        worst=5,
        max_tasks=5000,
        tasks=tasks,
        points=points,
        with_ids=with_ids,
    )


def _grouped_series(
    conn: psycopg.Connection[Any], selection: Selection, **options: Any
) -> tuple[dict[str, Series], Timeline | None]:
    """:func:`fetch_series`: one scan grouped into a row per key, every scored session packed
    with its id and uncertainty (with ``points`` or ``last`` its time: the timeline comes from the
    same scan; with per-task means the hash of its task), see :mod:`._scores`; the uncertainty
    bound and the window of ``last`` are applied here."""
    # ``options``: those of _read_series (by_key, digits, worst, max_tasks, tasks, points, with_ids)
    for _ in range(_SEEDS):
        with snapshot(conn):  # every statement of one series reads the same sessions
            found = _read_series(conn, selection, **options)
        if found is not None:
            return found
    raise GateError(
        f"the per-task means could not be read: two tasks of one learning key shared a hash {_SEEDS} times",
        hint="run the gate again; if it happens again, report it with the task texts of that key",
    )


#: tries of the series with a fresh task-hash seed when two tasks of a key share a hash
_SEEDS = 3


def _read_series(
    conn: psycopg.Connection[Any],
    selection: Selection,
    *,
    by_key: bool,
    digits: int,
    worst: int,
    max_tasks: int,
    tasks: bool,
    points: int,
    with_ids: bool,
) -> tuple[dict[str, Series], Timeline | None] | None:
    """One try of :func:`_grouped_series`; None when two tasks of a key shared a hash."""
    import numpy as np

    params: dict[str, Any] = {
        "max_tasks": max_tasks,
        "number_pattern": _scores.NUMBER_PATTERN,
        "task_seed": secrets.randbits(63),
    }
    where = filters(selection, params)
    uncertain = selection.max_uncertainty is not None
    if uncertain:
        params["max_uncertainty"] = selection.max_uncertainty
    key = key_column(by_key)
    records: dict[str, list[bytes]] = {}
    missing: dict[str, int] = {}
    timed, window = points > 0 or selection.last is not None, selection.last
    # ids from 2**24 on: one row per key and range of ids; PostgreSQL cannot tell that this grouping
    # makes few groups and would sort every session for it, so it is told not to sort
    highest, blocks, workers, version = run(conn, _scores.SIZE_STATEMENT, {})[0]
    chunked = highest is not None and highest >= _scores.CHUNK
    planner = {"enable_sort": "off"} if chunked else {}
    ranges = _scores.block_ranges(int(blocks), int(workers), int(version))
    if ranges and _scans_all(conn, _scores.series_statement(key, where, chunked=chunked, bare=True), params):
        planner.update(_scores.SPLIT_PLANNER)
    else:
        ranges = []
    for lk, n, with_score, packed in _packed_rows(
        conn,
        lambda bare: _scores.series_statement(
            key, where, timed=timed, tasks=tasks, chunked=chunked, bare=bare, ranges=ranges
        ),
        params,
        planner=planner,
        fields=_scores.record_fields(timed=timed, tasks=tasks),
    ):
        # one row per key and range of ids: the counts add up, the records are joined
        missing[lk] = missing.get(lk, 0) + n - with_score
        records.setdefault(lk, []).append(packed or b"")
    out: dict[str, Series] = {}
    timeline: Timeline | None = {} if points > 0 else None
    by_hash: dict[str, dict[int, tuple[float, int]]] = {}  # per key: task hash -> (sum, sessions)
    for lk in sorted(records):
        packed, unsure = _usable(
            _unpack(b"".join(records[lk]), timed=timed, tasks=tasks), last=window, bound=selection.max_uncertainty
        )
        known = packed["u"][~np.isnan(packed["u"])]  # numpy adds them pairwise: no drift over millions
        scores, ids = packed["score"], packed["id"]
        sample, lowest = _summary(scores, ids, digits=digits, worst=worst)
        if timeline is not None and len(scores):
            timeline[lk] = _newest(scores, ids, packed["created"], points=points, zone=conn.info.timezone)
        if tasks and len(scores):
            by_hash[lk] = _task_sums(packed["task"], scores, max_tasks=max_tasks)
        out[lk] = Series(
            lk,
            sample,
            missing[lk],
            lowest,
            None,
            float(known.sum()) / len(known) if len(known) else None,
            unsure,
            digits,
            ids if with_ids else None,
        )
    if tasks:
        task_means = _task_means(conn, by_hash, key, where, params)
        if task_means is None:
            return None
        # the counts per task are the packed sessions' own: they add up to n by construction
        out = {lk: replace(s, tasks=task_means.get(lk) or None) if s.n else s for lk, s in out.items()}
    return out, timeline


def _scans_all(conn: psycopg.Connection[Any], statement: sql.Composed, params: Mapping[str, Any]) -> bool:
    """Whether PostgreSQL plans ``statement`` as a scan of the whole sessions table (no index
    narrows the selection): only then is splitting it into block ranges worth its cost."""
    ((plan,),) = run(conn, sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params)
    nodes = [plan[0]["Plan"]] if isinstance(plan, list) else []
    while nodes:
        node = nodes.pop()
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == "sessions":
            return True
        nodes.extend(node.get("Plans", ()))
    return False


def _packed_rows(
    conn: psycopg.Connection[Any],
    statement: Callable[[bool], sql.Composed],
    params: Mapping[str, Any],
    *,
    planner: Mapping[str, str] | None,
    fields: list[tuple[str, str]],
) -> list[tuple[Any, ...]]:
    """The rows of the series statement: its bare form's (``statement(True)``) when it ran and
    packed only ordinary values (see :func:`._scores.ordinary`), else its exact form's, read in
    the same snapshot."""
    import numpy as np

    try:
        rows = run(conn, statement(True), params, binary=True, planner=planner, bare=True)
    except BareFailed:
        rows = []
        ordinary = False
    else:
        ordinary = all(
            _scores.ordinary(packed["score"], none=False) and _scores.ordinary(packed["u"])
            for *_, records in rows
            if records
            for packed in (np.frombuffer(records, dtype=np.dtype(fields)),)
        )
    if ordinary:
        return rows
    rows.clear()  # the bare form's packed values are not held while the exact form's are read
    return run(conn, statement(False), params, binary=True, planner=planner)


def _unpack(records: bytes, *, timed: bool, tasks: bool) -> dict[str, Any]:
    """The fields of records packed by the series statement (see :func:`._scores.record_fields`)
    as native arrays: ``score`` and ``u`` (float64), ``id``, ``created`` and ``task`` (int64)."""
    import numpy as np

    fields = _scores.record_fields(timed=timed, tasks=tasks)
    packed = np.frombuffer(records, dtype=np.dtype(fields))
    return {name: packed[name].astype(np.dtype(kind.replace(">", "="))) for name, kind in fields}


def _usable(packed: dict[str, Any], *, last: int | None, bound: float | None) -> tuple[dict[str, Any], int]:
    """The packed sessions whose uncertainty is not above ``bound`` (all without one), with
    ``last`` the newest ``last`` of those (oldest first); and how many the bound left out."""
    import numpy as np

    if bound is None and last is None:
        return packed, 0
    kept = np.arange(len(packed["score"]))
    unsure = 0
    if bound is not None:
        over = packed["u"] > bound  # NaN (no uncertainty) is never above it
        unsure = int(over.sum())
        kept = np.flatnonzero(~over)
    if last is not None:
        kept = kept[_newest_order(packed["created"][kept], packed["id"][kept], last)]
    return {name: values[kept] for name, values in packed.items()}, unsure


def _newest_order(created: IntArray, ids: IntArray, count: int) -> IntArray:
    """Indices of the ``count`` newest sessions (latest time, then highest id), oldest first."""
    import numpy as np

    if len(created) > count:  # every time from the count-th latest on (ties included)
        cut = np.partition(created, len(created) - count)[len(created) - count]
        near = np.flatnonzero(created >= cut)
    else:
        near = np.arange(len(created))
    order: IntArray = near[np.lexsort((ids[near], created[near]))][len(near) - min(count, len(near)) :]
    return order


def _task_sums(hashes: IntArray, scores: FloatArray, *, max_tasks: int) -> dict[int, tuple[float, int]]:
    """Per task hash, the sum of its scores and its sessions; empty when there are more than
    ``max_tasks`` tasks (no per-task means then)."""
    import numpy as np

    distinct, which = np.unique(hashes, return_inverse=True)
    if len(distinct) > max_tasks:
        return {}
    sums = np.bincount(which, weights=scores, minlength=len(distinct))
    counts = np.bincount(which, minlength=len(distinct))
    return {int(h): (float(t), int(c)) for h, t, c in zip(distinct, sums, counts, strict=True)}


def _task_means(
    conn: psycopg.Connection[Any],
    by_hash: Mapping[str, Mapping[int, tuple[float, int]]],
    key: sql.Composable,
    where: sql.Composable,
    params: dict[str, Any],
) -> dict[str, dict[str, tuple[float, int]]] | None:
    """Per key, task -> (mean score, sessions), from the per-hash sums and the names of those
    hashes (read without the scores); None when two tasks of one key share a hash (or a name
    cannot be found): the caller reads the series again with another seed."""
    wanted = sorted({h for sums in by_hash.values() for h in sums})
    if not wanted:
        return {}
    names: dict[str, dict[int, set[str]]] = {}
    for lk, task, hashed in run(conn, _scores.task_names_statement(key, where), {**params, "task_hashes": wanted}):
        names.setdefault(lk, {}).setdefault(int(hashed), set()).add(task)
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for lk, sums in by_hash.items():
        found = names.get(lk, {})
        if any(len(found.get(h, ())) != 1 for h in sums):  # a collision
            return None
        if sums:
            out[lk] = {next(iter(found[h])): (total / n, n) for h, (total, n) in sums.items()}
    return out


#: PostgreSQL's timestamp epoch
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _newest(
    scores: FloatArray, ids: IntArray, created: IntArray, *, points: int, zone: tzinfo
) -> list[tuple[str, float, int]]:
    """The newest ``points`` sessions (latest ``created_at``, then highest id) as (ISO time in
    ``zone``, score, id), oldest first: what :func:`fetch_timeline` reads, less the points whose
    time Python's datetime cannot hold (PostgreSQL's ±infinity, years beyond 9999): a chart never
    makes a gate fail."""
    chosen = _newest_order(created, ids, points)
    out: list[tuple[str, float, int]] = []
    for when, score, session in zip(
        created[chosen].tolist(), scores[chosen].tolist(), ids[chosen].tolist(), strict=True
    ):
        try:
            out.append(((_EPOCH + timedelta(microseconds=when)).astimezone(zone).isoformat(), score, session))
        except OverflowError:
            continue
    return out


#: scores up to this magnitude are added pairwise in float64 (error far below a rounded digit);
#: larger ones exactly (math.fsum), since they may cancel
_PLAIN_MAGNITUDE = 1e6


def _summary(
    scores: FloatArray, ids: IntArray, *, digits: int, worst: int
) -> tuple[Sample, tuple[tuple[int, float], ...]]:
    """The sample (frequency table of the scores rounded to ``digits`` decimals as PostgreSQL's
    ``round(score * 10^digits) / 10^digits`` rounds them, exact mean and sample variance) and the
    ``worst`` lowest (session id, score) pairs, lowest score then lowest id first."""
    import numpy as np

    n = len(scores)
    scale = float(10**digits)
    values, counts = np.unique(np.rint(scores * scale) / scale, return_counts=True)
    mean: float | None = None
    variance: float | None = None
    if n:
        if float(np.abs(scores).max()) > _PLAIN_MAGNITUDE:  # large scores may cancel: add them exactly
            mean = math.fsum(scores.tolist()) / n
        else:
            rough = float(scores.sum()) / n
            mean = rough + float((scores - rough).sum()) / n  # two passes: the rounding of the first corrected
        if n > 1:
            deviations = scores - mean
            # numpy's pairwise sum, not BLAS: np.dot may hand a long vector to threads that wait
            # for a busy machine's other core
            variance = float(np.sum(deviations * deviations)) / (n - 1)
    sample = stats.Sample.from_counts(values, counts, exact_mean=mean, exact_variance=variance)
    if not n or worst < 1:
        return sample, ()
    # the lowest sessions: every score up to the worst-th lowest (ties included), ordered by score then id
    cut = np.partition(scores, min(worst, n) - 1)[min(worst, n) - 1]
    near = np.flatnonzero(scores <= cut)
    order = near[np.lexsort((ids[near], scores[near]))][:worst]
    return sample, tuple(zip(ids[order].tolist(), scores[order].tolist(), strict=True))


# ------------------------------------------------------------------------------------------------
# what a chart of a reward gate draws
# ------------------------------------------------------------------------------------------------

#: at most this many learning keys are charted per gate (those with the most points)
CHART_KEYS = 12
#: a chart's points per key: the newest scored sessions
CHART_POINTS = 300


def fetch_timeline(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, points: int = CHART_POINTS
) -> Timeline:
    """Per key, the newest ``points`` scored sessions of the selection as (ISO time, score, id),
    oldest first: the reward series a chart draws (the gate's statistics never read it)."""
    params: dict[str, Any] = {"points": max(points, 1)}
    query = scored(selection, by_key, params) + sql.SQL(
        "SELECT lk, created_at, score, id FROM (SELECT lk, created_at, score, id, row_number() OVER "
        "(PARTITION BY lk ORDER BY created_at DESC, id DESC) AS r FROM scored) AS t WHERE r <= %(points)s "
        "ORDER BY lk, created_at, id"
    )
    out: Timeline = {}
    for key, created, score, session in run(conn, query, params):
        out.setdefault(key, []).append((created.isoformat(), float(score), int(session)))
    return out


def reward_chart(
    conn: psycopg.Connection[Any],
    selection: Selection,
    series: Mapping[str, Series],
    *,
    by_key: bool,
    baseline: Mapping[str, Series] | None = None,
    threshold: float | None = None,
    tolerance: float = 0.0,
    timeline: Timeline | None = None,
) -> dict[str, Any]:
    """What the report's chart of a reward gate draws, per learning key: the scores over time, the
    baseline band (its mean +/- one standard deviation), the threshold (for a regression: the
    baseline mean minus ``tolerance``) and the window's mean. JSON-ready; empty without scores.
    ``timeline``: what :func:`fetch_timeline` returns, when it was read already (see
    :func:`series_with_timeline`)."""
    if timeline is None:
        timeline = fetch_timeline(conn, selection, by_key=by_key, points=CHART_POINTS)
    keys = sorted(timeline, key=lambda k: (-len(timeline[k]), k))[:CHART_KEYS]
    out: dict[str, Any] = {}
    for key in sorted(keys):
        base = baseline.get(key) if baseline is not None else None
        band, line = None, threshold
        if base is not None and base.n:
            sd = base.sample.sd if base.n > 1 else 0.0
            band = [_finite(base.sample.mean - sd), _finite(base.sample.mean + sd)]
            line = _finite(base.sample.mean - tolerance)
        cand = series.get(key)
        out[key] = {
            "points": [[time, score, session] for time, score, session in timeline[key]],
            "band": band,
            "threshold": line,
            "mean": _finite(cand.sample.mean) if cand is not None and cand.n else None,
        }
    return {"rewards": out} if out else {}
