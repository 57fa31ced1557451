"""Per-test cost of a family whose every test needs N realistic sessions: a seeded template
(``atlas_fixtures(seed=fill)``) against inserting them in each test.

Both variants run on one throwaway server, through the machinery the fixtures use (the
``DatabaseManager``'s clone pools), test by test, interleaved:

* **seeded**: the family's template was filled once with ``BoundFactory(conn).sessions(N)``; a test
  takes a clone from the seeded pool, connects, reads ``count(*)`` (N), and gives the database back;
* **empty clone** (the reference for "the cost of a plain clone"): a clone of the plain template,
  connect, ``count(*)`` (0), give it back;
* **per test**: a test takes a clone of the plain template, connects, inserts the same N sessions
  with ``BoundFactory(conn).sessions(N)`` (COPY, committed, as the ``atlas_factory`` fixture does),
  reads ``count(*)``, and gives the database back.

A round runs ``--tests`` tests of each variant, alternating (seeded, empty, per test, seeded, ...); each
round gives a mean per-test time per variant. The table shows the median over ``--rounds`` rounds
(>= 3) and the ratio per-test / seeded of each round, median first. The one-time cost of the fill
(once per run and xdist worker) is printed apart. Absolute times depend on the machine; the ratio,
measured side by side, is what counts.

Usage::

    python benchmarks/bench_seeds.py [--sessions 500] [--tests 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from pytest_atlas._config import resolve_settings
from pytest_atlas._table import render_table
from pytest_atlas.db import AtlasPostgres, ClonePool, DatabaseManager, Seed, plan_server, start_server
from pytest_atlas.factories import BoundFactory
from pytest_atlas.schema import default_sources


def one_test(server: AtlasPostgres, pool: ClonePool, body: Callable[[psycopg.Connection[Any]], int], n: int) -> float:
    start = time.perf_counter()
    name = pool.acquire()
    with server.connect(name) as conn:
        count = body(conn)
    pool.release(name)
    elapsed = time.perf_counter() - start
    assert count == n, (count, n)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--tests", type=int, default=10, help="tests of each variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the table shows medians)")
    n = args.sessions

    def fill(conn: psycopg.Connection[Any]) -> None:
        BoundFactory(conn, seed=1, commit=False).sessions(n)

    def count(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM sessions").fetchone()
        return int(row[0]) if row else -1

    def insert_then_count(conn: psycopg.Connection[Any]) -> int:
        BoundFactory(conn, seed=1, commit=True).sessions(n)
        return count(conn)

    sources = default_sources()
    server = start_server(plan_server(resolve_settings({}, {}, {}), sources))
    manager = DatabaseManager(server, sources, keep=False)
    try:
        started = time.perf_counter()
        seeded = manager.pool(sources, Seed(fill))
        fill_time = time.perf_counter() - started
        plain = manager.pool(sources)
        one_test(server, seeded, count, n)  # warm both pools (first clones, connections)
        one_test(server, plain, insert_then_count, n)
        rounds: list[tuple[float, float, float]] = []
        for _ in range(args.rounds):
            times: dict[str, list[float]] = {"seeded": [], "empty": [], "per test": []}
            for _ in range(args.tests):
                times["seeded"].append(one_test(server, seeded, count, n))
                times["empty"].append(one_test(server, plain, count, 0))
                times["per test"].append(one_test(server, plain, insert_then_count, n))
            rounds.append(
                (statistics.mean(times["seeded"]), statistics.mean(times["empty"]), statistics.mean(times["per test"]))
            )
    finally:
        manager.close()
        server.stop()

    seeded_ms = statistics.median(r[0] for r in rounds) * 1000
    empty_ms = statistics.median(r[1] for r in rounds) * 1000
    per_test_ms = statistics.median(r[2] for r in rounds) * 1000
    empty_ratios = sorted((r[1] / r[0] for r in rounds), reverse=True)
    ratios = sorted((r[2] / r[0] for r in rounds), reverse=True)
    print(f"{n} sessions per test, {args.tests} tests of each variant per round, {args.rounds} rounds, interleaved")
    print(f"PostgreSQL {server.version}; one-time fill of the seeded template: {fill_time:.2f} s")
    print(
        render_table(
            [
                ["variant", "per test (median of rounds)", "per-test / seeded (median; all rounds)"],
                ["seeded template (a plain clone)", f"{seeded_ms:.1f} ms", "1.0"],
                [
                    "empty clone, no data (reference)",
                    f"{empty_ms:.1f} ms",
                    f"{statistics.median(empty_ratios):.2f}; " + ", ".join(f"{r:.2f}" for r in empty_ratios),
                ],
                [
                    f"insert {n} sessions in each test",
                    f"{per_test_ms:.1f} ms",
                    f"{statistics.median(ratios):.1f}; " + ", ".join(f"{r:.1f}" for r in ratios),
                ],
            ],
            right=[1],
        )
    )


if __name__ == "__main__":
    main()
