"""A contract scan's throughput on one core against the original scan, and a split scan with and without workers.

Builds (once; ``--keep`` leaves it for the next run) a scratch database whose ``sessions.metadata``
holds N rows shaped like Atlas's success path (the generator of ``bench_contract_memory.py``: about
1 in 100 with a tolerated quirk, 1 in 1000 with an error, caller keys for the census). Then:

**One core.** Each in a fresh Python process pinned to one CPU, interleaved and repeated, it times
(after the import and the schema's compilation, which both scans pay once):

* fetch only: the scan's query through a server-side cursor, rows discarded;
* fetch + ``json.loads`` and fetch + ``orjson.loads`` of every document;
* ``check_database(dsn, tables=["sessions.metadata"])`` of the **original** scan (the checkout of
  ``--original``, unpacked with ``git archive``: ``json.loads`` and the storability walk on every
  row, no prefetching), of ``--baseline`` (another checkout's folder) when given, and of this checkout.

**Split.** ``pytest --atlas-contract`` of the same database in a scratch project, with
``--atlas-contract-split-rows`` set so that ``sessions`` is split into ``--parts`` id ranges, run
with ``-n 0`` and with ``-n 2`` (interleaved; wall time of the whole pytest process), and unsplit
with ``-n 0`` for reference. Their JSON reports must be equal (the benchmark checks it).

It prints the tables (median seconds, rows per second, ratios).

    python benchmarks/bench_contract_scan.py --dsn postgresql://postgres@127.0.0.1:55432/postgres
    python benchmarks/bench_contract_scan.py --rows 200000 --repeats 3 --keep
    python benchmarks/bench_contract_scan.py --rows 1000000 --repeats 3 --keep --split-only
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname, redact

sys.path.insert(0, str(Path(__file__).parent))
from _scratch import scratch_database
from bench_contract_memory import FILL, TEMPLATE

HERE = Path(__file__).resolve().parent.parent
#: the last commit before issue 12's scan work (json.loads and the storability walk on every row)
ORIGINAL = "3013dba"

CHILD = r"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
what, dsn = sys.argv[1], sys.argv[2]
import psycopg
query = ("SELECT id, convert_to(metadata::text, 'UTF8') FROM sessions")
if what in ("fetch", "json", "orjson"):
    import orjson
    cpu, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench", binary=True) as cursor:
        cursor.execute(query)
        rows = 0
        while batch := cursor.fetchmany(500):
            rows += len(batch)
            if what == "json":
                for _, raw in batch:
                    json.loads(bytes(raw).decode("utf-8"))
            elif what == "orjson":
                for _, raw in batch:
                    orjson.loads(bytes(raw))
else:
    from pytest_atlas import check_database
    from pytest_atlas.validation import validator_for
    validator_for("session-metadata")
    cpu, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    rows = check_database(dsn, tables=["sessions.metadata"]).column("sessions.metadata").rows_checked
seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"seconds": seconds, "cpu": used, "rows": rows}))
"""


def database(dsn: str, rows: int) -> str:
    name = f"contract_scan_{rows}"
    scratch_database(
        dsn, name, rows, lambda conn: conn.execute(FILL, {"template": json.dumps(TEMPLATE), "start": 1, "stop": rows})
    )
    return name


def unpack(revision: str, into: Path) -> Path:
    """The package and data files of ``revision`` of this repository, unpacked into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(HERE), "archive", revision, "pytest_atlas", "jsonschemas", "schema.sql"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def child(what: str, dsn: str, path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process: its own work, whatever else the machine runs)."""
    env = dict(os.environ, PYTHONPATH=str(path))
    # -P: not the current folder first on sys.path (it would be this checkout's package for every child)
    out = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, what, dsn], capture_output=True, text=True, check=True, env=env
    ).stdout
    measured = json.loads(out.strip().splitlines()[-1])
    return float(measured["seconds"]), float(measured["cpu"])


def pytest_run(dsn: str, project: Path, name: str, *args: str) -> tuple[float, float, dict[str, object]]:
    """(wall seconds, CPU seconds of the pytest processes, the JSON report without 'created' and 'parts')."""
    report = project / f"{name}.json"
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--atlas-contract",
            f"--atlas-target={dsn}",
            f"--atlas-report={report}",
            *args,
        ],
        cwd=project,
        capture_output=True,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(HERE)),
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    document = json.loads(report.read_text())
    document.pop("created", None)
    for payload in document["results"]["contract"]:
        payload.pop("parts", None)
    return seconds, used, document


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_TEST_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--original", default=ORIGINAL, help=f"the original scan's revision (default {ORIGINAL})")
    parser.add_argument("--baseline", type=Path, help="folder holding another checkout's pytest_atlas package")
    parser.add_argument("--parts", type=int, default=2, help="id ranges of the split scan (a power of two)")
    parser.add_argument("--no-split", action="store_true", help="skip the split scan's table")
    parser.add_argument("--split-only", action="store_true", help="only the split scan's table (no one-core table)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for the next run")
    args = parser.parse_args()
    if args.split_only and args.no_split:
        parser.error("--split-only and --no-split leave nothing to measure")

    name = database(args.dsn, args.rows)
    dsn = dsn_with_dbname(args.dsn, name)
    scratch = Path(tempfile.mkdtemp(prefix="bench-contract-scan-"))
    original = unpack(args.original, scratch / "original")
    work: dict[str, tuple[str, Path]] = {
        "fetch only": ("fetch", HERE),
        "fetch + json.loads": ("json", HERE),
        "fetch + orjson.loads": ("orjson", HERE),
        f"check_database, original ({args.original})": ("check", original),
    }
    if args.baseline:
        work[f"check_database, {args.baseline}"] = ("check", args.baseline)
    work["check_database, this checkout"] = ("check", HERE)
    times: dict[str, list[float]] = {what: [] for what in work}
    cpus: dict[str, list[float]] = {what: [] for what in work}
    split: dict[str, list[float]] = {}
    split_cpu: dict[str, list[float]] = {}
    reports: dict[str, dict[str, object]] = {}
    per_part = args.rows // args.parts  # more than this many rows: ceil(rows / per_part) = parts ranges
    runs = {
        "pytest --atlas-contract -n 0, not split": ("--atlas-contract-split-rows=0", "-n", "0"),
        f"pytest --atlas-contract -n 0, split in {args.parts}": (f"--atlas-contract-split-rows={per_part}", "-n", "0"),
        f"pytest --atlas-contract -n 2, split in {args.parts}": (f"--atlas-contract-split-rows={per_part}", "-n", "2"),
    }
    try:
        for _ in range(args.repeats):  # interleaved
            for what, (kind, path) in ({} if args.split_only else work).items():
                seconds, used = child(kind, dsn, path)
                times[what].append(seconds)
                cpus[what].append(used)
            if not args.no_split:
                for what, extra in runs.items():
                    seconds, used, reports[what] = pytest_run(dsn, scratch, "report", *extra)
                    split.setdefault(what, []).append(seconds)
                    split_cpu.setdefault(what, []).append(used)
    finally:
        if not args.keep:
            with psycopg.connect(args.dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    print(f"server {redact(args.dsn)}; {args.rows:,} sessions.metadata rows; median of {args.repeats} interleaved runs")
    if not args.split_only:
        one_core_table(args.rows, args.original, times, cpus)
    if split:
        split_table(args.parts, split, split_cpu, reports)


def one_core_table(rows: int, revision: str, times: dict[str, list[float]], cpus: dict[str, list[float]]) -> None:
    median = {what: statistics.median(t) for what, t in times.items()}
    cpu = {what: statistics.median(t) for what, t in cpus.items()}
    base = median[f"check_database, original ({revision})"]
    base_cpu = cpu[f"check_database, original ({revision})"]
    new = median["check_database, this checkout"]
    table(
        "One core (each process pinned to one CPU; the server runs where the OS puts it). CPU seconds are "
        "the process's own (fetch thread included), the measure a busy machine disturbs least:",
        ("what", "seconds", "rows/s", "vs original", "CPU seconds", "rows per CPU second", "vs original (CPU)"),
        [
            (
                what,
                f"{seconds:.2f}",
                f"{rows / seconds:,.0f}",
                f"{base / seconds:.2f}x" if what.startswith("check_database") else "",
                f"{cpu[what]:.2f}",
                f"{rows / cpu[what]:,.0f}",
                f"{base_cpu / cpu[what]:.2f}x" if what.startswith("check_database") else "",
            )
            for what, seconds in median.items()
        ],
    )
    fetch = median["fetch only"]
    print(
        f"\nshares of the original scan: fetching {fetch / base:.0%}, json.loads "
        f"{(median['fetch + json.loads'] - fetch) / base:.0%}, the rest (walk, validation, census) "
        f"{max(base - median['fetch + json.loads'], 0) / base:.0%}; of this checkout's: fetching {fetch / new:.0%} "
        f"(overlapped: the next batch is fetched while this one is checked), orjson.loads "
        f"{(median['fetch + orjson.loads'] - fetch) / new:.0%}, the rest "
        f"{max(new - median['fetch + orjson.loads'], 0) / new:.0%}"
    )


def split_table(
    parts: int, split: dict[str, list[float]], split_cpu: dict[str, list[float]], reports: dict[str, dict[str, object]]
) -> None:
    medians = {what: statistics.median(t) for what, t in split.items()}
    one = medians[f"pytest --atlas-contract -n 0, split in {parts}"]
    table(
        "Split scan (wall time of the whole pytest run, start-up included; CPU: the pytest processes', "
        "not the server's):",
        ("what", "seconds", "CPU seconds", "speed vs -n 0 split"),
        [
            (what, f"{seconds:.2f}", f"{statistics.median(split_cpu[what]):.2f}", f"{one / seconds:.2f}x")
            for what, seconds in medians.items()
        ],
    )
    texts = {what: json.dumps(report, sort_keys=True) for what, report in reports.items()}
    first = next(iter(texts.values()))
    different = [what for what, text in texts.items() if text != first]
    print(
        "\nthe JSON reports (without the merged results' 'parts') are "
        + ("equal" if not different else f"DIFFERENT: {', '.join(different)} differ from the first")
    )


if __name__ == "__main__":
    main()
