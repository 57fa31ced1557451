"""Reading reward series from an Atlas database, with the filtering and aggregation done in SQL.

A gate over a million sessions fetches, per learning key: one row of exact moments, one row per
distinct (rounded) score, the few worst sessions, and -- only when there are few enough -- one row
per task. All SQL is composed with :mod:`psycopg.sql`; user values travel as parameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from pytest_atlas._dsn import Dsn
from pytest_atlas.db import connect_target
from pytest_atlas.errors import GateError, InvalidArgument, ProvisioningError
from pytest_atlas.gates._selection import Selection
from pytest_atlas.stats._sample import Sample

__all__ = [
    "ALL_KEYS",
    "MAX_COUNT",
    "Series",
    "check_series",
    "connection",
    "fetch_drift_inputs",
    "fetch_modes",
    "fetch_review",
    "fetch_series",
    "fetch_timeline",
    "read_only",
    "selection_filter",
]

#: the "learning key" of a series that pools every key
ALL_KEYS = "*"

#: a number as Python's float() and PostgreSQL's float8 both read it (no NaN, no Infinity)
_NUMBER_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"

# ------------------------------------------------------------------------------------------------
# connections
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def connection(source: psycopg.Connection[Any] | str | Dsn, *, timeout: int = 10) -> Iterator[psycopg.Connection[Any]]:
    """Yield a connection: the one given, or a new read-only one to the DSN given (closed afterwards).

    Queries run inside ``conn.transaction()`` (a savepoint when a transaction is open) that is
    READ ONLY and always rolled back, so a failed query never leaves the caller's transaction
    aborted and nothing is ever written or committed.
    """
    if isinstance(source, psycopg.Connection):
        yield source
        return
    if not isinstance(source, str | Dsn):
        raise InvalidArgument(
            f"expected a psycopg connection or a DSN string, got {type(source).__name__}",
            hint="pass atlas_db, or a URL such as postgresql://user@host/dbname",
        )
    try:
        conn = connect_target(source, timeout=timeout)
    except ProvisioningError as exc:
        raise GateError(f"cannot connect to the gate database: {exc.problem}", hint=exc.hint) from None
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def read_only(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
    """A cursor in a READ ONLY transaction (a savepoint when one is open) that is always rolled back;
    a failed query raises GateError saying what was wrong (no Atlas tables, no read rights)."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            yield cursor
    except psycopg.errors.UndefinedTable:
        raise GateError(
            "the database has no 'sessions' table: it is not an Atlas database",
            hint="point --atlas-target at the database your Atlas harness writes to",
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise GateError(
            f"the role {user!r} may not read the Atlas tables: {str(exc).strip().splitlines()[0]}",
            hint=f"grant it read access (GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}), or use a role "
            "that can read them",
        ) from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GateError(
            f"gate query failed: {first}",
            hint="check that the database has Atlas's schema (pytest-atlas ships it as "
            "schema.sql); the query is read-only",
        ) from None


def _run(conn: psycopg.Connection[Any], query: sql.Composed, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    with read_only(conn) as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


# ------------------------------------------------------------------------------------------------
# SQL pieces
# ------------------------------------------------------------------------------------------------


def _number(element: sql.Composable) -> sql.Composable:
    """float8 of a jsonb element when it is a number, or a string holding an ordinary number; else NULL
    (never a cast error: NaN, Infinity, words, booleans, objects and values beyond 1e300 give NULL)."""
    return sql.SQL(
        "(CASE jsonb_typeof({e}) "
        "WHEN 'number' THEN CASE WHEN abs(({e})::numeric) < 1e300 THEN ({e})::float8 END "
        "WHEN 'string' THEN CASE WHEN ({e} #>> '{{}}') ~ %(number_pattern)s THEN "
        "CASE WHEN abs(({e} #>> '{{}}')::numeric) < 1e300 THEN ({e} #>> '{{}}')::float8 END END END)"
    ).format(e=element)


_SCORE = sql.SQL("COALESCE({a}, {b})").format(
    a=_number(sql.SQL("(s.reward_stats -> 'score')")),
    b=_number(sql.SQL("(s.reward_stats -> 'score_mean')")),
)
_UNCERTAINTY = _number(sql.SQL("(s.reward_stats -> 'uncertainty_mean')"))


def _filters(selection: Selection, params: dict[str, Any]) -> sql.Composable:
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    if selection.learning_key is not None:
        clauses.append(sql.SQL("(s.metadata ->> 'learning_key') = ANY(%(learning_keys)s)"))
        params["learning_keys"] = list(selection.learning_key)
    if selection.since is not None:
        clauses.append(sql.SQL("s.created_at >= %(since)s"))
        params["since"] = selection.since
    if selection.until is not None:
        clauses.append(sql.SQL("s.created_at < %(until)s"))
        params["until"] = selection.until
    if selection.status is not None:
        clauses.append(sql.SQL("s.status = ANY(%(statuses)s)"))
        params["statuses"] = list(selection.status)
    if selection.review_status is not None:
        clauses.append(sql.SQL("s.review_status = ANY(%(review_statuses)s)"))
        params["review_statuses"] = list(selection.review_status)
    if selection.excludes_quarantined():
        clauses.append(sql.SQL("s.review_status IS DISTINCT FROM 'quarantined'"))
    if selection.metadata is not None:
        clauses.append(sql.SQL("s.metadata @> %(metadata)s"))
        params["metadata"] = Jsonb(dict(selection.metadata))
    if selection.task is not None:
        clauses.append(sql.SQL("s.task = ANY(%(tasks)s)"))
        params["tasks"] = list(selection.task)
    return sql.SQL(" AND ").join(clauses)


def selection_filter(selection: Selection, params: dict[str, Any]) -> sql.Composable:
    """The WHERE condition (over ``sessions AS s``) of a selection; its parameters go into ``params``."""
    return _filters(selection, params)


def _key(by_key: bool) -> sql.Composable:
    return sql.SQL("COALESCE(s.metadata ->> 'learning_key', '')") if by_key else sql.Literal(ALL_KEYS)


def _scored(selection: Selection, by_key: bool, params: dict[str, Any]) -> sql.Composable:
    """CTEs ``matched`` (every selected session with its score or NULL) and ``scored`` (the scored
    ones, limited to the newest ``last`` per key)."""
    params["number_pattern"] = _NUMBER_PATTERN
    matched = sql.SQL(
        "matched AS (SELECT s.id, s.task, s.created_at, {key} AS lk, {score} AS score, "
        "{uncertainty} AS uncertainty FROM sessions AS s WHERE {where})"
    ).format(key=_key(by_key), score=_SCORE, uncertainty=_UNCERTAINTY, where=_filters(selection, params))
    usable = sql.SQL("score IS NOT NULL")
    if selection.max_uncertainty is not None:
        params["max_uncertainty"] = selection.max_uncertainty
        usable = sql.SQL("score IS NOT NULL AND (uncertainty IS NULL OR uncertainty <= %(max_uncertainty)s)")
    if selection.last is None:
        scored = sql.SQL("scored AS (SELECT * FROM matched WHERE {usable})").format(usable=usable)
    else:
        params["last"] = selection.last
        scored = sql.SQL(
            "scored AS (SELECT * FROM (SELECT m.*, row_number() OVER "
            "(PARTITION BY lk ORDER BY created_at DESC, id DESC) AS recency FROM matched AS m "
            "WHERE {usable}) AS ranked WHERE recency <= %(last)s)"
        ).format(usable=usable)
    return sql.SQL("WITH {matched}, {scored} ").format(matched=matched, scored=scored)


# ------------------------------------------------------------------------------------------------
# reward series
# ------------------------------------------------------------------------------------------------


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
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_COUNT:
        raise _bad(f"{name} must be an integer from {low} to 2**53, got {_shown(value)}")
    return value


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{name} must be a finite number, got {_shown(value)}")
    return float(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        raise _bad(f"expected a series object, got {_shown(data)}")
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
        raise _bad(f"learning_key must be a string, got {_shown(key)}")
    digits = data["digits"]
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 12:
        raise _bad(f"digits must be an integer from 0 to 12, got {_shown(digits)}")
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
            raise _bad(f"worst[{index}] must be a [session id, score] pair, got {_shown(pair)}")
        worst.append((_count(f"worst[{index}][0]", pair[0], low=1), _real(f"worst[{index}][1]", pair[1])))
    if worst != sorted(worst, key=lambda item: (item[1], item[0])) or len({s for s, _ in worst}) != len(worst):
        raise _bad("worst must list distinct sessions, lowest score first")
    if worst and abs(round(worst[0][1] * scale) / scale - floats[0]) > half + 1e-9:
        raise _bad(f"the lowest score in worst ({worst[0][1]!r}) is not the table's lowest value ({floats[0]!r})")
    raw_tasks = data["tasks"]
    tasks: dict[str, tuple[float, int]] | None = None
    if raw_tasks is not None:
        if not isinstance(raw_tasks, Mapping):
            raise _bad(f"tasks must be null or an object of task -> [mean, count], got {_shown(raw_tasks)}")
        tasks = {}
        for task, pair in raw_tasks.items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad(f"tasks[{task!r}] must be a [mean, count] pair, got {_shown(pair)}")
            tasks[str(task)] = (_real(f"tasks[{task!r}][0]", pair[0]), _count(f"tasks[{task!r}][1]", pair[1], low=1))
        if sum(count for _, count in tasks.values()) != n:
            raise _bad(f"the task counts add up to {sum(c for _, c in tasks.values())}, not n = {n}")
        if n:
            weighted = math.fsum(m * c for m, c in tasks.values()) / n
            if not math.isclose(weighted, float(mean), rel_tol=1e-9, abs_tol=1e-9):
                raise _bad(f"the per-task means average to {weighted:.6g}, not to the mean {mean!r}")
    sample = Sample.from_counts(
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
) -> dict[str, Series]:
    """The reward series of the selected sessions, one per learning key (or one pooled series).

    Scores are ``reward_stats.score``, falling back to ``score_mean`` (as Atlas's drift detector
    reads them). The frequency table is rounded to ``digits`` decimals; the mean and variance are
    exact. Keys without a single scored session still appear (n = 0) when they have sessions.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 12:
        raise InvalidArgument(f"digits must be an integer from 0 to 12, got {digits!r}", hint="digits=4")
    params: dict[str, Any] = {"worst": max(worst, 1), "max_tasks": max_tasks}
    # One statement: PostgreSQL materialises the selected sessions once (a CTE used several times)
    # and returns a handful of row kinds: m = moments per key, v = frequency table, x = sessions
    # without a usable score, w = the worst sessions, t = per-task means (keys with few tasks only).
    params["scale"] = float(10**digits)
    query = _scored(selection, by_key, params) + sql.SQL(
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
        "UNION ALL SELECT 'w', lk, score, rank, NULL, NULL, NULL, id, NULL FROM worst WHERE rank <= %(worst)s "
        "UNION ALL SELECT 't', lk, NULL, c, mean, NULL, NULL, NULL, task FROM tasks WHERE ntasks <= %(max_tasks)s"
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
    tasks: dict[str, dict[str, tuple[float, int]]] = {}
    for kind, key, value, count, mean, variance, uncertainty, session, task in _run(conn, query, params):
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
            tasks.setdefault(key, {})[task] = (float(mean), int(count))
    out: dict[str, Series] = {}
    for key in sorted(set(moments) | set(missing) | set(uncertain)):
        table_rows = values.get(key, [])
        n, mean, variance, uncertainty = moments.get(key, (0, math.nan, None, None))
        sample = Sample.from_counts(
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
            tasks.get(key) if n else None,
            uncertainty,
            uncertain.get(key, 0),
            digits,
        )
    return out


def fetch_timeline(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, points: int = 300
) -> dict[str, list[tuple[str, float, int]]]:
    """Per key, the newest ``points`` scored sessions of the selection as (ISO time, score, id),
    oldest first: the reward series a chart draws (the gate's statistics never read it)."""
    params: dict[str, Any] = {"points": max(points, 1)}
    query = _scored(selection, by_key, params) + sql.SQL(
        "SELECT lk, created_at, score, id FROM (SELECT lk, created_at, score, id, row_number() OVER "
        "(PARTITION BY lk ORDER BY created_at DESC, id DESC) AS r FROM scored) AS t WHERE r <= %(points)s "
        "ORDER BY lk, created_at, id"
    )
    out: dict[str, list[tuple[str, float, int]]] = {}
    for key, created, score, session in _run(conn, query, params):
        out.setdefault(key, []).append((created.isoformat(), float(score), int(session)))
    return out


# ------------------------------------------------------------------------------------------------
# review status, execution modes, drift inputs
# ------------------------------------------------------------------------------------------------


def _tally(
    conn: psycopg.Connection[Any], selection: Selection, column: sql.Composable, *, by_key: bool, worst: int, name: str
) -> dict[str, dict[str, Any]]:
    """Per key: ``total``, and per value of ``column``: a count (under ``name``) and up to ``worst``
    session ids, newest first (under ``ids``)."""
    params: dict[str, Any] = {"worst": worst}
    query = sql.SQL(
        "SELECT lk, value, count(*), (array_agg(id ORDER BY id DESC))[1:%(worst)s] FROM "
        "(SELECT {key} AS lk, {column} AS value, s.id FROM sessions AS s WHERE {where}) AS r "
        "GROUP BY lk, value"
    ).format(key=_key(by_key), column=column, where=_filters(selection, params))
    out: dict[str, dict[str, Any]] = {}
    for key, value, count, ids in _run(conn, query, params):
        entry = out.setdefault(key, {"total": 0, name: {}, "ids": {}})
        entry["total"] += int(count)
        entry[name][value] = int(count)
        entry["ids"][value] = [int(i) for i in ids]
    return out


def fetch_review(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, worst: int = 5
) -> dict[str, dict[str, Any]]:
    """Per key: ``total``, counts per review status, and up to ``worst`` quarantined / pending ids.

    Quarantined sessions are counted whatever the selection says about them.
    """
    seen = Selection(**{**selection.__dict__, "include_quarantined": True})
    return _tally(conn, seen, sql.SQL("s.review_status"), by_key=by_key, worst=worst, name="statuses")


def fetch_modes(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, worst: int = 5
) -> dict[str, dict[str, Any]]:
    """Per key: ``total`` and, per ``metadata.execution_mode`` (None when absent), a count and ids."""
    return _tally(conn, selection, sql.SQL("s.metadata ->> 'execution_mode'"), by_key=by_key, worst=worst, name="modes")


@dataclass(frozen=True)
class DriftInput:
    """One assessed session: its stats, what Atlas stored, and its baseline rows, newest first."""

    session_id: int
    learning_key: str
    reward_stats: Any
    stored_drift: Any
    stored_alert: Any
    history: tuple[Any, ...]


def fetch_drift_inputs(
    conn: psycopg.Connection[Any], selection: Selection, *, window: int = 50, last: int = 50
) -> list[DriftInput]:
    """The newest ``last`` selected sessions per key that have reward_stats, each with the rows Atlas's
    baseline would have held when it was assessed: the newest ``window`` sessions of the same
    learning key (of every key when it has none) with reward_stats, created no later than it."""
    limited = Selection(**{**selection.__dict__, "last": selection.last or last})
    params: dict[str, Any] = {"window": max(window, 1), "last": limited.last}
    where = _filters(limited, params)
    query = sql.SQL(
        "WITH assessed AS (SELECT * FROM (SELECT s.id, s.created_at, s.reward_stats, "
        "NULLIF(s.metadata ->> 'learning_key', '') AS lk, s.metadata -> 'drift' AS drift, "
        "s.metadata -> 'drift_alert' AS drift_alert, row_number() OVER (PARTITION BY "
        "s.metadata ->> 'learning_key' ORDER BY s.created_at DESC, s.id DESC) AS recency "
        "FROM sessions AS s WHERE s.reward_stats IS NOT NULL AND {where}) AS r "
        "WHERE recency <= %(last)s) "
        "SELECT a.id, COALESCE(a.lk, ''), a.reward_stats, a.drift, a.drift_alert, "
        "ARRAY(SELECT h.reward_stats FROM sessions AS h WHERE h.reward_stats IS NOT NULL "
        "AND (a.lk IS NULL OR h.metadata ->> 'learning_key' = a.lk) "
        "AND (h.created_at, h.id) <= (a.created_at, a.id) "
        "ORDER BY h.created_at DESC, h.id DESC LIMIT %(window)s) "
        "FROM assessed AS a ORDER BY a.created_at, a.id"
    ).format(where=where)
    return [DriftInput(int(row[0]), row[1], row[2], row[3], row[4], tuple(row[5])) for row in _run(conn, query, params)]
