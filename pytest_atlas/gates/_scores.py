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
common case: the text of each field is read once and cast, with no type check and no length
guard, so the cast raises for a text that is no number or a number outside float8's range and
passes any other magnitude through; the caller checks the packed values and reads the exact form
when the bare one raised or packed a value the exact one might treat otherwise (:func:`ordinary`).
Where Atlas's score index stands (a write fails when a score cannot be cast), the bare read never
raises on a score.

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

#: a number as Python's float() and PostgreSQL's float8 both read it (no NaN, no Infinity), with
#: ASCII spaces around it: PostgreSQL's ``\s`` would also match Unicode spaces in a database whose
#: ctype is UTF-8, which the numeric cast then refuses
NUMBER_PATTERN = r"^[ \t\n\r\f\v]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r\f\v]*$"

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


def number(column: str, key: str, *, fast: bool = True, alias: str = "s") -> sql.Composable:
    """float8 of ``alias.column -> key`` when it is a number, or a string holding an ordinary
    number; else NULL. ``fast=False`` gives the quirk-tolerant path alone (same values, slower);
    needs the parameter ``number_pattern`` (:data:`NUMBER_PATTERN`)."""
    element = sql.SQL("({a}.{c} -> {k})").format(a=sql.Identifier(alias), c=sql.Identifier(column), k=sql.Literal(key))
    if not fast:
        return _slow(element)
    text = sql.SQL("({a}.{c} ->> {k})").format(a=sql.Identifier(alias), c=sql.Identifier(column), k=sql.Literal(key))
    return sql.SQL(
        "(CASE WHEN jsonb_typeof({e}) = 'number' AND length({t}) < {short} THEN {t}::float8 ELSE {slow} END)"
    ).format(e=element, t=text, short=_SHORT, slow=_slow(element))


def score(*, fast: bool = True, alias: str = "s") -> sql.Composable:
    """The gate's score of a session row: ``reward_stats.score``, else ``reward_stats.score_mean``."""
    return sql.SQL("COALESCE({a}, {b})").format(
        a=number("reward_stats", "score", fast=fast, alias=alias),
        b=number("reward_stats", "score_mean", fast=fast, alias=alias),
    )


def _bare_text(column: str, *keys: str) -> sql.Composable:
    """The text of the first of ``keys`` in ``s.column`` that is there and no JSON null: one read
    of the field (the bare form's)."""
    reads = [sql.SQL("(s.{c} ->> {k})").format(c=sql.Identifier(column), k=sql.Literal(key)) for key in keys]
    return reads[0] if len(reads) == 1 else sql.SQL("COALESCE({})").format(sql.SQL(", ").join(reads))


def _bare_cast(text: sql.Composable) -> sql.Composable:
    """float8 of the text ``text`` (a placeholder: read once), NULL for none; NaN for a text with
    an ``x`` (float8's input reads ``0x10`` as 16, a hexadecimal the exact form counts as no
    number; a JSON number's text never has one). Raises InvalidTextRepresentation for a text that
    is no number, NumericValueOutOfRange for one float8 cannot hold."""
    return sql.SQL(
        "(CASE WHEN strpos({t}, 'x') + strpos({t}, 'X') = 0 THEN {t}::float8 WHEN {t} IS NOT NULL THEN 'NaN' END)"
    ).format(t=text)


#: the magnitudes a bare statement's values are taken in: a decade inside the exact expression's
#: [1e-100, 1e100), so that no rounding of a decimal to float8 can put a value on the wrong side
_LOW, _HIGH = 1e-99, 1e99


def ordinary(values: Any, *, none: bool = True) -> bool:
    """Whether every value of a float array a bare statement packed is zero or has a magnitude in
    [1e-99, 1e99]: where the bare expression is certainly equal to the exact one. ``none``: NaN
    (the mark of no uncertainty) is accepted too; a score is never NaN in the exact form. Else the
    caller reads the exact statement."""
    import numpy as np

    magnitude = np.abs(values)
    accepted = (magnitude == 0) | ((magnitude >= _LOW) & (magnitude <= _HIGH))
    if none:
        accepted |= np.isnan(magnitude)
    return bool(np.all(accepted))


def _rows(
    key: sql.Composable, where: sql.Composable, *, timed: bool = False, tasks: bool = False, bare: bool = False
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """The selected sessions ``s``, each with its learning key ``e.lk``: the FROM and WHERE
    clauses, and the expressions of the grouped statement that count the sessions with a usable
    score and pack each one's score, id and uncertainty (with ``timed`` its time, with ``tasks``
    the hash of its task) into bytes (see :func:`record_fields`; NULL without a usable score).

    The lateral subquery on the nullable side of an outer join makes PostgreSQL compute each of
    its expressions once per row (a placeholder the scan evaluates and the nodes above refer to),
    where a plain subquery would copy the expression into every place that uses it. The statement
    groups by the placeholder ``e.lk`` itself, never by an expression of one: in a grouping key
    such an expression is computed by the scan, which would compute the score a second time.

    The exact form packs the record in the lateral subquery (``e.rec``). The ``bare`` form reads
    the texts of the score (``score``, else ``score_mean``) and the uncertainty there, once each
    (``e.ts``, ``e.tu``), and casts them to float8 in the aggregates' arguments, above the scan
    (see :func:`_bare_cast`): three reads of ``reward_stats`` and ``metadata`` a session, where the
    exact form's cheap path takes seven."""
    extra = sql.SQL("{timed}{tasks}").format(
        timed=sql.SQL(" || timestamptz_send(s.created_at)") if timed else sql.SQL(""),
        tasks=sql.SQL(" || int8send({hash})").format(hash=TASK_HASH) if tasks else sql.SQL(""),
    )
    # an uncertainty that is no number is packed as NaN (no score or uncertainty read is NaN)
    packed = "float8send({score}) || int8send(s.id::int8) || COALESCE(float8send({u}), float8send('NaN')){extra}"
    if bare:
        columns = sql.SQL("{ts} AS ts, {tu} AS tu").format(
            ts=_bare_text("reward_stats", "score", "score_mean"), tu=_bare_text("reward_stats", "uncertainty_mean")
        )
        scored: sql.Composable = sql.SQL("e.ts")
        record: sql.Composable = sql.SQL(packed).format(
            score=_bare_cast(sql.SQL("e.ts")), u=_bare_cast(sql.SQL("e.tu")), extra=extra
        )
    else:
        columns = sql.SQL(packed + " AS rec").format(
            score=score(), u=number("reward_stats", "uncertainty_mean"), extra=extra
        )
        scored = record = sql.SQL("e.rec")
    source = sql.SQL(
        "sessions AS s LEFT JOIN LATERAL (SELECT {columns}, {key} AS lk) AS e ON TRUE WHERE {where}"
    ).format(columns=columns, key=key, where=where)
    return source, scored, record


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
#: leader is costed high (a hundred times the default), so that each range is grouped where it is scanned (the plan
#: ``Gather -> Parallel Append -> HashAggregate -> Tid Range Scan``), not every row gathered first;
#: starting the workers is costed nothing: a table is split only from :data:`SPLIT_BLOCKS` on, where
#: the milliseconds a worker takes to start are a small part of its range's scan (the bare form's
#: cheap expressions would otherwise leave a table near that size to one process)
SPLIT_PLANNER = {"parallel_tuple_cost": "1", "parallel_setup_cost": "0"}

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

    ``bare``: the scores and uncertainties read the bare way (see :func:`_rows`): some 40% cheaper
    for the server; the statement may raise InvalidTextRepresentation or NumericValueOutOfRange,
    and its packed values count only where :func:`ordinary` accepts them (else read the exact
    statement, ``bare`` false).

    ``ranges``: the scan split into ranges of heap blocks, each starting at one of these blocks
    (the first at block 0; see :func:`block_ranges`), each grouped on its own: several rows per key
    then, whose counts add up and whose records join. Every row version the statement's snapshot
    sees lies in exactly one range, so the rows are the same; with :data:`SPLIT_PLANNER` the
    parallel workers each scan and group a range where one scan would send every session's row to
    the leader to be grouped there.

    Parameters: ``number_pattern``.
    """

    def grouped(within: sql.Composable) -> sql.Composed:
        source, scored, record = _rows(key, within, timed=timed, tasks=tasks, bare=bare)
        return sql.SQL(
            "SELECT e.lk, count(*) AS n, count({scored}) AS scored, string_agg({record}, ''::bytea) AS records "
            "FROM {source} GROUP BY 1{chunks}"
        ).format(
            scored=scored, record=record, source=source, chunks=sql.SQL(", s.id >> 24") if chunked else sql.SQL("")
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
