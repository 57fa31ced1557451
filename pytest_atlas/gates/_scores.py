"""Reward scores read in SQL: the score expression, and the statements a reward series is built from.

A score is ``reward_stats.score``, falling back to ``reward_stats.score_mean``, read the
quirk-tolerant way: a JSON number or a string holding an ordinary number counts; NaN, Infinity,
words, booleans, objects and magnitudes from 1e100 up (or nonzero below 1e-100: their squares would
leave float8's range in the variance) count as no score, never as a query error. Almost every stored
score is a plain JSON number, so the expression tries a cheap path first
(``(reward_stats ->> 'score')::float8``, the expression of Atlas's own score index, taken only for
a JSON number whose decimal text is short enough that the cast cannot fail) and evaluates the slow,
quirk-tolerant path only for the rows that need it. Both paths give the same float for every value
(PostgreSQL converts a jsonb number to float8 through its decimal text), which the tests check on
every shape a stored score takes.

The series statement has a cheaper form, *bare* (see :func:`series_statement`), for the
common case: a JSON number is cast without the length guard, so the cast raises for a number
outside float8's range and passes any other magnitude through; the caller checks the packed values
and reads the exact form when the bare one raised or packed a magnitude the exact one might treat
otherwise (:func:`ordinary`).

The series statement scans the selected sessions once, computing each session's score and
uncertainty once, and groups them by learning key into a row per key: the sessions, those with a
usable score, and those packed (score, id and uncertainty in a byte string; with a session's time
for a chart's newest scores or the window of ``last``, with the hash of its task for per-task
means), from which the caller computes the frequency table, the exact moments, the lowest
sessions and what ``max_uncertainty`` leaves out. The task hashes are named by a scan that reads
no score; the exact statement grouped by key and task is read only when two tasks of a key share
a hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

__all__ = [
    "CHUNK",
    "MAX_RANGES",
    "NUMBER_PATTERN",
    "SIZE_STATEMENT",
    "SPLIT_BLOCKS",
    "SPLIT_PLANNER",
    "TASK_HASH",
    "block_ranges",
    "number",
    "ordinary",
    "record_fields",
    "score",
    "series_statement",
    "task_names_statement",
]

#: a number as Python's float() and PostgreSQL's float8 both read it (no NaN, no Infinity)
NUMBER_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"

#: a jsonb number's text (PostgreSQL writes it without exponent) shorter than this is zero or lies
#: strictly between 1e-98 and 1e99 in magnitude: an ordinary number whose float8 cast cannot fail
_SHORT = sql.Literal(100)


def _in_range(value: sql.Composable) -> sql.Composable:
    """``value`` (numeric) is zero or has a magnitude in [1e-100, 1e100): an ordinary number."""
    return sql.SQL("(abs({v}) < 1e100 AND ({v} = 0 OR abs({v}) >= 1e-100))").format(v=value)


def _slow(element: sql.Composable) -> sql.Composable:
    text = sql.SQL("({e} #>> '{{}}')").format(e=element)
    return sql.SQL(
        "(CASE jsonb_typeof({e}) "
        "WHEN 'number' THEN CASE WHEN {number_ok} THEN ({e})::float8 END "
        "WHEN 'string' THEN CASE WHEN {t} ~ %(number_pattern)s THEN "
        "CASE WHEN {text_ok} THEN {t}::float8 END END END)"
    ).format(
        e=element,
        t=text,
        number_ok=_in_range(sql.SQL("({e})::numeric").format(e=element)),
        text_ok=_in_range(sql.SQL("{t}::numeric").format(t=text)),
    )


def number(column: str, key: str, *, fast: bool = True, bare: bool = False, alias: str = "s") -> sql.Composable:
    """float8 of ``alias.column -> key`` when it is a number, or a string holding an ordinary
    number; else NULL. ``fast=False`` gives the quirk-tolerant path alone (same values, slower);
    needs the parameter ``number_pattern`` (:data:`NUMBER_PATTERN`).

    ``bare``: a JSON number is cast as it is (two reads of the field instead of three): the cast
    raises NumericValueOutOfRange for a magnitude float8 cannot hold and returns any other one,
    also those the exact expression counts as no number; equal to the exact expression wherever
    :func:`ordinary` accepts the result."""
    element = sql.SQL("({a}.{c} -> {k})").format(a=sql.Identifier(alias), c=sql.Identifier(column), k=sql.Literal(key))
    if not fast:
        return _slow(element)
    text = sql.SQL("({a}.{c} ->> {k})").format(a=sql.Identifier(alias), c=sql.Identifier(column), k=sql.Literal(key))
    guard = sql.SQL("") if bare else sql.SQL(" AND length({t}) < {short}").format(t=text, short=_SHORT)
    return sql.SQL("(CASE WHEN jsonb_typeof({e}) = 'number'{guard} THEN {t}::float8 ELSE {slow} END)").format(
        e=element, t=text, guard=guard, slow=_slow(element)
    )


def score(*, fast: bool = True, bare: bool = False, alias: str = "s") -> sql.Composable:
    """The gate's score of a session row: ``reward_stats.score``, else ``reward_stats.score_mean``
    (``bare``: see :func:`number`)."""
    return sql.SQL("COALESCE({a}, {b})").format(
        a=number("reward_stats", "score", fast=fast, bare=bare, alias=alias),
        b=number("reward_stats", "score_mean", fast=fast, bare=bare, alias=alias),
    )


#: the magnitudes a bare statement's values are taken in: a decade inside the exact expression's
#: [1e-100, 1e100), so that no rounding of a decimal to float8 can put a value on the wrong side
_LOW, _HIGH = 1e-99, 1e99


def ordinary(values: Any) -> bool:
    """Whether every value of a float array a bare statement packed (NaN where there is none) is
    zero or has a magnitude in [1e-99, 1e99]: where the bare expression is certainly equal to the
    exact one. Else the caller reads the exact statement."""
    import numpy as np

    magnitude = np.abs(values)
    return bool(np.all(np.isnan(magnitude) | (magnitude == 0) | ((magnitude >= _LOW) & (magnitude <= _HIGH))))


def _rows(
    key: sql.Composable, where: sql.Composable, *, timed: bool = False, tasks: bool = False, bare: bool = False
) -> sql.Composable:
    """The selected sessions ``s``, each with its learning key ``e.lk`` and its score, id and
    uncertainty (with ``timed`` its time, with ``tasks`` the hash of its task) packed into the bytes
    ``e.rec`` (see :func:`record_fields`; NULL without a usable score).

    The lateral subquery on the nullable side of an outer join makes PostgreSQL compute each
    expression once per row (a placeholder the scan evaluates and the nodes above refer to), where
    a plain subquery would copy the expression into every place that uses it. The statement groups
    by the placeholder ``e.lk`` itself and aggregates placeholders, never an expression of one: in a
    grouping key such an expression is computed by the scan, which would compute the score a second
    time."""
    # an uncertainty that is no number is packed as NaN (no score or uncertainty read is NaN)
    columns = sql.SQL(
        "float8send({score}) || int8send(s.id::int8) || COALESCE(float8send({u}), float8send('NaN')){timed}{tasks} "
        "AS rec"
    ).format(
        score=score(bare=bare),
        u=number("reward_stats", "uncertainty_mean", bare=bare),
        timed=sql.SQL(" || timestamptz_send(s.created_at)") if timed else sql.SQL(""),
        tasks=sql.SQL(" || int8send({hash})").format(hash=TASK_HASH) if tasks else sql.SQL(""),
    )
    return sql.SQL("sessions AS s LEFT JOIN LATERAL (SELECT {columns}, {key} AS lk) AS e ON TRUE WHERE {where}").format(
        columns=columns, key=key, where=where
    )


#: the series statement packs the sessions of 2**24 consecutive ids into one byte string at most
#: (640 MiB at 40 bytes a session), below PostgreSQL's 1 GiB limit of a value, however many sessions a key has
CHUNK = 2**24

#: what a series read plans with: the highest session id (through the primary key's index; below
#: :data:`CHUNK`, no key's sessions need more than one byte string), the table's heap blocks (0 for a
#: view or a partitioned table), the parallel workers a query may have, the server's version
SIZE_STATEMENT = sql.SQL(
    "SELECT (SELECT max(id) FROM sessions), pg_relation_size('sessions'::regclass) / "
    "current_setting('block_size')::int8, current_setting('max_parallel_workers_per_gather')::int, "
    "current_setting('server_version_num')::int"
).format()

#: a scan of at least this many heap blocks (16 MiB at 8 KiB a block, some 80,000 sessions) is split
#: into block ranges (see :func:`block_ranges`)
SPLIT_BLOCKS = 2048
#: into at most this many ranges
MAX_RANGES = 4
#: TID range scans: PostgreSQL 14 and later
_TID_RANGES = 140000


def block_ranges(blocks: int, workers: int, version: int) -> list[int]:
    """The first block of every range but the first that a series statement over a table of
    ``blocks`` heap blocks is split into (see :func:`series_statement`), on a server of
    ``version`` whose queries may have ``workers`` parallel workers: a range per process (the
    workers and the leader), at most :data:`MAX_RANGES`; none (no split) for a small table, a server
    without parallel workers or without TID range scans."""
    parts = min(workers + 1, MAX_RANGES)
    if blocks < SPLIT_BLOCKS or parts < 2 or version < _TID_RANGES:
        return []
    return [blocks * i // parts for i in range(1, parts)]


#: the planner settings of a split series statement: moving a session's row from a worker to the
#: leader is costed high, so that each range is grouped where it is scanned (the plan
#: ``Gather -> Parallel Append -> HashAggregate -> Tid Range Scan``), not every row gathered first
SPLIT_PLANNER = {"parallel_tuple_cost": "10"}

#: a session's task as the series statement packs it: a 64-bit hash with a seed drawn per read
#: (``task_seed``: nobody can pick task texts that collide in advance; see :func:`task_names_statement`)
TASK_HASH = sql.SQL("hashtextextended(s.task, %(task_seed)s::int8)")


def record_fields(*, timed: bool = False, tasks: bool = False) -> list[tuple[str, str]]:
    """The fields of one scored session as :func:`series_statement` packs it, as numpy reads them
    (name, big-endian type): ``score`` (float8), ``id`` (int8), ``u`` (its uncertainty, NaN for
    none); with ``timed`` ``created`` (its ``created_at`` in microseconds since 2000-01-01 UTC); with
    ``tasks`` ``task`` (the hash of its task, :data:`TASK_HASH`)."""
    fields = [("score", ">f8"), ("id", ">i8"), ("u", ">f8")]
    if timed:
        fields.append(("created", ">i8"))
    if tasks:
        fields.append(("task", ">i8"))
    return fields


def series_statement(
    key: sql.Composable,
    where: sql.Composable,
    *,
    timed: bool = False,
    tasks: bool = False,
    chunked: bool = False,
    bare: bool = False,
    ranges: Sequence[int] = (),
) -> sql.Composed:
    """From one scan, one row per learning key (``chunked``: per key and :data:`CHUNK` session
    ids, ``s.id >> 24``, for a table whose ids reach :data:`CHUNK`; see :data:`SIZE_STATEMENT`):
    ``lk, n, scored, records``: ``n`` selected sessions, ``scored`` of them with a usable score,
    ``records`` those packed, 24 bytes each, 8 more with ``timed`` and with ``tasks``
    (:func:`record_fields`; read them with a binary cursor), NULL when there is none. The caller
    applies ``max_uncertainty`` and ``last`` to the records.

    Grouping a million sessions into a row per key costs the server a fraction of grouping them
    by key and rounded score (tens of thousands of groups: a hash table the processor's caches do
    not hold); the frequency table, the exact moments, the lowest sessions and the uncertainty's
    mean (summed pairwise: a sum of a million floats in one accumulator drifts by 1e-11) are
    computed from the records, which the server and the client hold while the series are built.

    ``bare``: the scores and uncertainties read the bare way (:func:`number`): a third cheaper
    for the server; the statement may raise NumericValueOutOfRange, and its packed values count
    only where :func:`ordinary` accepts them (else read the exact statement, ``bare`` false).

    ``ranges``: the scan split into ranges of heap blocks, each starting at one of these blocks
    (the first at block 0; see :func:`block_ranges`), each grouped on its own: several rows per key
    then, whose counts add up and whose records join. Every row version the statement's snapshot
    sees lies in exactly one range, so the rows are the same; with :data:`SPLIT_PLANNER` the
    parallel workers each scan and group a range where one scan would send every session's row to
    the leader to be grouped there.

    Parameters: ``number_pattern``.
    """

    def grouped(within: sql.Composable) -> sql.Composed:
        return sql.SQL(
            "SELECT e.lk, count(*) AS n, count(e.rec) AS scored, string_agg(e.rec, ''::bytea) AS records "
            "FROM {rows} GROUP BY 1{chunks}"
        ).format(
            chunks=sql.SQL(", s.id >> 24") if chunked else sql.SQL(""),
            rows=_rows(key, within, timed=timed, tasks=tasks, bare=bare),
        )

    if not ranges:
        return grouped(where)
    starts = [None, *ranges]
    ends = [*ranges, None]
    parts = []
    for start, end in zip(starts, ends, strict=True):
        bounds: list[sql.Composable] = [where]
        if start is not None:
            bounds.append(sql.SQL("s.ctid >= {t}::tid").format(t=sql.Literal(f"({int(start)},0)")))
        if end is not None:
            bounds.append(sql.SQL("s.ctid < {t}::tid").format(t=sql.Literal(f"({int(end)},0)")))
        parts.append(sql.SQL("({})").format(grouped(sql.SQL(" AND ").join(bounds))))
    return sql.SQL(" UNION ALL ").join(parts)


def task_names_statement(key: sql.Composable, where: sql.Composable) -> sql.Composed:
    """``lk, task, hash``: every distinct (learning key, task) of the selected sessions whose
    task's :data:`TASK_HASH` is in ``task_hashes``: the names of the hashes a series statement
    packed. Two names of one hash in a key (a collision) is the caller's to notice. No score is
    read, so this scan costs a fraction of the series statement's. Each distinct (key, task) is
    hashed once, not each session (``OFFSET 0`` keeps the hash above the grouping).

    Parameters: ``task_hashes``."""
    return sql.SQL(
        "SELECT lk, task, hash FROM (SELECT s.lk, s.task, {hash} AS hash FROM "
        "(SELECT DISTINCT {key} AS lk, s.task FROM sessions AS s WHERE {where}) AS s OFFSET 0) AS named "
        "WHERE hash = ANY(%(task_hashes)s::int8[])"
    ).format(key=key, hash=TASK_HASH, where=where)
