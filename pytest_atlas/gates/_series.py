"""Reward series: the scores of one learning key as threshold and regression gates (and baseline
files) see them, and the one query that reads them.

A gate over a million sessions fetches, per learning key: one row of exact moments, one row per
distinct (rounded) score, the few worst sessions, and -- only when there are few enough -- one row
per task. numpy is loaded only when a series is built (through the lazy :mod:`pytest_atlas.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pytest_atlas import stats
from pytest_atlas._arguments import check_integer, check_number, shown
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates import _scores
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import filters, key_column, run, scored

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
        worst.append((_count(f"worst[{index}][0]", pair[0], low=1), _real(f"worst[{index}][1]", pair[1])))
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
) -> dict[str, Series]:
    """The reward series of the selected sessions, one per learning key (or one pooled series).

    Scores are ``reward_stats.score``, falling back to ``score_mean`` (as Atlas's drift detector
    reads them). The frequency table is rounded to ``digits`` decimals; the mean and variance are
    exact. Keys without a single scored session still appear (n = 0) when they have sessions.
    Per-task means (what a paired comparison needs) are read only with ``tasks`` true; else
    every series has ``tasks`` None.
    """
    check_integer("digits", digits, low=0, high=12, example=4)
    if selection.last is None:
        series, _ = _grouped_series(
            conn, selection, by_key=by_key, digits=digits, worst=worst, max_tasks=max_tasks, tasks=tasks, points=0
        )
        return series
    params: dict[str, Any] = {"worst": max(worst, 1), "max_tasks": max_tasks}
    # One statement: PostgreSQL materialises the selected sessions once (a CTE used several times)
    # and returns a handful of row kinds: m = moments per key, v = frequency table, x = sessions
    # without a usable score, w = the worst sessions, t = per-task means (keys with few tasks only).
    params["scale"] = float(10**digits)
    query = scored(selection, by_key, params) + sql.SQL(
        ", freq AS (SELECT lk, round(score * %(scale)s) / %(scale)s AS v, count(*) AS c FROM scored GROUP BY 1, 2)"
        # the worst sessions: only rows at or below each key's k-th lowest rounded score are sorted
        ", cut AS (SELECT lk, min(v) AS v FROM (SELECT lk, v, sum(c) OVER (PARTITION BY lk ORDER BY v) AS cum "
        "FROM freq) AS f WHERE cum >= %(worst)s GROUP BY lk)"
        ", worst AS (SELECT s.lk, s.id, s.score, row_number() OVER (PARTITION BY s.lk ORDER BY s.score, s.id) "
        "AS rank FROM scored AS s LEFT JOIN cut ON cut.lk = s.lk "
        "WHERE round(s.score * %(scale)s) / %(scale)s <= COALESCE(cut.v, 'infinity'))"
        ", tasks AS (SELECT lk, task, avg(score) AS mean, count(*) AS c, count(*) OVER (PARTITION BY lk) AS ntasks "
        "FROM scored GROUP BY lk, task) "
        "SELECT 'm', lk, NULL::float8, count(*), avg(score), var_samp(score), avg(uncertainty), NULL::bigint, "
        "NULL::text FROM scored GROUP BY lk "
        "UNION ALL SELECT 'v', lk, v, c, NULL, NULL, NULL, NULL, NULL FROM freq "
        "UNION ALL SELECT 'x', lk, NULL, count(*), NULL, NULL, NULL, NULL, NULL FROM matched "
        "WHERE score IS NULL GROUP BY lk "
        "UNION ALL SELECT 'w', lk, score, rank, NULL, NULL, NULL, id, NULL FROM worst WHERE rank <= %(worst)s"
    )
    if tasks:
        query += sql.SQL(
            " UNION ALL SELECT 't', lk, NULL, c, mean, NULL, NULL, NULL, task FROM tasks WHERE ntasks <= %(max_tasks)s"
        )
    if selection.max_uncertainty is not None:  # u = scored sessions whose judges were too unsure
        query += sql.SQL(
            " UNION ALL SELECT 'u', lk, NULL, count(*), NULL, NULL, NULL, NULL, NULL FROM matched "
            "WHERE score IS NOT NULL AND uncertainty > %(max_uncertainty)s GROUP BY lk"
        )
    moments: dict[str, tuple[int, float, float | None, float | None]] = {}
    values: dict[str, list[tuple[float, int]]] = {}
    missing: dict[str, int] = {}
    uncertain: dict[str, int] = {}
    worst_rows: dict[str, list[tuple[int, int, float]]] = {}
    task_means: dict[str, dict[str, tuple[float, int]]] = {}
    for kind, key, value, count, mean, variance, uncertainty, session, task in run(conn, query, params):
        if kind == "m":
            moments[key] = (
                int(count),
                float(mean),
                None if variance is None else float(variance),
                None if uncertainty is None else float(uncertainty),
            )
        elif kind == "v":
            values.setdefault(key, []).append((float(value), int(count)))
        elif kind == "x":
            missing[key] = int(count)
        elif kind == "u":
            uncertain[key] = int(count)
        elif kind == "w":
            worst_rows.setdefault(key, []).append((int(count), int(session), float(value)))
        else:
            task_means.setdefault(key, {})[task] = (float(mean), int(count))
    out: dict[str, Series] = {}
    for key in sorted(set(moments) | set(missing) | set(uncertain)):
        table_rows = values.get(key, [])
        n, mean, variance, uncertainty = moments.get(key, (0, math.nan, None, None))
        sample = stats.Sample.from_counts(
            [v for v, _ in table_rows],
            [c for _, c in table_rows],
            exact_mean=mean if n else None,
            exact_variance=variance,
        )
        lowest = tuple((session, score) for _, session, score in sorted(worst_rows.get(key, [])))[:worst]
        out[key] = Series(
            key,
            sample,
            missing.get(key, 0),
            lowest,
            task_means.get(key) if n and tasks else None,
            uncertainty,
            uncertain.get(key, 0),
            digits,
        )
    return out


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
) -> tuple[dict[str, Series], Timeline | None]:
    """:func:`fetch_series`, and with ``points`` what :func:`fetch_timeline` reads (the newest
    ``points`` scored sessions of each key), from the same scan: a chart then costs no second
    pass over the selection. The timeline is None when it was not read (no ``points``, or a
    selection with ``last``, whose series come from another statement)."""
    check_integer("digits", digits, low=0, high=12, example=4)
    if selection.last is not None or points < 1:
        return fetch_series(conn, selection, by_key=by_key, digits=digits, tasks=tasks), None
    return _grouped_series(
        conn, selection, by_key=by_key, digits=digits, worst=5, max_tasks=5000, tasks=tasks, points=points
    )


def _grouped_series(
    conn: psycopg.Connection[Any],
    selection: Selection,
    *,
    by_key: bool,
    digits: int,
    worst: int,
    max_tasks: int,
    tasks: bool,
    points: int,
) -> tuple[dict[str, Series], Timeline | None]:
    """:func:`fetch_series` without ``last``: one scan grouped into a few rows per key, the usable
    scores packed with their session ids (and, with ``points``, their times: the timeline comes
    from the same scan), see :mod:`._scores`; and, when per-task means are asked for, a second
    statement grouped by key and task."""
    params: dict[str, Any] = {"max_tasks": max_tasks, "number_pattern": _scores.NUMBER_PATTERN}
    where = filters(selection, params)
    uncertain = selection.max_uncertainty is not None
    if uncertain:
        params["max_uncertainty"] = selection.max_uncertainty
    key = key_column(by_key)
    records: dict[str, list[bytes]] = {}
    missing: dict[str, int] = {}
    uncertain_counts: dict[str, int] = {}
    unc: dict[str, tuple[int, float]] = {}
    timed = points > 0
    for lk, n, with_score, unsure, packed, unc_n, unc_total in run(
        conn,
        _scores.series_statement(key, where, uncertain=uncertain, timed=timed, tasks=tasks),
        params,
        binary=True,
    ):
        # one row per key and range of ids: the counts and sums add up, the records are joined
        missing[lk] = missing.get(lk, 0) + n - with_score
        uncertain_counts[lk] = uncertain_counts.get(lk, 0) + unsure
        records.setdefault(lk, []).append(packed or b"")
        count, total = unc.get(lk, (0, 0.0))
        unc[lk] = (count + unc_n, total + (unc_total or 0.0))
    out: dict[str, Series] = {}
    timeline: Timeline | None = {} if timed else None
    by_hash: dict[str, dict[int, tuple[float, int]]] = {}  # per key: task hash -> (sum, sessions)
    for lk in sorted(records):
        packed = _unpack(b"".join(records[lk]), timed=timed, tasks=tasks)
        scores, ids = packed["score"], packed["id"]
        sample, lowest = _summary(scores, ids, digits=digits, worst=worst)
        if timeline is not None and len(scores):
            newest = _newest(scores, ids, packed["created"], points=points, zone=conn.info.timezone)
            if newest is None:  # a time Python cannot hold: fetch_timeline says so the way psycopg does
                timeline = None
            else:
                timeline[lk] = newest
        if tasks and len(scores):
            by_hash[lk] = _task_sums(packed["task"], scores, max_tasks=max_tasks)
        unc_n, unc_total = unc[lk]
        out[lk] = Series(
            lk,
            sample,
            missing[lk],
            lowest,
            None,
            unc_total / unc_n if sample.n and unc_n else None,
            uncertain_counts[lk],
            digits,
        )
    if tasks:
        task_means = _task_means(conn, by_hash, key, where, params, uncertain=uncertain)
        out = {lk: replace(s, tasks=task_means.get(lk) or None) if s.n else s for lk, s in out.items()}
    return out, timeline


def _unpack(records: bytes, *, timed: bool, tasks: bool) -> dict[str, Any]:
    """The fields of records packed by the series statement (see :func:`._scores.record_fields`)
    as native arrays: ``score`` (float64), ``id``, ``created`` and ``task`` (int64)."""
    import numpy as np

    fields = _scores.record_fields(timed=timed, tasks=tasks)
    packed = np.frombuffer(records, dtype=np.dtype(fields))
    return {name: packed[name].astype(np.float64 if name == "score" else np.int64) for name, _ in fields}


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
    *,
    uncertain: bool,
) -> dict[str, dict[str, tuple[float, int]]]:
    """Per key, task -> (mean score, sessions), from the per-hash sums and the names of those
    hashes (read without the scores); when two tasks of one key share a hash (or a name cannot be
    found), from the exact statement grouped by key and task."""
    wanted = sorted({h for sums in by_hash.values() for h in sums})
    if not wanted:
        return {}
    names: dict[str, dict[int, set[str]]] = {}
    for lk, task, hashed in run(conn, _scores.task_names_statement(key, where), {**params, "task_hashes": wanted}):
        names.setdefault(lk, {}).setdefault(int(hashed), set()).add(task)
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for lk, sums in by_hash.items():
        found = names.get(lk, {})
        if any(len(found.get(h, ())) != 1 for h in sums):  # a collision: read the exact sums
            out = {}
            for row_key, task, n, total in run(conn, _scores.task_statement(key, where, uncertain=uncertain), params):
                out.setdefault(row_key, {})[task] = (total / n, n)
            return out
        if sums:
            out[lk] = {next(iter(found[h])): (total / n, n) for h, (total, n) in sums.items()}
    return out


#: PostgreSQL's timestamp epoch
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _newest(
    scores: FloatArray, ids: IntArray, created: IntArray, *, points: int, zone: tzinfo
) -> list[tuple[str, float, int]] | None:
    """The newest ``points`` sessions (latest ``created_at``, then highest id) as (ISO time in
    ``zone``, score, id), oldest first: what :func:`fetch_timeline` reads. None when a time is
    beyond what Python's datetime holds (PostgreSQL's infinity)."""
    import numpy as np

    if len(created) > points:  # every time from the points-th latest on (ties included)
        cut = np.partition(created, len(created) - points)[len(created) - points]
        near = np.flatnonzero(created >= cut)
    else:
        near = np.arange(len(created))
    chosen = near[np.lexsort((ids[near], created[near]))][-points:]
    try:
        times = [(_EPOCH + timedelta(microseconds=int(t))).astimezone(zone).isoformat() for t in created[chosen]]
    except OverflowError:
        return None
    return list(zip(times, scores[chosen].tolist(), ids[chosen].tolist(), strict=True))


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
        rough = float(scores.sum()) / n
        mean = rough + float((scores - rough).sum()) / n  # two passes: the rounding of the first corrected
        if n > 1:
            deviations = scores - mean
            variance = float(np.dot(deviations, deviations)) / (n - 1)
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
