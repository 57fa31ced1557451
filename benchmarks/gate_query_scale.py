"""A gate over a million (or ten million) sessions against a plain fetch of the same scores.

For each size it builds (once, with ``generate_series`` in SQL; reused when ``--keep`` left it
behind) a scratch database whose ``sessions`` hold N rows: 20 learning keys, 500 tasks, scores with
4 decimals as plain JSON numbers, every 997th session with a null score, every 1000th quarantined.
Then, interleaved and repeated, it times:

* plain fetch (the baseline of the ratios): every usable score of the selected sessions fetched to
  Python (``SELECT metadata->>'learning_key', (reward_stats->>'score')::float``, the same rows as
  the gate: not quarantined, with a score), grouped by key in Python;
* plain fetch of what a series is computed from: the same rows with what the gate reads of each
  (key, id, task, the score and the uncertainty read the gate's quirk-tolerant way), fetched to
  Python and grouped by key: what computing the same series without the gate query would fetch;
* the gate query (``pytest_atlas.gates.fetch_series``) of a threshold gate (no per-task means),
  the same with the exact series statement alone (without the cheaper bare read first) and with
  its scan not split into ranges of blocks (one for each parallel worker),
  of a regression gate (with them), of the newest 200 per key, and of one learning key;
* a threshold gate's query and its chart, as a run that writes a report (JSON, HTML, the GitHub
  step summary) reads them: the series and every key's newest 300 scores from one scan.

Every row runs once untimed before the timed repeats (the table's pages read and cached, hint bits
set: the build vacuums), then the repeats interleave the rows. It prints one table per size
(median of the repeats, and the ratio to the plain fetch measured in the same run), then how the
cost grows from the smallest to the largest size. The gate and the plain fetches are checked to
agree on every key's count and mean. Scratch databases are dropped at the end unless ``--keep`` is
given.

    python benchmarks/gate_query_scale.py --dsn postgresql://postgres@127.0.0.1:55432/postgres
    python benchmarks/gate_query_scale.py --rows 1000000 10000000 --repeats 3 --keep
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact
from pytest_atlas.gates import Selection, fetch_series
from pytest_atlas.gates import _scores as scores_module
from pytest_atlas.gates import _series as series_module
from pytest_atlas.gates._series import CHART_POINTS, reward_chart, series_with_timeline
from pytest_atlas.gates._sql import scored

sys.path.insert(0, str(Path(__file__).parent))
from _scratch import scratch_database

FILL = """
INSERT INTO sessions (task, status, review_status, metadata, reward_stats, created_at)
SELECT 'task ' || (i % 500),
       'succeeded',
       CASE WHEN i % 1000 = 0 THEN 'quarantined' ELSE 'approved' END,
       jsonb_build_object('learning_key', 'key-' || (i % 20), 'execution_mode', 'auto'),
       CASE WHEN i % 997 = 0 THEN jsonb_build_object('score', NULL)
            ELSE jsonb_build_object('score', round((0.55 + 0.4 * (random() + random()) / 2)::numeric, 4),
                                    'uncertainty_mean', 0.1) END,
       timestamptz '2025-01-01' + i * interval '1 second'
FROM generate_series(1, {rows}) AS i
"""

PLAIN = (
    "SELECT metadata->>'learning_key', (reward_stats->>'score')::float FROM sessions "
    "WHERE review_status IS DISTINCT FROM 'quarantined' AND reward_stats->>'score' IS NOT NULL"
)


def database(dsn: str, rows: int) -> tuple[str, bool]:
    """The scratch database for ``rows`` sessions, built unless it exists; and whether it was built."""
    name = f"gate_scale_{rows}"
    built = scratch_database(dsn, name, rows, lambda conn: conn.execute(sql.SQL(FILL).format(rows=sql.Literal(rows))))
    return name, built


def plain(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, float]]:
    by_key: dict[str, list[float]] = {}
    for key, score in conn.execute(PLAIN).fetchall():
        by_key.setdefault(key, []).append(score)
    return {key: (len(scores), statistics.fmean(scores)) for key, scores in by_key.items()}


def series_rows(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, float]]:
    # the gate's own CTE of the selected sessions: the same WHERE, the same score expression
    params: dict[str, Any] = {}
    query = scored(Selection(), True, params) + sql.SQL("SELECT lk, id, task, score, uncertainty FROM matched")
    by_key: dict[str, list[tuple[int, str, float, float | None]]] = {}
    for key, session, task, score, uncertainty in conn.execute(query, params).fetchall():
        if score is not None:
            by_key.setdefault(key, []).append((session, task, score, uncertainty))
    return {key: (len(rows), statistics.fmean(row[2] for row in rows)) for key, rows in by_key.items()}


def charted(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    series, timeline = series_with_timeline(conn, Selection(), tasks=False, points=CHART_POINTS)
    return reward_chart(conn, Selection(), series, by_key=True, threshold=0.7, timeline=timeline)


def exact_only(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """A threshold gate read with the exact series statement alone (no bare first read): the
    baseline of what the bare read saves."""
    original = series_module._packed_rows

    def exact(conn: Any, statement: Any, params: Any, *, planner: Any, fields: Any) -> Any:
        return series_module.run(conn, statement(False), params, binary=True, planner=planner)

    series_module._packed_rows = exact
    try:
        return fetch_series(conn, Selection(), tasks=False)
    finally:
        series_module._packed_rows = original


def one_scan(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """A threshold gate read with its scan not split into block ranges: the baseline of what the
    parallel workers' ranges save."""
    original = scores_module.SPLIT_BLOCKS
    scores_module.SPLIT_BLOCKS = 2**62
    try:
        return fetch_series(conn, Selection(), tasks=False)
    finally:
        scores_module.SPLIT_BLOCKS = original


def measure(conn: psycopg.Connection[Any], repeats: int) -> list[tuple[str, float, float]]:
    work: dict[str, Callable[[], Any]] = {
        "plain fetch of every score (baseline)": lambda: plain(conn),
        "plain fetch of what a series is computed from": lambda: series_rows(conn),
        "gate query, threshold gate (no per-task means)": lambda: fetch_series(conn, Selection(), tasks=False),
        "threshold gate, exact series statement alone": lambda: exact_only(conn),
        "threshold gate, one scan (not split into block ranges)": lambda: one_scan(conn),
        "gate query, regression gate (per-task means)": lambda: fetch_series(conn, Selection()),
        "gate query, newest 200 per key": lambda: fetch_series(conn, Selection(last=200), tasks=False),
        "gate query, one learning key of 20": lambda: fetch_series(
            conn, Selection.build(learning_key="key-3"), tasks=False
        ),
        "threshold gate with its chart (a report is written)": lambda: charted(conn),
    }
    times: dict[str, list[float]] = {what: [] for what in work}
    results: dict[str, Any] = {}
    for run in work.values():  # untimed: every row starts from the same cache state
        run()
    for _ in range(repeats):  # interleaved: each repeat runs every row once, in the same order
        for what, run in work.items():
            started = time.perf_counter()
            results[what] = run()
            times[what].append(time.perf_counter() - started)
    exact, series = (
        results["plain fetch of every score (baseline)"],
        results["gate query, threshold gate (no per-task means)"],
    )
    for fetched in (exact, results["plain fetch of what a series is computed from"]):
        for key, (count, mean) in fetched.items():
            assert count == series[key].n, key
            assert abs(mean - series[key].sample.mean) < 1e-9, key
    base = statistics.median(times["plain fetch of every score (baseline)"])
    return [(what, statistics.median(t), statistics.median(t) / base) for what, t in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_TEST_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases for the next run")
    args = parser.parse_args()

    print(f"server {redact(args.dsn)}; median of {args.repeats} interleaved repeats\n")
    made: list[str] = []
    tables: dict[int, list[tuple[str, float, float]]] = {}
    try:
        for rows in args.rows:
            started = time.perf_counter()
            name, built = database(args.dsn, rows)
            made.append(name)
            how = f"built in {time.perf_counter() - started:.0f} s" if built else "reused"
            with psycopg.connect(dsn_with_dbname(args.dsn, name), autocommit=True) as conn:
                tables[rows] = measure(conn, args.repeats)
            print(f"### {rows:,} sessions ({how})\n")
            print("| what | median | ratio to the plain fetch |")
            print("|---|---|---|")
            for what, seconds, ratio in tables[rows]:
                print(f"| {what} | {seconds * 1000:,.0f} ms | {ratio:.2f} |")
            print()
        if len(tables) > 1:
            small, large = min(tables), max(tables)
            print(f"### growth from {small:,} to {large:,} sessions ({large / small:.0f}x the rows)\n")
            print("| what | time grew by |")
            print("|---|---|")
            for (what, low, _), (_, high, _) in zip(tables[small], tables[large], strict=True):
                print(f"| {what} | {high / low:.1f}x |")
    finally:
        if not args.keep:
            with psycopg.connect(args.dsn, autocommit=True) as admin:
                for name in made:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
