"""The series query's paths give the series a computation in Python over every row gives.

One scan groups the sessions into a few rows per key: the sessions without a usable score and
those the uncertainty bound leaves out are counted, the usable ones come back packed (score and
session id, 16 bytes each), from which the frequency table, the exact moments and the lowest
sessions are computed; per-task means come from a second statement. Every path is compared here
with an oracle on quirky data: NaN, strings, huge and tiny numbers, nulls, ties at the cut-off of
the lowest sessions, the uncertainty filter, one key, per-task means, with and without Atlas's
index on the score."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from typing import Any

import psycopg
import pytest

from pytest_atlas.gates import Selection, _scores, fetch_series
from pytest_atlas.gates import _series as series_module
from pytest_atlas.gates._series import fetch_timeline, series_with_timeline

from .test_score_paths import SHAPES, expected

#: score shapes Atlas's float index accepts (it refuses a write whose score does not cast to float)
INDEXABLE = [
    "0.3",
    "0.3",
    "0.30004",
    "0.29996",
    '"0.3"',
    '" 0.31 "',
    "-0.5",
    "-0.5",
    "0",
    '"1e5"',
    '"NaN"',
    '"-Infinity"',
    '"0x10"',
    "1e300",
    "1e-300",
    "-1e300",
    "null",
    None,
]
FALLBACKS = [None, "0.1", '"0.45"', "0.3", '"NaN"']
UNCERTAINTIES = [None, "0.05", "0.9"]


def _stats(score: str | None, mean: str | None, uncertainty: str | None) -> str:
    parts = [f'"{k}": {v}' for k, v in (("score", score), ("score_mean", mean), ("uncertainty_mean", uncertainty)) if v]
    return "{" + ", ".join(parts) + "}"


def _load(conn: psycopg.Connection[Any], shapes: list[str | None], fallbacks: list[str | None]) -> list[dict[str, Any]]:
    """Sessions over every combination, over two keys and three tasks; each row as the oracle sees it."""
    combos = list(itertools.product(shapes, fallbacks, UNCERTAINTIES))
    rows: list[dict[str, Any]] = []
    with conn.cursor() as cursor:
        for i, (score, mean, uncertainty) in enumerate(combos):
            key, task = ("a", "b")[i % 2], f"task {i % 3}"
            cursor.execute(
                "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
                "VALUES (%s, 'succeeded', 'approved', %s::jsonb, %s::jsonb) RETURNING id",
                (task, json.dumps({"learning_key": key}), _stats(score, mean, uncertainty)),
            )
            row = cursor.fetchone()
            assert row is not None
            value = expected(score)
            if value is None:
                value = expected(mean)
            rows.append({"id": row[0], "key": key, "task": task, "score": value, "u": expected(uncertainty)})
    return rows


def _oracle(rows: list[dict[str, Any]], *, key: str, digits: int, worst: int, bound: float | None) -> dict[str, Any]:
    mine = [r for r in rows if r["key"] == key]
    scored = [r for r in mine if r["score"] is not None]
    unsure = [r for r in scored if bound is not None and r["u"] is not None and r["u"] > bound]
    usable = [r for r in scored if r not in unsure]
    scale = 10.0**digits
    table: dict[float, int] = {}
    for r in usable:
        value = round(r["score"] * scale) / scale
        table[value] = table.get(value, 0) + 1
    tasks: dict[str, list[float]] = {}
    for r in usable:
        tasks.setdefault(r["task"], []).append(r["score"])
    uncertainties = [r["u"] for r in usable if r["u"] is not None]
    return {
        "n": len(usable),
        "missing": len(mine) - len(scored),
        "uncertain": len(unsure),
        "values": sorted(table),
        "counts": [table[v] for v in sorted(table)],
        "scores": [r["score"] for r in usable],
        "worst": sorted(((r["id"], r["score"]) for r in usable), key=lambda p: (p[1], p[0]))[:worst],
        "tasks": {t: (statistics.fmean(s), len(s)) for t, s in tasks.items()},
        "uncertainty_mean": statistics.fmean(uncertainties) if uncertainties else None,
    }


def _check(
    conn: psycopg.Connection[Any],
    rows: list[dict[str, Any]],
    *,
    worsts: tuple[int, ...] = (1, 5, 40),
    digitses: tuple[int, ...] = (0, 4, 12),
) -> None:
    for selection, digits, worst in itertools.product(
        (Selection(), Selection.build(max_uncertainty=0.5), Selection.build(learning_key="b")), digitses, worsts
    ):
        got = fetch_series(conn, selection, digits=digits, worst=worst, tasks=True)
        keys = ["b"] if selection.learning_key else ["a", "b"]
        assert sorted(got) == keys
        for key in keys:
            want = _oracle(rows, key=key, digits=digits, worst=worst, bound=selection.max_uncertainty)
            series = got[key]
            where = (key, selection, digits, worst)
            assert (series.n, series.missing, series.uncertain) == (want["n"], want["missing"], want["uncertain"]), (
                where
            )
            assert series.sample.values.tolist() == want["values"], where
            assert series.sample.counts.tolist() == want["counts"], where
            assert list(series.worst) == want["worst"], where
            assert math.isclose(series.sample.mean, statistics.fmean(want["scores"]), rel_tol=1e-12), where
            assert series.sample.variance is not None
            assert math.isclose(series.sample.variance, statistics.variance(want["scores"]), rel_tol=1e-9), where
            assert series.tasks is not None and series.tasks.keys() == want["tasks"].keys(), where
            for task, (mean, count) in want["tasks"].items():
                assert series.tasks[task][1] == count, (where, task)
                assert math.isclose(series.tasks[task][0], mean, rel_tol=1e-12), (where, task)
            if want["uncertainty_mean"] is None:
                assert series.uncertainty_mean is None, where
            else:
                assert series.uncertainty_mean is not None
                assert math.isclose(series.uncertainty_mean, want["uncertainty_mean"], rel_tol=1e-12), where


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements a series reads, each as 'bare' (packed scores, the cheap form), 'series'
    (packed scores, the exact form), 'names' (of the task hashes) or 'tasks' (the exact per-task
    sums)."""
    reads: list[str] = []
    original = series_module.run

    def recording(conn: Any, query: Any, params: Any, **options: Any) -> Any:
        text = query.as_string(conn)
        if "max(id)" not in text and not text.startswith("EXPLAIN"):  # the look at the table comes first
            if "string_agg" in text:
                reads.append("bare" if options.get("bare") else "series")
            else:
                reads.append("names" if "task_hashes" in str(params) else "tasks")
        return original(conn, query, params, **options)

    monkeypatch.setattr(series_module, "run", recording)
    return reads


def test_quirky_rows_with_atlas_index(atlas_db: psycopg.Connection[Any], statements: list[str]) -> None:
    """score_mean = 0.1 under a NaN, null or hex score is the lowest score; the shapes Atlas's index
    accepts, with ties at every cut-off of the lowest sessions. 1e300 casts to a float the exact
    form counts as no score: the bare read is checked and the exact one read after it."""
    rows = _load(atlas_db, INDEXABLE, FALLBACKS)
    _check(atlas_db, rows)
    assert statements == ["bare", "series", "names"] * (len(statements) // 3)


#: strings float8's input reads as a number (a hexadecimal, NaN, an infinity) that the exact form
#: counts as no number: the bare form must not count them
NOT_BARE = ['"NaN"', '"-Infinity"', '"0x10"']


@pytest.mark.parametrize("shape", [*NOT_BARE, '"0X1p-2"', '" inf "', '"nan"'])
@pytest.mark.parametrize("field", ["score", "score_mean", "uncertainty_mean"])
def test_strings_float8_reads_but_the_exact_form_does_not_are_no_number(
    atlas_db: psycopg.Connection[Any], statements: list[str], shape: str, field: str
) -> None:
    """A score or uncertainty that is such a string is no number: the series is the oracle's; a
    score makes the exact statement decide, an uncertainty that the bare form packs as none (NaN)
    does not need it, an infinite one does."""
    stats = {"score": ["0.5", None], "score_mean": ["0.25"], "uncertainty_mean": ["0.05"]}
    stats[field] = [shape, *stats[field]]
    rows: list[dict[str, Any]] = []
    for score, mean, uncertainty in itertools.product(stats["score"], stats["score_mean"], stats["uncertainty_mean"]):
        cursor = atlas_db.execute(
            "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
            "VALUES ('t', 'succeeded', 'approved', '{\"learning_key\": \"a\"}', %s::jsonb) RETURNING id",
            (_stats(score, mean, uncertainty),),
        )
        (sid,) = cursor.fetchone() or (None,)
        value = expected(score)
        row = {"id": sid, "key": "a", "task": "t", "u": expected(uncertainty)}
        rows.append({**row, "score": expected(mean) if value is None else value})
    got = fetch_series(atlas_db, Selection(), tasks=False)["a"]
    want = _oracle(rows, key="a", digits=4, worst=5, bound=None)
    assert (got.n, got.missing) == (want["n"], want["missing"])
    assert got.sample.values.tolist() == want["values"] and got.sample.counts.tolist() == want["counts"]
    assert list(got.worst) == want["worst"]
    assert got.uncertainty_mean is not None and want["uncertainty_mean"] is not None
    assert math.isclose(got.uncertainty_mean, want["uncertainty_mean"], rel_tol=1e-12)
    exact = field != "uncertainty_mean" or "inf" in shape.lower()
    assert statements == (["bare", "series"] if exact else ["bare"])


def test_ordinary_scores_are_read_once_the_bare_way(atlas_db: psycopg.Connection[Any], statements: list[str]) -> None:
    ordinary = [s for s in INDEXABLE if s not in ("1e300", "1e-300", "-1e300", *NOT_BARE)]
    fallbacks = [f for f in FALLBACKS if f not in NOT_BARE]
    rows = _load(atlas_db, [*ordinary, "1e-99", "-1e99", "0.000001"], fallbacks)
    _check(atlas_db, rows, worsts=(5,), digitses=(4,))
    assert statements == ["bare", "names"] * 3


@pytest.mark.parametrize("edge", ["1e-100", "1.5e-100", "9.99e-101", "9.99e99", "1e100", "-1e100", "1e-310", "1e300"])
@pytest.mark.parametrize("field", ["score", "score_mean", "uncertainty_mean"])
def test_magnitudes_past_ordinary_are_read_the_exact_way(
    atlas_db: psycopg.Connection[Any], statements: list[str], edge: str, field: str
) -> None:
    """Every magnitude float8 can hold but the bare form could read otherwise than the exact one,
    in each field the bare form reads: the exact statement decides (after the bare one, in the
    same snapshot)."""
    shapes = {"score": [edge, "0.5", None], "score_mean": [None], "uncertainty_mean": ["0.1"]}
    fallbacks = {"score": ["0.25"], "score_mean": [edge, "0.5"], "uncertainty_mean": ["0.25"]}
    if field == "uncertainty_mean":
        shapes["score"], fallbacks["score"] = ["0.5", "0.7"], ["0.25"]
    rows: list[dict[str, Any]] = []
    for score, mean in itertools.product(
        shapes["score"] if field != "score_mean" else [None, "null"], fallbacks[field]
    ):
        for uncertainty in [edge, "0.05"] if field == "uncertainty_mean" else ["0.05"]:
            cursor = atlas_db.execute(
                "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
                "VALUES ('t', 'succeeded', 'approved', '{\"learning_key\": \"a\"}', %s::jsonb) RETURNING id",
                (_stats(score, mean, uncertainty),),
            )
            (sid,) = cursor.fetchone() or (None,)
            value = expected(score)
            rows.append(
                {
                    "id": sid,
                    "key": "a",
                    "task": "t",
                    "score": expected(mean) if value is None else value,
                    "u": expected(uncertainty),
                }
            )
    got = fetch_series(atlas_db, Selection(), tasks=False)["a"]
    want = _oracle(rows, key="a", digits=4, worst=5, bound=None)
    assert (got.n, got.missing) == (want["n"], want["missing"])
    assert got.sample.values.tolist() == want["values"] and got.sample.counts.tolist() == want["counts"]
    assert list(got.worst) == want["worst"]
    if want["uncertainty_mean"] is None:
        assert got.uncertainty_mean is None
    else:
        assert got.uncertainty_mean is not None
        assert math.isclose(got.uncertainty_mean, want["uncertainty_mean"], rel_tol=1e-12)
    assert statements == ["bare", "series"]


def test_every_shape_without_atlas_index(atlas_db: psycopg.Connection[Any], statements: list[str]) -> None:
    # a database written before the index existed holds shapes it would refuse (1e400, words, objects):
    # 1e400 makes the bare read fail; the exact one is read in the same snapshot
    atlas_db.execute("DROP INDEX sessions_reward_score_idx")
    rows = _load(atlas_db, [*SHAPES, "-0.5", "-0.5"], FALLBACKS)
    _check(atlas_db, rows)
    assert statements == ["bare", "series", "names"] * (len(statements) // 3)


def test_an_index_on_the_score_for_some_rows_only_changes_nothing(atlas_db: psycopg.Connection[Any]) -> None:
    """An index on the same expression for some rows guarantees nothing about the others: the word
    score of a session outside it is no score, and its score_mean counts."""
    atlas_db.execute("DROP INDEX sessions_reward_score_idx")
    atlas_db.execute(
        "CREATE INDEX partial_score_idx ON sessions (((reward_stats ->> 'score')::float)) WHERE status = 'succeeded'"
    )
    rows = _load(atlas_db, INDEXABLE, FALLBACKS)
    extra = atlas_db.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) VALUES ('task 0', 'failed', "
        '\'approved\', \'{"learning_key": "a"}\', \'{"score": "n/a", "score_mean": 0.2}\') RETURNING id'
    ).fetchone()
    assert extra is not None
    rows.append({"id": extra[0], "key": "a", "task": "task 0", "score": 0.2, "u": None})
    got = fetch_series(atlas_db, Selection(), worst=40)["a"]
    want = _oracle(rows, key="a", digits=4, worst=40, bound=None)
    assert (got.n, list(got.worst)) == (want["n"], want["worst"])
    assert (extra[0], 0.2) in got.worst


def test_lowest_sessions_with_and_without_ties(atlas_db: psycopg.Connection[Any], statements: list[str]) -> None:
    ids = [
        row[0]
        for row in atlas_db.execute(
            "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
            "SELECT 't', 'succeeded', 'approved', '{\"learning_key\": \"a\"}', jsonb_build_object('score', i / 10.0) "
            "FROM generate_series(9, 1, -1) AS i RETURNING id"
        ).fetchall()
    ]
    got = fetch_series(atlas_db, Selection(), worst=3, tasks=False)["a"]
    assert list(got.worst) == [(ids[-1], 0.1), (ids[-2], 0.2), (ids[-3], 0.3)]
    # one more session at 0.2 (a higher id): the tie goes to the lower id, 0.3 drops out
    (tied,) = atlas_db.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) VALUES "
        "('t', 'succeeded', 'approved', '{\"learning_key\": \"a\"}', '{\"score\": 0.2}') RETURNING id"
    ).fetchall()
    got = fetch_series(atlas_db, Selection(), worst=3, tasks=False)["a"]
    assert list(got.worst) == [(ids[-1], 0.1), (ids[-2], 0.2), (tied[0], 0.2)]
    assert fetch_series(atlas_db, Selection(), worst=0, tasks=False)["a"].worst == ()
    assert len(fetch_series(atlas_db, Selection(), worst=50, tasks=False)["a"].worst) == 10
    assert statements == ["bare"] * 4


def test_per_task_means_only_for_keys_with_few_enough_tasks(atlas_db: psycopg.Connection[Any]) -> None:
    rows = _load(atlas_db, ["0.2", "0.6", "0.6"], [None])
    for task, score, uncertainty in (("only", 0.5, None), ("unsure", 0.1, 0.9)):
        (session,) = atlas_db.execute(
            "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) VALUES (%s, 'succeeded', "
            "'approved', '{\"learning_key\": \"c\"}', jsonb_strip_nulls(jsonb_build_object('score', %s::float8, "
            "'uncertainty_mean', %s::float8))) RETURNING id",
            (task, score, uncertainty),
        ).fetchall()
        rows.append({"id": session[0], "key": "c", "task": task, "score": score, "u": uncertainty})
    seen = set()
    for bound, max_tasks in itertools.product((None, 0.5), (1, 2, 3)):
        got = fetch_series(atlas_db, Selection.build(max_uncertainty=bound), max_tasks=max_tasks)
        for key in ("a", "b", "c"):
            want = _oracle(rows, key=key, digits=4, worst=5, bound=bound)["tasks"]
            if len(want) > max_tasks:
                assert got[key].tasks is None, (key, bound, max_tasks)
            else:
                tasks = got[key].tasks
                assert tasks is not None and tasks.keys() == want.keys(), (key, bound, max_tasks)
                for task, (mean, count) in want.items():
                    assert tasks[task][1] == count and math.isclose(tasks[task][0], mean, rel_tol=1e-12), (key, task)
            seen.add(len(want) > max_tasks)
    assert seen == {True, False}
    assert fetch_series(atlas_db, Selection(), tasks=False)["a"].tasks is None


def test_the_timeline_read_with_the_series_is_the_one_fetch_timeline_reads(atlas_db: psycopg.Connection[Any]) -> None:
    """A chart's points come from the series' scan: the same newest sessions (ties in time broken
    by id), scores and times, in the session's time zone, as the statement of their own."""
    _load(atlas_db, INDEXABLE, FALLBACKS)
    # a few distinct times, many sessions sharing each one
    atlas_db.execute("UPDATE sessions SET created_at = created_at - (id % 7) * interval '1 minute 0.5 second'")
    selections = (
        Selection(),
        Selection.build(max_uncertainty=0.5),
        Selection.build(learning_key="b"),
        Selection.build(last=10),
        Selection.build(last=25, max_uncertainty=0.5),
    )
    for zone, selection, points, by_key in itertools.product(
        ("UTC", "America/New_York"), selections, (1, 7, 40, 1000), (True, False)
    ):
        atlas_db.execute(psycopg.sql.SQL("SET TimeZone = {}").format(psycopg.sql.Literal(zone)))
        series, timeline = series_with_timeline(atlas_db, selection, by_key=by_key, points=points)
        where = (zone, selection, points, by_key)
        assert timeline is not None, where
        assert timeline == fetch_timeline(atlas_db, selection, by_key=by_key, points=points), where
        assert sum(len(p) for p in timeline.values()) == sum(min(points, s.n) for s in series.values()), where
        alone = fetch_series(atlas_db, selection, by_key=by_key)
        assert {k: s.to_json() for k, s in series.items()} == {k: s.to_json() for k, s in alone.items()}, where
    assert series_with_timeline(atlas_db, Selection(), points=0)[1] is None


def test_sessions_across_ranges_of_ids_make_one_series(atlas_db: psycopg.Connection[Any]) -> None:
    """The scores are packed per range of 2**24 ids: a key whose sessions span several ranges (and
    whose missing and unsure sessions do) is one series, its counts and sums added up."""
    first = [1, 2**24 - 1, 2**24, 2**24 + 1, 2**25 + 7, 2**31 - 1]
    ids = [*first, 3, 2**24 - 2, 2**24 + 2, 2**24 + 3, 2**25 + 9, 2**31 - 2]
    rows: list[dict[str, Any]] = []
    for i, (session, score, uncertainty) in enumerate(
        zip(ids, [0.25, 0.5, None, 0.75, 0.5, 1.0] * 2, [0.1, 0.9, 0.2, None, 0.3, 0.1] * 2, strict=True)
    ):
        key, task = ("a", "b")[i // 6], f"task {i % 2}"
        atlas_db.execute(
            "INSERT INTO sessions (id, task, status, review_status, metadata, reward_stats) VALUES "
            "(%s, %s, 'succeeded', 'approved', %s::jsonb, %s::jsonb)",
            (
                session,
                task,
                json.dumps({"learning_key": key}),
                json.dumps({"score": score, "uncertainty_mean": uncertainty}),
            ),
        )
        rows.append({"id": session, "key": key, "task": task, "score": score, "u": uncertainty})
    _check(atlas_db, rows, worsts=(1, 3, 10), digitses=(1, 4))


class _Seeds:
    """Stands in for the module's ``secrets``: the task-hash seeds it draws, in turn."""

    def __init__(self, *seeds: int) -> None:
        self.seeds = itertools.cycle(seeds)

    def randbits(self, bits: int) -> int:
        return next(self.seeds)


#: the task hash with seed 1 makes every task of one length collide; any other seed is the real one
_COLLIDING_WITH_SEED_1 = psycopg.sql.SQL(
    "(CASE WHEN %(task_seed)s::int8 = 1 THEN length(s.task)::int8 ELSE hashtextextended(s.task, %(task_seed)s::int8) END)"
)


def test_tasks_whose_hashes_collide_are_read_again_with_another_seed(
    atlas_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    """Per-task sums come packed under a 64-bit hash of the task, seeded afresh for every read (a
    task text cannot be chosen to collide in advance); should two tasks of a key share one, the
    series is read again with another seed, so its per-task means cover exactly its sessions
    (also with ``last`` and an uncertainty bound)."""
    rows = _load(atlas_db, ["0.2", "0.6", "0.6", '"0.7"'], FALLBACKS)
    _check(atlas_db, rows, worsts=(5,), digitses=(4,))
    assert "tasks" not in statements
    monkeypatch.setattr(_scores, "TASK_HASH", _COLLIDING_WITH_SEED_1)
    monkeypatch.setattr(series_module, "secrets", _Seeds(1, 2))
    statements.clear()
    _check(atlas_db, rows, worsts=(5,), digitses=(4,))
    # every fetch read the series twice: seed 1 collided, seed 2 did not
    assert statements and statements == ["bare", "names", "bare", "names"] * (len(statements) // 4)
    for last, bound in ((3, None), (None, 0.5), (2, 0.5)):
        got = fetch_series(atlas_db, Selection.build(last=last, max_uncertainty=bound))
        for series in got.values():
            if series.tasks is not None:
                assert sum(n for _, n in series.tasks.values()) == series.n


def test_hashes_that_collide_with_every_seed_are_an_error_not_a_wrong_mean(
    atlas_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_atlas.errors import GateError

    _load(atlas_db, ["0.2", "0.6", "0.6", '"0.7"'], FALLBACKS)
    monkeypatch.setattr(_scores, "TASK_HASH", _COLLIDING_WITH_SEED_1)
    monkeypatch.setattr(series_module, "secrets", _Seeds(1))
    with pytest.raises(GateError, match="two tasks of one learning key shared a hash 3 times"):
        fetch_series(atlas_db, Selection())


def _delete_a_task_after_the_series_statement(monkeypatch: pytest.MonkeyPatch, writer: psycopg.Connection[Any]) -> None:
    original = series_module.run

    def run_then_write(conn: Any, query: Any, params: Any, **options: Any) -> Any:
        rows = original(conn, query, params, **options)
        if "string_agg" in query.as_string(conn):  # another client changes the sessions meanwhile
            writer.execute("DELETE FROM sessions WHERE task = 'task0'")
            writer.execute(
                "INSERT INTO sessions (task, metadata, reward_stats) SELECT 'task1', "
                '\'{"learning_key": "k"}\', \'{"score": 0.5}\''
            )
            writer.commit()
        return rows

    monkeypatch.setattr(series_module, "run", run_then_write)


def _three_tasks(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO sessions (task, metadata, reward_stats) SELECT 'task' || (i % 3), "
        "'{\"learning_key\": \"k\"}', jsonb_build_object('score', 0.3 + (i % 3) / 10.0) FROM generate_series(1, 30) AS i"
    )
    conn.commit()


def test_a_series_reads_one_snapshot_while_others_write(
    atlas_db: psycopg.Connection[Any], atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statements of one series (packed scores, then the task names) read the same sessions:
    a client deleting a task's sessions in between changes nothing the series says."""
    _three_tasks(atlas_db)
    _delete_a_task_after_the_series_statement(monkeypatch, atlas_db)
    with psycopg.connect(atlas_dsn, autocommit=True) as reader:  # as a gate's own connection is
        (series,) = fetch_series(reader, Selection()).values()
    assert series.n == 30 and series.tasks is not None
    assert {task: n for task, (_, n) in series.tasks.items()} == {"task0": 10, "task1": 10, "task2": 10}


@pytest.mark.parametrize("quirk", ["1e400", "1e300"])
def test_the_exact_read_after_a_bare_one_reads_the_same_snapshot(
    atlas_db: psycopg.Connection[Any], atlas_dsn: str, monkeypatch: pytest.MonkeyPatch, quirk: str
) -> None:
    """A bare read that failed (1e400: no float8) or packed a magnitude past ordinary (1e300) is
    followed by the exact read in the same snapshot: sessions another client deletes in between
    are still counted, and the quirky score falls back to its score_mean."""
    atlas_db.execute("DROP INDEX sessions_reward_score_idx")
    _three_tasks(atlas_db)
    atlas_db.execute(
        "INSERT INTO sessions (task, metadata, reward_stats) VALUES ('task0', '{\"learning_key\": \"k\"}', %s::jsonb)",
        (f'{{"score": {quirk}, "score_mean": 0.9}}',),
    )
    atlas_db.commit()
    original = series_module.run
    bare_reads: list[Any] = []

    def run_then_write(conn: Any, query: Any, params: Any, **options: Any) -> Any:
        try:
            return original(conn, query, params, **options)
        finally:
            if options.get("bare"):
                bare_reads.append(query)
                atlas_db.execute("DELETE FROM sessions WHERE task = 'task0'")
                atlas_db.commit()

    monkeypatch.setattr(series_module, "run", run_then_write)
    with psycopg.connect(atlas_dsn, autocommit=True) as reader:  # as a gate's own connection is
        (series,) = fetch_series(reader, Selection()).values()
    assert len(bare_reads) == 1
    assert series.n == 31 and series.missing == 0 and series.tasks is not None
    assert {task: n for task, (_, n) in series.tasks.items()} == {"task0": 11, "task1": 10, "task2": 10}
    assert math.isclose(series.tasks["task0"][0], (10 * 0.3 + 0.9) / 11, rel_tol=1e-12)


def test_a_series_on_the_callers_connection_stays_consistent_while_others_write(
    atlas_db: psycopg.Connection[Any], atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a connection of the caller's (no snapshot of its own: each statement sees the latest
    commits) a task whose sessions vanished between the two statements has no name: the series is
    read again, and what it says holds together (per-task counts add up to n)."""
    _three_tasks(atlas_db)
    with psycopg.connect(atlas_dsn) as writer:
        _delete_a_task_after_the_series_statement(monkeypatch, writer)
        (series,) = fetch_series(atlas_db, Selection()).values()
    assert series.tasks is not None
    assert (series.n, {task: n for task, (_, n) in series.tasks.items()}) == (21, {"task1": 11, "task2": 10})


def test_large_scores_that_cancel_give_the_exact_mean(atlas_db: psycopg.Connection[Any]) -> None:
    for score in ("1e20", "0.9", "0.9", "-1e20"):
        atlas_db.execute(
            "INSERT INTO sessions (task, metadata, reward_stats) VALUES ('t', '{\"learning_key\": \"h\"}', %s)",
            (json.dumps({"score": float(score)}),),
        )
    (series,) = fetch_series(atlas_db, Selection()).values()
    assert series.sample.mean == math.fsum([1e20, 0.9, 0.9, -1e20]) / 4 == 0.45


def test_the_newest_sessions_of_each_key(atlas_db: psycopg.Connection[Any]) -> None:
    """``last``: the newest usable sessions of each key (latest time, then highest id) make the
    series; sessions without a usable score and those left out by the uncertainty bound are
    counted over the whole selection, as without ``last``."""
    rows = _load(atlas_db, INDEXABLE, FALLBACKS)
    atlas_db.execute("UPDATE sessions SET created_at = timestamptz '2025-01-01' - (id % 7) * interval '1 minute'")
    created = {r["id"]: -(r["id"] % 7) for r in rows}
    for last, bound, digits in itertools.product((1, 6, 30, 1000), (None, 0.5), (0, 4)):
        for tasks in (True, False):
            got = fetch_series(atlas_db, Selection.build(last=last, max_uncertainty=bound), digits=digits, tasks=tasks)
            for key in ("a", "b"):
                usable = [
                    r
                    for r in rows
                    if r["key"] == key
                    and r["score"] is not None
                    and not (bound is not None and r["u"] is not None and r["u"] > bound)
                ]
                newest = sorted(usable, key=lambda r: (created[r["id"]], r["id"]), reverse=True)[:last]
                whole = _oracle(rows, key=key, digits=digits, worst=5, bound=bound)
                want = _oracle(newest, key=key, digits=digits, worst=5, bound=bound)
                series, where = got[key], (key, last, bound, digits, tasks)
                assert (series.n, series.missing, series.uncertain) == (
                    len(newest),
                    whole["missing"],
                    whole["uncertain"],
                ), where
                assert series.sample.values.tolist() == want["values"], where
                assert series.sample.counts.tolist() == want["counts"], where
                assert list(series.worst) == want["worst"], where
                assert math.isclose(series.sample.mean, statistics.fmean(want["scores"]), rel_tol=1e-12), where
                if len(newest) > 1:
                    assert series.sample.variance is not None
                    assert math.isclose(series.sample.variance, statistics.variance(want["scores"]), rel_tol=1e-9)
                if tasks:
                    assert series.tasks is not None and series.tasks.keys() == want["tasks"].keys(), where
                    for task, (mean, count) in want["tasks"].items():
                        assert series.tasks[task][1] == count and math.isclose(series.tasks[task][0], mean), where
                else:
                    assert series.tasks is None, where
                if want["uncertainty_mean"] is None:
                    assert series.uncertainty_mean is None, where
                else:
                    assert series.uncertainty_mean is not None
                    assert math.isclose(series.uncertainty_mean, want["uncertainty_mean"], rel_tol=1e-12), where
