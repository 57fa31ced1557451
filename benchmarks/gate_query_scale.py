"""A gate over a million sessions: what the SQL-side aggregation fetches, and how long it takes.

Creates a scratch database on an existing PostgreSQL server, fills ``sessions`` with N generated
rows (20 learning keys, scores with 4 decimals, a few without a usable score), then compares:

* the gate query (``pytest_atlas.gates.fetch_series``): filtering, moments and the frequency table
  computed by PostgreSQL, one row back per distinct rounded score and key;
* the naive way: fetch every score and compute in Python.

It prints rows fetched and the median time of several repeats, and the EXPLAIN ANALYZE summary of
the main gate query. The scratch database is dropped at the end.

    python benchmarks/gate_query_scale.py --dsn postgresql://postgres@127.0.0.1:55432/postgres
    python benchmarks/gate_query_scale.py --rows 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact
from pytest_atlas._resources import schema_path
from pytest_atlas.gates import Selection, _query, fetch_series

FILL = """
INSERT INTO sessions (task, status, review_status, metadata, reward_stats, created_at)
SELECT 'task ' || (i %% 500),
       'succeeded',
       CASE WHEN i %% 1000 = 0 THEN 'quarantined' ELSE 'approved' END,
       jsonb_build_object('learning_key', 'key-' || (i %% 20), 'execution_mode', 'auto'),
       CASE WHEN i %% 997 = 0 THEN jsonb_build_object('score', NULL)
            ELSE jsonb_build_object('score', round((0.55 + 0.4 * (random() + random()) / 2)::numeric, 4),
                                    'uncertainty_mean', 0.1) END,
       timestamptz '2025-01-01' + i * interval '1 second'
FROM generate_series(1, %(rows)s) AS i
"""


def timed(repeats: int, work: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_TEST_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    name = f"gates_bench_{os.getpid()}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(dsn_with_dbname(args.dsn, name), autocommit=True) as conn:
            conn.execute(schema_path().read_text())
            started = time.perf_counter()
            conn.execute(FILL, {"rows": args.rows})
            conn.execute("ANALYZE sessions")
            print(
                f"server {redact(args.dsn)}; filled {args.rows:,} sessions in "
                f"{time.perf_counter() - started:.1f} s; median of {args.repeats} repeats\n"
            )

            fetched = {"rows": 0}
            captured: dict[str, Any] = {}
            original = _query._run

            def counting(conn: Any, query: Any, params: Any) -> Any:
                captured.update(query=query, params=params)
                rows = original(conn, query, params)
                fetched["rows"] += len(rows)
                return rows

            _query._run = counting  # type: ignore[assignment]

            def gate(selection: Selection) -> Any:
                fetched["rows"] = 0
                return fetch_series(conn, selection), fetched["rows"]

            def naive() -> Any:
                rows = conn.execute(
                    "SELECT metadata->>'learning_key', (reward_stats->>'score')::float FROM sessions "
                    "WHERE review_status <> 'quarantined' AND reward_stats->>'score' IS NOT NULL"
                ).fetchall()
                by_key: dict[str, list[float]] = {}
                for key, score in rows:
                    by_key.setdefault(key, []).append(score)
                return {k: (len(v), statistics.fmean(v), statistics.variance(v)) for k, v in by_key.items()}, len(rows)

            print("| what | rows fetched | median time |")
            print("|---|---|---|")
            seconds, (series, rows) = timed(args.repeats, lambda: gate(Selection()))
            all_query = dict(captured)
            n = sum(s.n for s in series.values())
            print(f"| gate query, all {n:,} scored sessions, 20 keys | {rows:,} | {seconds * 1000:.0f} ms |")
            seconds, (_, rows) = timed(args.repeats, lambda: gate(Selection(last=200)))
            print(f"| gate query, last 200 per key | {rows:,} | {seconds * 1000:.0f} ms |")
            seconds, (series_key, rows) = timed(args.repeats, lambda: gate(Selection.build(learning_key="key-3")))
            print(
                f"| gate query, one learning key ({series_key['key-3'].n:,} sessions) | {rows:,} | "
                f"{seconds * 1000:.0f} ms |"
            )
            seconds, (exact, rows) = timed(args.repeats, naive)
            print(f"| naive: fetch every score, compute in Python | {rows:,} | {seconds * 1000:.0f} ms |")
            for key, (count, mean, variance) in exact.items():  # the two agree
                assert count == series[key].n, key
                assert abs(mean - series[key].sample.mean) < 1e-9, key
                assert abs(variance - series[key].sample.variance) < 1e-9, key
            missing = sum(s.missing for s in series.values())
            print(
                f"\n(gate and naive agree on n, mean and variance for every key; {missing:,} sessions without "
                "a usable score counted as missing)\n"
            )

            _query._run = original  # type: ignore[assignment]
            plan = conn.execute(
                sql.SQL("EXPLAIN (ANALYZE, TIMING OFF) ") + all_query["query"], all_query["params"]
            ).fetchall()
            print("EXPLAIN ANALYZE of the gate statement (all sessions), the nodes that touch every row:")
            for (line,) in plan:
                if "rows=" in line and (
                    "Scan" in line or "Aggregate" in line or "Append" in line or "Execution" in line
                ):
                    print("   ", line.split("  (cost")[0].rstrip(), "->", line[line.find("(actual") :])
                elif "Execution Time" in line:
                    print("   ", line)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
