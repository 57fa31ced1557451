"""The score expression's cheap path (plain JSON numbers) and its quirk-tolerant path give the same
value for every shape a stored reward can take, and the gate series built on them match a
computation in Python over every row."""

from __future__ import annotations

import math
import re
import statistics
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_atlas.gates import Selection, _scores, fetch_series

#: JSON texts of every shape a score takes in real and damaged data
SHAPES = [
    "0",
    "0.0",
    "-0",
    "0.5",
    "0.8125",
    "1",
    "-3",
    "7.000000000000001",
    "0.1234567890123456789012345678901234567890",
    "123456789012345678901234567890",
    "1e-400",
    "1e-310",
    "1e-300",
    "1e-100",
    "1.5e-100",
    "9.99e-101",
    "9.99e99",
    "1e100",
    "1e300",
    "1e400",
    "-1e400",
    '"0.7"',
    '" 0.7 "',
    '"1e5"',
    '"-.5"',
    '"5."',
    '"1e-400"',
    '"1e400"',
    '"NaN"',
    '"Infinity"',
    '"-inf"',
    '"0x10"',
    '""',
    '"n/a"',
    '"1_000"',
    '"\u2003 0.5"',  # an em space: no space a number's text may have around it (only ASCII ones)
    '"\u00a00.25"',  # a no-break space
    "true",
    "false",
    "null",
    "{}",
    '{"value": 0.5}',
    "[0.5]",
]

_PATTERN = re.compile(r"^[ \t\n\r\f\v]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r\f\v]*$")


def expected(text: str | None) -> float | None:
    """What a gate reads from one JSON value, computed in Python from its text."""
    if text is None or text in ("true", "false", "null") or text[0] in "{[":
        return None
    if text.startswith('"'):
        inner = text[1:-1]
        if not _PATTERN.match(inner):
            return None
        text = inner.strip(" \t\n\r\f\v")
    number = Decimal(text)
    if number == 0:
        return 0.0
    if not Decimal("1e-100") <= abs(number) < Decimal("1e100"):
        return None
    return float(number)


def _stats(score: str | None, mean: str | None, uncertainty: str | None = None) -> str:
    parts = [f'"{k}": {v}' for k, v in (("score", score), ("score_mean", mean), ("uncertainty_mean", uncertainty)) if v]
    return "{" + ", ".join(parts) + "}"


def _load(conn: psycopg.Connection[Any], stats: list[str]) -> None:
    # Atlas's float index on reward_stats.score refuses most of these shapes: the gate must still read
    # databases written before v0.1.13 (and score_mean, which it never covered)
    conn.execute("DROP INDEX IF EXISTS sessions_reward_score_idx")
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
            "VALUES (%s, 'succeeded', 'approved', '{\"learning_key\": \"k\"}', %s::jsonb)",
            [(f"task {i % 3}", text) for i, text in enumerate(stats)],
        )


def test_fast_and_slow_paths_agree_on_every_shape(atlas_db: psycopg.Connection[Any]) -> None:
    rows = [_stats(shape, None, shape) for shape in SHAPES] + [_stats(None, shape) for shape in SHAPES]
    _load(atlas_db, rows)
    query = sql.SQL(
        "SELECT s.reward_stats::text, {fast_score}, {slow_score}, {fast_u}, {slow_u} FROM sessions AS s ORDER BY s.id"
    ).format(
        fast_score=_scores.score(fast=True),
        slow_score=_scores.score(fast=False),
        fast_u=_scores.number("reward_stats", "uncertainty_mean", fast=True),
        slow_u=_scores.number("reward_stats", "uncertainty_mean", fast=False),
    )
    got = atlas_db.execute(query, {"number_pattern": _scores.NUMBER_PATTERN}).fetchall()
    assert len(got) == 2 * len(SHAPES)
    for (stored, fast, slow, fast_u, slow_u), shape in zip(got, SHAPES + SHAPES, strict=True):
        want = expected(shape)
        assert fast == slow == want, (stored, fast, slow, want)
        if "uncertainty_mean" in stored:
            assert fast_u == slow_u == want, (stored, fast_u, slow_u)
    # the shapes cover both paths: plain numbers (cheap) and everything else
    assert sum(expected(s) is not None for s in SHAPES) >= 15
    assert sum(expected(s) is None for s in SHAPES) >= 15


def test_a_tiny_or_huge_number_is_no_score_and_not_a_query_error(atlas_db: psycopg.Connection[Any]) -> None:
    """A JSON number below float8's range (1e-400) made the gate query fail with 'out of range'."""
    _load(atlas_db, [_stats("1e-400", None), _stats("1e400", "0.25"), _stats("0.5", None)])
    series = fetch_series(atlas_db, Selection())["k"]
    assert (series.n, series.missing) == (2, 1)
    assert series.sample.mean == 0.375


def test_series_over_quirky_rows_match_python(atlas_db: psycopg.Connection[Any]) -> None:
    # every shape as score, with score_mean as fallback, several times so that scores are shared
    stats = [_stats(shape, fallback) for shape in SHAPES for fallback in (None, "0.4", '"0.45"', '"NaN"')]
    _load(atlas_db, stats)
    scores: list[tuple[int, float]] = []
    missing = 0
    ids = [row[0] for row in atlas_db.execute("SELECT id FROM sessions ORDER BY id").fetchall()]
    for session, shape_pair in zip(
        ids, [(s, f) for s in SHAPES for f in (None, "0.4", '"0.45"', '"NaN"')], strict=True
    ):
        value = expected(shape_pair[0])
        if value is None:
            value = expected(shape_pair[1])
        if value is None:
            missing += 1
        else:
            scores.append((session, value))
    for tasks in (False, True):
        for digits in (0, 4, 12):
            series = fetch_series(atlas_db, Selection(), digits=digits, tasks=tasks)["k"]
            values = [v for _, v in scores]
            assert (series.n, series.missing) == (len(values), missing)
            assert math.isclose(series.sample.mean, statistics.fmean(values), rel_tol=1e-12)
            assert series.sample.variance is not None
            assert math.isclose(series.sample.variance, statistics.variance(values), rel_tol=1e-9)
            assert list(series.worst) == sorted(scores, key=lambda p: (p[1], p[0]))[:5]
            assert sum(int(c) for c in series.sample.counts) == len(values)
            assert (series.tasks is not None) is tasks


@pytest.mark.parametrize("collation", ["C", "C.utf8"])
def test_only_ascii_spaces_may_surround_a_number_whatever_the_databases_ctype(
    atlas_db: psycopg.Connection[Any], collation: str
) -> None:
    """In a database whose ctype is UTF-8, PostgreSQL's ``\\s`` also matches Unicode spaces, which
    the numeric cast after the pattern refuses: one such score made every gate over it a query
    error. The pattern names the spaces it allows, so a collation (as the database's ctype decides
    a regex's classes) changes nothing."""
    found = atlas_db.execute("SELECT 1 FROM pg_collation WHERE collname = %s", (collation,)).fetchone()
    assert found is not None, f"the test server has the collation {collation}"
    match = sql.SQL("SELECT ({} COLLATE {}) ~ %(number_pattern)s").format(
        sql.Placeholder("text"), sql.Identifier(collation)
    )
    for text, want in [(" 0.5 ", True), ("\t0.5\n", True), ("\u2003 0.5", False), ("\u00a00.25", False)]:
        params = {"text": text, "number_pattern": _scores.NUMBER_PATTERN}
        row = atlas_db.execute(match, params).fetchone()
        assert row is not None and row[0] is want, (collation, text)
        if want:  # what the pattern lets through, the slow path's cast takes
            assert atlas_db.execute("SELECT %s::numeric", (text,)).fetchone() is not None
