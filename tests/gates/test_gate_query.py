"""The query layer against a real Atlas schema: filters, missing scores, SQL-side aggregation."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pytest_atlas.gates import ALL_KEYS, Selection, fetch_modes, fetch_review, fetch_series

from .gates_seed import START, insert, session_row


def test_filters_combine(atlas_db: psycopg.Connection[Any]) -> None:
    insert(
        atlas_db,
        [
            session_row(0.9, key="a", minute=0),
            session_row(0.8, key="a", minute=1, status="failed"),
            session_row(0.7, key="a", minute=2, review="quarantined"),
            session_row(0.6, key="a", minute=3, review="pending", metadata={"source": "nightly"}),
            session_row(0.5, key="b", minute=4, task="other"),
        ],
    )
    everything = fetch_series(atlas_db, Selection())
    assert {k: s.n for k, s in everything.items()} == {"a": 3, "b": 1}  # quarantined left out
    assert fetch_series(atlas_db, Selection(include_quarantined=True))["a"].n == 4
    assert fetch_series(atlas_db, Selection.build(review_status=["quarantined"]))["a"].n == 1
    assert fetch_series(atlas_db, Selection.build(status="succeeded"))["a"].n == 2
    only = fetch_series(atlas_db, Selection.build(metadata={"source": "nightly"}))
    assert list(only) == ["a"] and only["a"].sample.mean == pytest.approx(0.6)
    window = fetch_series(
        atlas_db, Selection.build(since=START + timedelta(minutes=1), until=START + timedelta(minutes=4))
    )
    assert {k: s.n for k, s in window.items()} == {"a": 2}
    assert list(fetch_series(atlas_db, Selection.build(learning_key="b"))) == ["b"]
    assert fetch_series(atlas_db, Selection.build(task="other"))["b"].n == 1
    pooled = fetch_series(atlas_db, Selection(), by_key=False)
    assert list(pooled) == [ALL_KEYS] and pooled[ALL_KEYS].n == 4


def test_last_n_is_per_key_and_newest_first(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, [session_row(i / 100, key="a", minute=i) for i in range(30)])
    insert(atlas_db, [session_row(0.5, key="b", minute=i) for i in range(5)])
    series = fetch_series(atlas_db, Selection(last=10))
    assert series["a"].n == 10 and series["b"].n == 5
    assert series["a"].sample.mean == pytest.approx(statistics.fmean(i / 100 for i in range(20, 30)))


def test_missing_and_odd_scores(atlas_db: psycopg.Connection[Any]) -> None:
    insert(
        atlas_db,
        [
            session_row(0.8, minute=0),
            session_row(None, minute=1, reward_stats={"score": None, "score_mean": 0.6}),  # falls back
            session_row(None, minute=2, reward_stats={"score_mean": 0.4}),
            session_row(None, minute=3, reward_stats={"score": "0.7"}),  # a numeric string counts
            session_row(None, minute=4, reward_stats={"score": "NaN", "score_mean": "n/a"}),
            session_row(None, minute=5, reward_stats={"uncertainty_mean": 0.1}),
            session_row(None, minute=6, reward_stats=None),
            # the schema's index on (reward_stats->>'score')::float refuses these under "score"; score_mean can hold them
            session_row(None, minute=7, reward_stats={"score_mean": "1e999"}),
            session_row(None, minute=8, reward_stats=["not", "an", "object"]),
            session_row(None, minute=9, reward_stats={"score_mean": True}),
        ],
    )
    series = fetch_series(atlas_db, Selection())["k1"]
    assert series.n == 4 and series.missing == 6
    assert series.sample.mean == pytest.approx(statistics.fmean([0.8, 0.6, 0.4, 0.7]))
    assert [score for _, score in series.worst] == [0.4, 0.6, 0.7, 0.8]


def test_aggregates_match_a_computation_over_every_row(atlas_db: psycopg.Connection[Any]) -> None:
    import random

    rng = random.Random(5)
    scores = [round(rng.betavariate(7, 3), 6) for _ in range(400)]
    tasks = [f"t{i % 7}" for i in range(400)]
    ids = insert(
        atlas_db, [session_row(s, task=t, minute=i) for i, (s, t) in enumerate(zip(scores, tasks, strict=True))]
    )
    series = fetch_series(atlas_db, Selection(), digits=2)["k1"]
    assert series.n == 400
    assert series.sample.mean == pytest.approx(statistics.fmean(scores), rel=1e-12)  # exact, not rounded
    assert series.sample.variance == pytest.approx(statistics.variance(scores), rel=1e-9)
    assert len(series.sample.values) <= 101  # one row per distinct rounded score
    assert sorted(series.sample.expand().tolist()) == pytest.approx(sorted(round(s, 2) for s in scores))
    assert series.tasks is not None and set(series.tasks) == {f"t{i}" for i in range(7)}
    mean_t0 = statistics.fmean(s for s, t in zip(scores, tasks, strict=True) if t == "t0")
    assert series.tasks["t0"] == (pytest.approx(mean_t0), 58)
    lowest = sorted(range(400), key=lambda i: (scores[i], ids[i]))[:5]
    assert [sid for sid, _ in series.worst] == [ids[i] for i in lowest]


def test_review_and_mode_counts(atlas_db: psycopg.Connection[Any]) -> None:
    ids = insert(
        atlas_db,
        [
            session_row(0.8, review="quarantined", mode="coach"),
            session_row(0.8, review="pending", mode="paired"),
            session_row(0.8, review="approved", mode="auto"),
            session_row(0.8, review="approved", mode=None),
        ],
    )
    review = fetch_review(atlas_db, Selection())["k1"]
    assert review["total"] == 4 and review["statuses"] == {"quarantined": 1, "pending": 1, "approved": 2}
    assert review["ids"]["quarantined"] == [ids[0]]
    modes = fetch_modes(atlas_db, Selection(include_quarantined=True))["k1"]
    assert modes["modes"] == {"coach": 1, "paired": 1, "auto": 1, None: 1}


def test_a_failed_query_leaves_the_callers_transaction_usable(atlas_db: psycopg.Connection[Any]) -> None:
    from pytest_atlas import GateError

    insert(atlas_db, [session_row(0.8)])
    atlas_db.execute("ALTER TABLE sessions RENAME TO sessions_elsewhere")
    with pytest.raises(GateError, match="no 'sessions' table: it is not an Atlas database"):
        fetch_series(atlas_db, Selection())
    # the savepoint rolled back only the failed query: the caller's transaction goes on
    assert atlas_db.execute("SELECT count(*) FROM sessions_elsewhere").fetchone() == (1,)


def test_a_large_selection_is_aggregated_in_the_database(
    atlas_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 sessions in, a row per key and one per task out: the scores packed, not a row per session."""
    from pytest_atlas.gates import _series

    atlas_db.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
        "SELECT 'task ' || (i % 30), 'succeeded', 'approved', jsonb_build_object('learning_key', 'big'), "
        "jsonb_build_object('score', round((0.5 + 0.4 * random())::numeric, 2)) FROM generate_series(1, 20000) AS i"
    )
    fetched: list[int] = []
    original = _series.run

    def counting(conn: Any, query: Any, params: Any, **options: Any) -> Any:
        rows = original(conn, query, params, **options)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(_series, "run", counting)
    series = fetch_series(atlas_db, Selection())["big"]
    assert series.n == 20000
    # the highest id (one row), one scan grouped by key (the scored sessions packed, 32 bytes each with
    # the hash of its task), the names of the 30 task hashes
    assert fetched == [1, 1, 30]
    assert len(series.sample.values) == 41 and series.sample.counts.sum() == 20000
    assert series.tasks is not None and len(series.tasks) == 30


def test_max_uncertainty_leaves_out_sessions_the_judges_were_unsure_of(atlas_db: psycopg.Connection[Any]) -> None:
    def row(score: float, uncertainty: float | None, minute: int) -> dict[str, Any]:
        stats: dict[str, Any] = {"score": score, "score_mean": score}
        if uncertainty is not None:
            stats["uncertainty_mean"] = uncertainty
        return session_row(None, minute=minute, reward_stats=stats)

    insert(atlas_db, [row(0.9, 0.1, 0), row(0.8, 0.2, 1), row(0.1, 0.7, 2), row(0.2, 0.9, 3), row(0.7, None, 4)])
    every = fetch_series(atlas_db, Selection())["k1"]
    assert (every.n, every.uncertain) == (5, 0)
    sure = fetch_series(atlas_db, Selection.build(max_uncertainty=0.3))["k1"]
    assert (sure.n, sure.uncertain, sure.missing) == (3, 2, 0)
    assert sure.sample.mean == pytest.approx(statistics.fmean([0.9, 0.8, 0.7]))
    assert sure.uncertainty_mean == pytest.approx(0.15)
    # with last=N the N newest *usable* sessions count
    newest = fetch_series(atlas_db, Selection.build(max_uncertainty=0.3, last=2))["k1"]
    assert newest.sample.mean == pytest.approx(statistics.fmean([0.8, 0.7]))
    # and a key whose every score is too uncertain still shows up, with n = 0
    none = fetch_series(atlas_db, Selection.build(max_uncertainty=0.05))["k1"]
    assert (none.n, none.uncertain) == (1, 4)


@pytest.mark.parametrize("bad", [-0.1, "high", True, float("nan")])
def test_max_uncertainty_is_validated(bad: Any) -> None:
    from pytest_atlas.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="max_uncertainty must be a number in \\[0, 1\\]"):
        Selection.build(max_uncertainty=bad)


def test_max_uncertainty_in_a_threshold_gate(atlas_db: psycopg.Connection[Any]) -> None:
    from pytest_atlas.errors import InvalidArgument
    from pytest_atlas.gates import GateSpec, evaluate
    from pytest_atlas.reporting import gate_table

    rows = [session_row(None, minute=i, reward_stats={"score": 0.9, "uncertainty_mean": 0.05}) for i in range(30)]
    rows += [session_row(None, minute=30 + i, reward_stats={"score": 0.1, "uncertainty_mean": 0.8}) for i in range(30)]
    insert(atlas_db, rows)
    plain = evaluate(GateSpec.build("floor", {"kind": "threshold", "threshold": 0.75}), atlas_db)
    careful = evaluate(
        GateSpec.build("floor", {"kind": "threshold", "threshold": 0.75, "max_uncertainty": 0.3}), atlas_db
    )
    assert plain.outcome.value == "fail"
    assert careful.outcome.value == "pass"
    [key_row] = careful.rows
    assert "30 session(s) whose judges' uncertainty is above max_uncertainty left out" in key_row.reason
    assert "30 (+30 uncertain)" in gate_table([careful])
    with pytest.raises(InvalidArgument, match="max_uncertainty applies to threshold and regression gates"):
        GateSpec.build("d", {"kind": "drift", "max_uncertainty": 0.3})


def test_without_charts_the_same_verdict_and_no_chart(atlas_db: psycopg.Connection[Any]) -> None:
    from pytest_atlas.gates import GateSpec, evaluate

    rows = [
        session_row(0.6 + (i % 7) / 20, key=("a", "b")[i % 2], minute=i, metadata={"run": "main"}) for i in range(40)
    ]
    rows += [
        session_row(0.5 + (i % 5) / 20, key=("a", "b")[i % 2], minute=60 + i, metadata={"run": "candidate"})
        for i in range(40)
    ]
    insert(atlas_db, rows)
    specs = [
        GateSpec.build("floor", {"kind": "threshold", "threshold": 0.7}),
        GateSpec.build(
            "drop",
            {"kind": "regression", "metadata": {"run": "candidate"}, "baseline": {"metadata": {"run": "main"}}},
        ),
    ]
    for spec in specs:
        drawn, bare = evaluate(spec, atlas_db), evaluate(spec, atlas_db, charts=False)
        assert sorted(drawn.chart["rewards"]) == ["a", "b"], spec.name
        assert bare.chart == {}, spec.name
        assert bare.to_dict() == {**drawn.to_dict(), "chart": {}}, spec.name


def test_the_series_scan_is_grouped_by_hashing_not_by_sorting_every_session(atlas_db: psycopg.Connection[Any]) -> None:
    """The plan PostgreSQL picks for the series statement hashes the sessions into a row per key:
    a grouping it cannot estimate (an expression of the id) would make it sort every session."""
    from psycopg import sql

    from pytest_atlas.gates import _scores
    from pytest_atlas.gates._sql import filters, key_column

    atlas_db.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
        "SELECT 'task ' || (i % 30), 'succeeded', 'approved', jsonb_build_object('learning_key', 'k' || (i % 3)), "
        "jsonb_build_object('score', random()) FROM generate_series(1, 20000) AS i"
    )
    atlas_db.execute("ANALYZE sessions")
    params: dict[str, Any] = {"number_pattern": _scores.NUMBER_PATTERN, "task_seed": 12345}
    where = filters(Selection(), params)
    for timed, tasks in ((False, False), (True, True), (False, True)):
        statement = _scores.series_statement(key_column(True), where, timed=timed, tasks=tasks)
        plan = "\n".join(row[0] for row in atlas_db.execute(sql.SQL("EXPLAIN ") + statement, params))
        assert "HashAggregate" in plan and "Sort" not in plan, plan


def test_the_mean_uncertainty_of_many_sessions_does_not_drift(atlas_db: psycopg.Connection[Any]) -> None:
    """300,000 sessions judged with uncertainty 0.1: one float accumulator adding them one by one
    ends 5e-12 off (relative); the series' mean is 0.1 to the last few bits."""
    atlas_db.execute(
        "INSERT INTO sessions (task, status, review_status, metadata, reward_stats) "
        "SELECT 't', 'succeeded', 'approved', '{\"learning_key\": \"k\"}', "
        "jsonb_build_object('score', (i % 100) / 100.0, 'uncertainty_mean', 0.1) FROM generate_series(1, 300000) AS i"
    )
    for selection in (Selection(), Selection.build(max_uncertainty=0.5), Selection.build(last=250000)):
        series = fetch_series(atlas_db, selection, tasks=False)["k"]
        assert series.uncertainty_mean is not None
        assert abs(series.uncertainty_mean - 0.1) <= 1e-14, (selection, series.uncertainty_mean)
        assert abs(series.sample.mean - 0.495) <= 1e-14, (selection, series.sample.mean)


def test_a_time_python_cannot_hold_never_changes_a_verdict(atlas_db: psycopg.Connection[Any]) -> None:
    """A session at created_at 'infinity' (or after the year 9999) cannot be drawn; the gate's
    verdict and numbers are the same whether a report draws its chart or not (the point is left
    out of the chart)."""
    from pytest_atlas.gates import GateSpec, evaluate

    insert(atlas_db, [session_row(0.8 + (i % 5) / 50, key="k", minute=i) for i in range(20)])
    atlas_db.execute(
        "INSERT INTO sessions (task, metadata, reward_stats, created_at) VALUES "
        "('x', '{\"learning_key\": \"k\"}', '{\"score\": 0.91}', 'infinity')"
    )
    spec = GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5})
    drawn, bare = evaluate(spec, atlas_db), evaluate(spec, atlas_db, charts=False)
    assert bare.outcome.value == drawn.outcome.value == "pass"
    assert bare.to_dict() == {**drawn.to_dict(), "chart": {}}
    assert len(drawn.chart["rewards"]["k"]["points"]) == 20  # the point at infinity is left out


def test_a_baseline_names_any_session_id(atlas_db: psycopg.Connection[Any]) -> None:
    """Session ids are bigints: a series whose lowest sessions have ids 0 or below (a database of
    one's own) is saved and read back, not refused as damaged."""
    from pytest_atlas.gates import Series

    for session, score in ((0, 0.1), (-5, 0.2), (7, 0.3)):
        atlas_db.execute(
            "INSERT INTO sessions (id, task, metadata, reward_stats) VALUES (%s, 't', '{\"learning_key\": \"k\"}', %s)",
            (session, json.dumps({"score": score})),
        )
    (series,) = fetch_series(atlas_db, Selection()).values()
    assert [session for session, _ in series.worst] == [0, -5, 7]
    assert Series.from_json(series.to_json()).worst == series.worst
