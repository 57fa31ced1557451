"""How long one scripted Atlas run takes: ``AtlasRuntime.run()`` along the runtime's main paths.

For each repeat, interleaved in one process on one server, every kind of run is timed once:

* **paired**: the default run (no history: Atlas pairs the agent with the teacher; three judges;
  the synthesizer writes a playbook entry);
* **routed coach**: a key with history, the router picks coach (student plan, teacher review);
* **escalation**: unsure judges, the arbiter decides;
* **retry**: the teacher rejects the first attempt with guidance;
* **failure**: the agent raises;
* **storage floor**: no runtime at all, Atlas's own ``Database``: connect, create a session, write
  a plan and a step, finalize, disconnect. What any run costs at least, for the ratio.

The first run of the process (importing Atlas, litellm and LangGraph, about 3 s) is reported apart.
The script starts its own throwaway PostgreSQL (the test fixtures' machinery) unless ``--dsn``
names a server where it may create and drop a database.

Usage::

    python benchmarks/bench_runtime.py [--repeats 20] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pytest_atlas._dsn import build_url, dsn_with_dbname, redact
from pytest_atlas._resources import schema_path
from pytest_atlas._table import render_table


def storage_floor(dsn: str) -> None:
    from atlas.config.models import StorageConfig
    from atlas.runtime.storage.database import Database
    from atlas.types import Plan, Step, StepEvaluation, StepResult

    async def go() -> None:
        db = Database(StorageConfig(database_url=dsn, apply_schema_on_connect=False))
        await db.connect()
        try:
            sid = await db.create_session("floor", {"learning_key": "floor"})
            await db.log_plan(sid, Plan(steps=[Step(id=1, description="x")], execution_mode="single_shot"))
            evaluation = StepEvaluation(validation={"valid": True, "guidance": None}, reward={"score": 0.0})
            await db.log_step_result(
                sid, StepResult(step_id=1, trace="t", output="o", evaluation=evaluation, attempts=1)
            )
            await db.finalize_session(sid, "o", "succeeded")
        finally:
            await db.disconnect()

    asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--dsn", default=os.environ.get("ATLAS_BENCH_DSN"), help="an existing server (default: start a throwaway one)"
    )
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    server = None
    dsn = args.dsn
    if dsn is None:
        from pytest_atlas._config import resolve_settings
        from pytest_atlas.db import plan_server, start_server
        from pytest_atlas.schema import default_sources

        server = start_server(plan_server(resolve_settings({}, {}, {}), default_sources()))
        dsn = server.dsn("postgres")
    name = f"runtime_bench_{os.getpid()}"
    timings: dict[str, list[float]] = {}
    events: dict[str, int] = {}
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            version = admin.execute("SHOW server_version").fetchone()[0]
        target = dsn_with_dbname(dsn, name)
        with psycopg.connect(target) as conn:
            conn.execute(schema_path().read_text())
            conn.commit()
        # asyncpg (Atlas's driver) takes URLs only
        database_url = build_url({k: str(v) for k, v in conninfo_to_dict(target).items() if v is not None})
        from pytest_atlas.runtime import AtlasRuntime

        start = time.perf_counter()
        runtime = AtlasRuntime(database_url)
        runtime.run("Warm up", learn=False)
        first = time.perf_counter() - start
        kinds: dict[str, Callable[[int], Any]] = {
            "paired": lambda i: runtime.run(f"Summarise incident {i}"),
            "routed coach": lambda i: runtime.run("Summarise the incident", mode="coach"),
            "escalation": lambda i: runtime.run(f"Judge incident {i}", uncertainty=0.6),
            "retry": lambda i: runtime.run(f"Explain outage {i}", guidance="Cite the logs."),
            "failure": lambda i: runtime.run(f"Crash {i}", fail=True),
            "storage floor": lambda i: storage_floor(database_url),
        }
        runtime.run("Summarise the incident")  # history for the routed runs
        for i in range(args.repeats):
            for kind, run in kinds.items():
                began = time.perf_counter()
                run(i)
                timings.setdefault(kind, []).append(time.perf_counter() - began)
                if kind != "storage floor":
                    with psycopg.connect(target) as conn:
                        count = conn.execute(
                            "SELECT count(*) FROM trajectory_events WHERE session_id = %s", [runtime.last.session_id]
                        ).fetchone()[0]
                    events[kind] = count
        runtime.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if server is not None:
            server.stop()

    floor = statistics.median(timings["storage floor"])
    print(f"\nPostgreSQL {version} at {redact(dsn)}; median of {args.repeats} interleaved repeats")
    print(f"first run of the process (imports Atlas): {first:.2f} s\n")
    rows = [("run", "median ms", "p90 ms", "events", "x storage floor")]
    for kind, values in timings.items():
        ordered = sorted(values)
        p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
        median = statistics.median(values)
        shown = str(events.get(kind, "")) if kind in events else "-"
        rows.append((kind, f"{median * 1000:.1f}", f"{p90 * 1000:.1f}", shown, f"{median / floor:.1f}x"))
    print(render_table(rows, right={1, 2, 3, 4}))


if __name__ == "__main__":
    main()
