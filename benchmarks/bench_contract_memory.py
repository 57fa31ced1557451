"""Memory of ``check_database`` over a big ``sessions`` table: it must stay flat as rows grow.

Creates a scratch database on an existing PostgreSQL server and fills ``sessions.metadata`` with N
generated rows (about 1.5 kB each, shaped like a successful Atlas session: review, triage dossier,
adaptive summary, reward stats, token usage, caller keys). Every 100th row has tags as a string (a
warning), every 1000th a score stored as a string (an error), every 50th a caller key 'team' and
every 7th one of 5,000 distinct caller keys (to push the census past its cap).

Then, in a fresh Python process per size, it runs ``check_database(dsn, tables=["sessions.metadata"])``
and reports the process's peak resident memory (ru_maxrss) before and after the check, the time, and
what the report found. The scratch database is dropped at the end.

    python benchmarks/bench_contract_memory.py --dsn postgresql://postgres@127.0.0.1:55432/postgres
    python benchmarks/bench_contract_memory.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact
from pytest_atlas._resources import schema_path

TEMPLATE = {
    "source": "atlas run",
    "review": {"require_approval": True, "default_export_statuses": ["approved"], "include_all_statuses": False},
    "triage_dossier": {
        "task": "Investigate the checkout latency spike.",
        "summary": "SRE investigation for checkout",
        "risks": [{"category": "availability", "description": "p99 over SLO", "severity": "high"}],
        "signals": [{"name": "p99_ms", "value": 2300, "confidence": 0.9, "annotation": None}],
        "persona_references": [],
        "embeddings": {},
        "tags": ["latency"],
        "metadata": {"source": "atlas run"},
        "fingerprint_hint": "sre::checkout",
    },
    "adaptive_summary": {
        "adaptive_mode": "paired",
        "mode_history": [{"mode": "paired", "confidence": 0.72}],
        "confidence": 0.72,
        "probe": {"mode": "paired", "confidence": 0.72},
    },
    "execution_mode": "paired",
    "reward_stats": {
        "score": 0.82,
        "score_mean": 0.82,
        "score_stddev": 0.03,
        "sample_count": 3,
        "uncertainty_mean": 0.13,
        "uncertainty_stddev": 0.03,
        "best_uncertainty": 0.1,
        "timestamp": "2025-11-03T14:22:05.118402+00:00",
    },
    "token_usage": {"prompt_tokens": 1830, "completion_tokens": 412, "total_tokens": 2242, "calls": 3},
    "student_learning": "Query the latency histogram before touching the cache.",
    "reward_summary": {"score": 0.82, "score_stddev": 0.03, "uncertainty_mean": 0.13},
    "learning_history": {"entries": [], "count": 0, "total_count": 0},
    "teacher_notes": ["Check the p99 histogram before changing the cache TTL."],
    "tags": ["latency", "checkout"],
}

FILL = """
INSERT INTO sessions (task, status, review_status, metadata, created_at, completed_at)
SELECT 'Investigate incident ' || i, 'succeeded', 'approved',
       %(template)s::jsonb
         || jsonb_build_object('learning_key', md5(i::text), 'incident_id', 'INC-' || i)
         || CASE WHEN i %% 100 = 0 THEN '{"tags": "latency"}'::jsonb ELSE '{}'::jsonb END
         || CASE WHEN i %% 1000 = 0 THEN jsonb_build_object('reward_stats', (%(template)s::jsonb -> 'reward_stats')
                                                            || '{"score": "0.82"}'::jsonb)
                 ELSE '{}'::jsonb END
         || CASE WHEN i %% 50 = 0 THEN '{"team": "sre"}'::jsonb ELSE '{}'::jsonb END
         || CASE WHEN i %% 7 = 0 THEN jsonb_build_object('k_' || (i %% 5000), i) ELSE '{}'::jsonb END,
       timestamptz '2025-01-01' + i * interval '1 second',
       timestamptz '2025-01-01' + i * interval '1 second' + interval '90 seconds'
FROM generate_series(%(start)s::int, %(stop)s::int) AS i
"""

CHILD = """
import json, resource, sys, time
from pytest_atlas import check_database
import pytest_atlas.validation as v
v.is_valid({}, "session-metadata")  # compile the validators before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
report = check_database(sys.argv[1], tables=["sessions.metadata"])
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
column = report.column("sessions.metadata")
print(json.dumps({"before_kb": before, "after_kb": after, "seconds": elapsed, "rows": column.rows_checked,
                  "error_rows": column.rows_with_errors, "warning_rows": column.rows_with_warnings,
                  "groups": len(column.errors) + len(column.warnings), "census": len(column.unknown_fields),
                  "truncated": column.truncated}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_TEST_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="table sizes to measure, ascending (default 100000 1000000)",
    )
    args = parser.parse_args()

    scratch = f"contracts_bench_{os.getpid()}"
    admin = psycopg.connect(args.dsn, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    dsn = dsn_with_dbname(args.dsn, scratch)
    results = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(schema_path().read_text())
            filled = 0
            for target in sorted(args.rows):
                started = time.perf_counter()
                conn.execute(FILL, {"template": json.dumps(TEMPLATE), "start": filled + 1, "stop": target})
                conn.execute("VACUUM ANALYZE sessions")
                filled = target
                size = conn.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size('sessions')), "
                    "avg(octet_length(metadata::text))::int FROM sessions"
                ).fetchone()
                assert size is not None
                fill_seconds = time.perf_counter() - started
                out = subprocess.run([sys.executable, "-c", CHILD, dsn], capture_output=True, text=True, check=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                measured.update(table_rows=target, table_size=size[0], row_bytes=size[1], fill_seconds=fill_seconds)
                results.append(measured)
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
        admin.close()

    print(f"server: {redact(args.dsn)}; check_database(dsn, tables=['sessions.metadata']), default batch size 500")
    header = (
        "rows",
        "table",
        "bytes/row",
        "RSS before",
        "peak RSS",
        "growth",
        "time",
        "rows/s",
        "error rows",
        "warning rows",
        "groups",
        "census",
        "truncated",
    )
    print("  ".join(header))
    for r in results:
        growth = (r["after_kb"] - r["before_kb"]) / 1024
        print(
            "  ".join(
                [
                    f"{r['table_rows']:,}",
                    r["table_size"],
                    f"{r['row_bytes']:,}",
                    f"{r['before_kb'] / 1024:.0f} MB",
                    f"{r['after_kb'] / 1024:.0f} MB",
                    f"{growth:+.0f} MB",
                    f"{r['seconds']:.1f} s",
                    f"{r['rows'] / r['seconds']:,.0f}",
                    f"{r['error_rows']:,}",
                    f"{r['warning_rows']:,}",
                    str(r["groups"]),
                    str(r["census"]),
                    str(r["truncated"]),
                ]
            )
        )


if __name__ == "__main__":
    main()
