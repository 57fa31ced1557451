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

The series statement scans the selected sessions once, computing each session's score and
uncertainty once, and groups them by learning key and rounded score (at most 10**digits groups per
key, however many distinct exact scores there are) and, when a regression gate asks for them, by
key and task in the same scan: one row back per key and rounded score, carrying what the moments,
the frequency table and the lowest sessions are computed from, and one per key and task. The lowest
sessions are named by the buckets that hold a single session; when some share a bucket, the
sessions up to it are read again, through Atlas's score index when the database has it.
"""

from __future__ import annotations

from psycopg import sql

__all__ = [
    "NUMBER_PATTERN",
    "SCORE_INDEX_EXPRESSION",
    "SCORE_INDEX_STATEMENT",
    "lowest_statement",
    "number",
    "score",
    "series_statement",
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


def _rows(key: sql.Composable, where: sql.Composable, *, scale: bool = False) -> sql.Composable:
    """The selected sessions ``s``, each with its learning key ``e.lk``, score ``e.score`` and
    uncertainty ``e.u`` (and, with ``scale``, the one-row ``c.scale``).

    The lateral subquery on the nullable side of an outer join makes PostgreSQL compute each of
    the two expressions once per row (a placeholder the scan evaluates and the nodes above refer
    to), where a plain subquery would copy the expression into every place that uses it. The
    rounded score is an expression of ``e.score`` and ``c.scale``: PostgreSQL computes it in the
    join above the scan, from the score the scan computed, where ``round(e.score * %(scale)s)``
    would make the scan compute the score expression a second time."""
    scaled = sql.SQL(" CROSS JOIN (SELECT %(scale)s::float8 OFFSET 0) AS c(scale)") if scale else sql.SQL("")
    return sql.SQL(
        "sessions AS s LEFT JOIN LATERAL (SELECT {score} AS score, {u} AS u, {key} AS lk) AS e ON TRUE{scaled} "
        "WHERE {where}"
    ).format(score=score(), u=number("reward_stats", "uncertainty_mean"), key=key, scaled=scaled, where=where)


def _unsure(uncertain: bool) -> sql.Composable:
    return sql.SQL("COALESCE(e.u > %(max_uncertainty)s, FALSE)") if uncertain else sql.SQL("FALSE")


_SCALE = sql.SQL("%(scale)s")


def _bucket(scale: sql.Composable = _SCALE) -> sql.Composable:
    return sql.SQL("(round(e.score * {scale}) / {scale})").format(scale=scale)


def series_statement(
    key: sql.Composable, where: sql.Composable, *, uncertain: bool, tasks: bool = False
) -> sql.Composed:
    """From one scan, ``lk, unsure, value, by_task, task, n, total, m2, low_id, unc_n, unc_total``:

    * one row per (learning key ``lk``, rounded score ``value``, ``unsure``), ``by_task`` false:
      ``value`` is NULL for the sessions without a usable score; ``unsure`` is true for those left
      out by ``max_uncertainty`` (only with ``uncertain``); ``n`` sessions, ``total`` the sum of
      their scores, ``m2`` the sum of their squared deviations from ``value`` (the exact variance
      is combined from these), ``low_id`` the smallest session id (the session itself when ``n``
      is 1, its score then being ``total``); ``unc_n`` / ``unc_total`` count and add the
      uncertainties;
    * with ``tasks``, also one row per (key, ``task``) of the usable scores, ``by_task`` true, for
      the keys with at most ``max_tasks`` such tasks: ``n`` the sessions, ``total`` their scores' sum.

    Parameters: ``number_pattern``, ``scale``; ``max_uncertainty`` with ``uncertain``; ``max_tasks``
    with ``tasks``.
    """
    v = _bucket(sql.SQL("c.scale"))
    unsure = _unsure(uncertain)
    columns = sql.SQL(
        "e.lk, {unsure} AS unsure, {v} AS value, {by_task} AS by_task, {task} AS task, {n} AS n, "
        "sum(e.score) AS total, "
        "sum((e.score - {v}) * (e.score - {v})) AS m2, min(s.id)::int8 AS low_id, "
        "count(e.u) AS unc_n, sum(e.u) AS unc_total"
    )
    if not tasks:
        return sql.SQL("SELECT {columns} FROM {rows} GROUP BY 1, 2, 3").format(
            columns=columns.format(
                unsure=unsure, v=v, by_task=sql.SQL("FALSE"), task=sql.SQL("NULL::text"), n=sql.SQL("count(*)")
            ),
            rows=_rows(key, where, scale=True),
        )
    # grouping sets: the per-task sums come from the same scan as the buckets
    by_task = sql.SQL("GROUPING(s.task) = 0")
    return sql.SQL(
        "SELECT lk, unsure, value, by_task, task, n, total, m2, low_id, unc_n, unc_total FROM (SELECT *, "
        "count(*) OVER (PARTITION BY lk, by_task) AS ntasks FROM (SELECT {columns} "
        "FROM {rows} GROUP BY GROUPING SETS ((1, 2, 3), (1, 2, s.task)) "
        "HAVING NOT {by_task} OR (count(e.score) > 0 AND NOT {unsure})) AS grouped) AS counted "
        "WHERE NOT by_task OR ntasks <= %(max_tasks)s"
    ).format(
        columns=columns.format(
            unsure=unsure,
            v=v,
            by_task=by_task,
            task=sql.SQL("s.task"),
            n=sql.SQL("CASE WHEN {by_task} THEN count(e.score) ELSE count(*) END").format(by_task=by_task),
        ),
        by_task=by_task,
        rows=_rows(key, where, scale=True),
        unsure=unsure,
    )


#: the expression of Atlas's index on the score, as PostgreSQL prints it
SCORE_INDEX_EXPRESSION = "(((reward_stats ->> 'score'::text))::double precision)"

#: whether ``sessions`` has Atlas's score index, valid, on every row with reward_stats (or every row):
#: then every such row's ``(reward_stats ->> 'score')::float8`` is known to cast without error
SCORE_INDEX_STATEMENT = sql.SQL(
    "SELECT EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = 'sessions'::regclass AND i.indisvalid "
    "AND i.indnatts = 1 AND pg_get_indexdef(i.indexrelid, 1, false) = %(index_expression)s "
    "AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) = '(reward_stats IS NOT NULL)'))"
).format()


def lowest_statement(key: sql.Composable, where: sql.Composable, *, uncertain: bool, indexed: bool) -> sql.Composed:
    """``lk, id, score, found``: the ``worst`` lowest usable sessions (lowest score, then lowest id)
    of each key in ``low_keys`` among those whose rounded score is at most its ``low_values``
    entry; ``found`` counts the sessions that qualified.

    With ``indexed`` (see :data:`SCORE_INDEX_STATEMENT`) only the sessions whose stored
    ``reward_stats.score`` is at most ``index_cut`` are read, through Atlas's index: a session
    whose gate score came from ``score_mean``, or whose stored score is not what the gate reads,
    can be missed, which ``found`` shows (the caller then asks again without ``indexed``)."""
    cut: sql.Composable = sql.SQL("")
    if indexed:
        cut = sql.SQL(" AND s.reward_stats IS NOT NULL AND (s.reward_stats ->> 'score')::float8 <= %(index_cut)s")
    return sql.SQL(
        "SELECT lk, id, score, found FROM (SELECT r.lk, r.id, r.score, row_number() OVER (PARTITION BY r.lk "
        "ORDER BY r.score, r.id) AS rank, count(*) OVER (PARTITION BY r.lk) AS found FROM "
        "(SELECT e.lk, s.id, e.score, {v} AS value FROM {rows}{cut} AND e.score IS NOT NULL "
        "AND NOT {unsure}) AS r JOIN unnest(%(low_keys)s::text[], %(low_values)s::float8[]) AS t(lk, value) "
        "ON t.lk = r.lk AND r.value <= t.value) AS ranked WHERE rank <= %(worst)s"
    ).format(v=_bucket(), rows=_rows(key, where), cut=cut, unsure=_unsure(uncertain))
