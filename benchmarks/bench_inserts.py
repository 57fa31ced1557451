"""Sessions inserted per second: ``Factory.create_sessions(conn, n)`` vs PostgreSQL's own COPY of the same rows.

For each batch size N and each repeat (interleaved, in one process, on one server):

* **create**: ``Factory(seed).create_sessions(conn, N)``: builds N realistic session graphs (plans,
  steps, attempts, guidance notes, trajectory events, 10-30 kB of JSONB each) *and* inserts them
  (one id query and one COPY per table); the clock covers both.
* **PostgreSQL COPY**: the very same rows, dumped beforehand with ``COPY ... TO STDOUT`` into
  memory, fed back with ``COPY ... FROM STDIN`` table by table: the server's own bulk path with no
  client work at all.

Both run inside a transaction that is rolled back afterwards (the rollback is not timed), so the
tables are the same size for every measurement. The ratio is COPY time / create time per repeat,
median over repeats; the goal is >= 0.5 (create at least half as fast as raw COPY).

The script starts its own throwaway PostgreSQL (the same machinery as the test fixtures) unless
``--dsn`` names a server where it may create and drop a database.

Usage::

    python benchmarks/bench_inserts.py [--sizes 1000,5000] [--repeats 5] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact
from pytest_atlas._resources import schema_path
from pytest_atlas._table import render_table
from pytest_atlas.factories import Factory

TABLES = ("sessions", "plans", "step_results", "step_attempts", "guidance_notes", "trajectory_events")


def dump(conn: psycopg.Connection[Any]) -> dict[str, bytes]:
    out = {}
    for table in TABLES:
        buffer = io.BytesIO()
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))) as copy:
            for chunk in copy:
                buffer.write(chunk)
        out[table] = buffer.getvalue()
    return out


def raw_copy(conn: psycopg.Connection[Any], data: dict[str, bytes]) -> float:
    start = time.perf_counter()
    for table in TABLES:
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
            copy.write(data[table])
    elapsed = time.perf_counter() - start
    conn.rollback()
    return elapsed


def create(conn: psycopg.Connection[Any], n: int, seed: int) -> float:
    factory = Factory(seed=seed)
    start = time.perf_counter()
    factory.create_sessions(conn, n)
    elapsed = time.perf_counter() - start
    conn.rollback()
    return elapsed


def measure(conn: psycopg.Connection[Any], n: int, repeats: int) -> dict[str, Any]:
    seed = 20251125
    Factory(seed=seed).create_sessions(conn, n)
    conn.commit()
    data = dump(conn)
    megabytes = sum(len(v) for v in data.values()) / 1e6
    rows = {
        table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        for table in TABLES
    }
    conn.execute("TRUNCATE sessions CASCADE")
    conn.commit()
    ours, theirs, ratios = [], [], []
    for _ in range(repeats):
        copy_time = raw_copy(conn, data)
        create_time = create(conn, n, seed)
        ours.append(create_time)
        theirs.append(copy_time)
        ratios.append(copy_time / create_time)
    return {
        "n": n,
        "rows": sum(rows.values()),
        "events": rows["trajectory_events"],
        "mb": megabytes,
        "create": statistics.median(ours),
        "copy": statistics.median(theirs),
        "ratio": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_BENCH_DSN"), help="an existing server (default: start a throwaway one)"
    )
    args = parser.parse_args()

    server = None
    dsn = args.dsn
    if dsn is None:
        from pytest_atlas._config import resolve_settings
        from pytest_atlas.db import plan_server, start_server
        from pytest_atlas.schema import default_sources

        server = start_server(plan_server(resolve_settings({}, {}, {}), default_sources()))
        dsn = server.dsn("postgres")
    name = f"datagen_bench_{os.getpid()}"
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            version = admin.execute("SHOW server_version").fetchone()[0]
        try:
            with psycopg.connect(dsn_with_dbname(dsn, name)) as conn:
                conn.execute(schema_path().read_text())
                conn.commit()
                results = [measure(conn, int(n), args.repeats) for n in args.sizes.split(",")]
        finally:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        if server is not None:
            server.stop()

    print(f"\nPostgreSQL {version} at {redact(dsn)}; median of {args.repeats} interleaved repeats\n")
    header = ("sessions", "rows", "events", "MB", "create s", "create sess/s", "COPY s", "COPY sess/s")
    rows = [(*header, "create/COPY speed")]
    for r in results:
        rows.append(
            (
                f"{r['n']}",
                f"{r['rows']}",
                f"{r['events']}",
                f"{r['mb']:.1f}",
                f"{r['create']:.2f}",
                f"{r['n'] / r['create']:.0f}",
                f"{r['copy']:.2f}",
                f"{r['n'] / r['copy']:.0f}",
                f"{r['ratio']:.2f}x",
            )
        )
    print(render_table(rows, right=set(range(9))))
    print("\ngoal: create/COPY speed >= 0.5x (create includes building the sessions)")


if __name__ == "__main__":
    main()
