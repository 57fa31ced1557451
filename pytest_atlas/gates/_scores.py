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

The series statement scans the selected sessions once. It groups them by learning key and exact score
(so the score expression runs once per row, and PostgreSQL can aggregate in parallel workers), then
by rounded score: one row back per key and distinct rounded score, carrying what the moments, the
frequency table and the lowest sessions are computed from.
"""

from __future__ import annotations

from psycopg import sql

__all__ = ["NUMBER_PATTERN", "number", "score", "series_statement", "tasks_statement", "ties_statement"]

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


def _uncertainty(fast: bool) -> sql.Composable:
    return number("reward_stats", "uncertainty_mean", fast=fast)


def series_statement(key: sql.Composable, where: sql.Composable, *, uncertain: bool, fast: bool = True) -> sql.Composed:
    """Two kinds of rows, ``kind, lk, state, value, n, total, m2, unc_n, unc_total, low_id``:

    * ``g``, one per (learning key, state, rounded score ``value``): ``state`` is 0 for usable
      scores, 1 for no score (``value`` NULL), 2 for scores left out by ``max_uncertainty`` (only
      with ``uncertain``); ``n`` sessions, ``total`` the sum of their scores, ``m2`` the sum of their
      squared deviations from ``value`` (the exact variance is combined from these); ``unc_n`` /
      ``unc_total`` count and add the uncertainties of usable rows;
    * ``w``, the ``worst`` lowest exact usable scores per key: ``value`` the score, ``n`` sessions
      holding it, ``low_id`` the smallest of their ids.

    Parameters: ``number_pattern``, ``scale``, ``worst``, and ``max_uncertainty`` with ``uncertain``.
    """
    unc = _uncertainty(fast)
    state = (
        sql.SQL("CASE WHEN {u} > %(max_uncertainty)s THEN 2 ELSE 0 END").format(u=unc) if uncertain else sql.SQL("0")
    )
    exact = sql.SQL(
        "SELECT {key} AS lk, {score} AS score, {state} AS state, count(*) AS c, min(s.id) AS low_id, "
        "count({u}) AS unc_n, sum({u}) AS unc_total FROM sessions AS s WHERE {where} GROUP BY 1, 2, 3"
    ).format(key=key, score=score(fast=fast), state=state, u=unc, where=where)
    return sql.SQL(
        "WITH exact AS MATERIALIZED ({exact}) "
        "SELECT 'g', lk, state, v, sum(c), sum(score * c), sum(c * (score - v) * (score - v)), "
        "sum(unc_n) FILTER (WHERE state = 0), sum(unc_total) FILTER (WHERE state = 0), NULL::bigint "
        "FROM (SELECT lk, CASE WHEN score IS NULL THEN 1 ELSE state END AS state, "
        "round(score * %(scale)s) / %(scale)s AS v, score, c, unc_n, unc_total FROM exact) AS grouped "
        "GROUP BY lk, state, v "
        "UNION ALL SELECT 'w', lk, 0, score, c, NULL, NULL, NULL, NULL, low_id FROM (SELECT lk, score, c, low_id, "
        "row_number() OVER (PARTITION BY lk ORDER BY score) AS rank FROM exact "
        "WHERE score IS NOT NULL AND state = 0) AS ranked WHERE rank <= %(worst)s"
    ).format(exact=exact)


def tasks_statement(key: sql.Composable, where: sql.Composable, *, uncertain: bool, fast: bool = True) -> sql.Composed:
    """Per learning key with at most ``max_tasks`` distinct tasks among its usable scores: ``lk,
    task, mean, n`` per task."""
    usable = sql.SQL("{s} IS NOT NULL").format(s=score(fast=fast))
    if uncertain:
        usable = sql.SQL("{usable} AND NOT COALESCE({u} > %(max_uncertainty)s, FALSE)").format(
            usable=usable, u=_uncertainty(fast)
        )
    return sql.SQL(
        "SELECT lk, task, mean, c FROM (SELECT lk, task, mean, c, count(*) OVER (PARTITION BY lk) AS ntasks "
        "FROM (SELECT {key} AS lk, s.task, avg({s}) AS mean, count(*) AS c FROM sessions AS s "
        "WHERE {where} AND {usable} GROUP BY 1, 2) AS t) AS counted WHERE ntasks <= %(max_tasks)s"
    ).format(key=key, s=score(fast=fast), where=where, usable=usable)


def ties_statement(key: sql.Composable, where: sql.Composable, *, uncertain: bool, fast: bool = True) -> sql.Composed:
    """``lk, id, score`` of the usable rows whose key and exact score are one of the pairs in
    ``tie_keys`` / ``tie_scores`` (the lowest scores that more than one session holds): at most
    ``worst`` per pair, lowest ids first."""
    usable: sql.Composable = sql.SQL("TRUE")
    if uncertain:
        usable = sql.SQL("NOT COALESCE({u} > %(max_uncertainty)s, FALSE)").format(u=_uncertainty(fast))
    return sql.SQL(
        "SELECT lk, id, score FROM (SELECT r.lk, r.id, r.score, row_number() OVER (PARTITION BY r.lk, r.score "
        "ORDER BY r.id) AS rank FROM (SELECT {key} AS lk, s.id, {s} AS score FROM sessions AS s "
        "WHERE {where} AND {usable}) AS r JOIN unnest(%(tie_keys)s::text[], %(tie_scores)s::float8[]) "
        "AS t(lk, score) ON t.lk = r.lk AND t.score = r.score) AS ranked WHERE rank <= %(worst)s"
    ).format(key=key, s=score(fast=fast), where=where, usable=usable)
