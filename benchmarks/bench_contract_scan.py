"""Where a contract scan's time goes, and its throughput against another checkout, on one core.

Builds (once; ``--keep`` leaves it for the next run) a scratch database whose ``sessions.metadata``
holds N rows shaped like Atlas's success path (the generator of ``bench_contract_memory.py``: about
1 in 100 with a tolerated quirk, 1 in 1000 with an error, caller keys for the census). Then, each
in a fresh Python process pinned to one CPU, interleaved and repeated, it times:

* fetch only: the scan's query through a server-side cursor, rows discarded;
* fetch + parse: plus ``json.loads`` of every document;
* ``check_database(dsn, tables=["sessions.metadata"])`` of this checkout;
* the same call of the checkout given with ``--baseline`` (for example main, unpacked with
  ``git archive main pytest_atlas | tar -x -C /tmp/base``), when given.

It prints a table (median seconds, rows per second, ratio to the baseline checkout) and the share of
the scan spent fetching, parsing and validating.

    python benchmarks/bench_contract_scan.py --dsn postgresql://postgres@127.0.0.1:55432/postgres
    python benchmarks/bench_contract_scan.py --rows 200000 --baseline /tmp/base --repeats 3 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact
from pytest_atlas._resources import schema_path

sys.path.insert(0, str(Path(__file__).parent))
from bench_contract_memory import FILL, TEMPLATE

CHILD = r"""
import json, os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
what, dsn = sys.argv[1], sys.argv[2]
import psycopg
query = ("SELECT id, convert_to(metadata::text, 'UTF8') FROM sessions")
started = time.perf_counter()
if what in ("fetch", "parse"):
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench", binary=True) as cursor:
        cursor.execute(query)
        rows = 0
        while batch := cursor.fetchmany(500):
            rows += len(batch)
            if what == "parse":
                for _, raw in batch:
                    json.loads(bytes(raw).decode("utf-8"))
else:
    from pytest_atlas import check_database
    rows = check_database(dsn, tables=["sessions.metadata"]).column("sessions.metadata").rows_checked
print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
"""


def database(dsn: str, rows: int) -> str:
    name = f"contract_scan_{rows}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with psycopg.connect(dsn_with_dbname(dsn, name)) as conn:
                count = conn.execute("SELECT count(*) FROM sessions").fetchone()
            if count == (rows,):
                return name
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))  # an interrupted build
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dsn_with_dbname(dsn, name), autocommit=True) as conn:
        conn.execute(schema_path().read_text())
        conn.execute(FILL, {"template": json.dumps(TEMPLATE), "start": 1, "stop": rows})
        conn.execute("VACUUM ANALYZE sessions")
    return name


def child(what: str, dsn: str, path: str | None) -> float:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path
    out = subprocess.run(
        [sys.executable, "-c", CHILD, what, dsn], capture_output=True, text=True, check=True, env=env
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_TEST_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="folder holding another checkout's pytest_atlas package")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for the next run")
    args = parser.parse_args()

    name = database(args.dsn, args.rows)
    dsn = dsn_with_dbname(args.dsn, name)
    here = str(Path(__file__).resolve().parent.parent)
    work = {
        "fetch only": ("fetch", here),
        "fetch + json.loads": ("parse", here),
        "check_database, this checkout": ("check", here),
    }
    if args.baseline:
        work["check_database, baseline checkout"] = ("check", args.baseline)
    times: dict[str, list[float]] = {what: [] for what in work}
    try:
        for _ in range(args.repeats):  # interleaved
            for what, (kind, path) in work.items():
                times[what].append(child(kind, dsn, path))
    finally:
        if not args.keep:
            with psycopg.connect(args.dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    median = {what: statistics.median(t) for what, t in times.items()}
    base = median.get("check_database, baseline checkout")
    print(
        f"server {redact(args.dsn)}; {args.rows:,} sessions.metadata rows; one CPU per process; "
        f"median of {args.repeats} interleaved runs\n"
    )
    print("| what | seconds | rows/s | throughput vs baseline checkout |")
    print("|---|---|---|---|")
    for what, seconds in median.items():
        ratio = f"{base / seconds:.2f}x" if base and what.startswith("check_database") else ""
        print(f"| {what} | {seconds:.2f} | {args.rows / seconds:,.0f} | {ratio} |")
    full = median["check_database, this checkout"]
    fetch, parse = median["fetch only"], median["fetch + json.loads"] - median["fetch only"]
    print(
        f"\nshare of this checkout's scan: fetching {fetch / full:.0%}, parsing {parse / full:.0%}, "
        f"validating and accumulating {max(full - fetch - parse, 0) / full:.0%} "
        "(fetching overlaps checking since the batches are prefetched, so the shares may add up to less)"
    )


if __name__ == "__main__":
    main()
