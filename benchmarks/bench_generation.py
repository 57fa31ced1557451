"""Examples per second: pytest-atlas's domain strategies vs hypothesis-jsonschema's ``from_schema``.

Rows (each strategy against ``from_schema`` on the shipped JSON Schema of the same document):

* ``session_metadata()``  vs ``from_schema(session-metadata.schema.json)``
* ``session_graphs()``    vs ``from_schema(<graph>)``: an object holding one document of every kind a
  session graph holds, each under its shipped schema (session metadata, reward, reward stats,
  reward audit, plan, 1-3 step evaluations with step metadata, 8-20 trajectory events);
* ``export_traces()``     vs ``from_schema(export-trace.schema.json)``.

A ``from_schema`` run that has not produced its first example within ``--setup-timeout`` seconds is
stopped and reported as such (hypothesis-jsonschema canonicalises the whole schema before the first
example; on the export-trace schema that takes longer than any test suite can wait).

hypothesis-jsonschema does not work with current Hypothesis, so it runs in a throwaway virtual
environment with ``hypothesis==6.170.9`` and ``hypothesis-jsonschema==0.23.1`` from the package index
(created once under ``--venv``, reused afterwards). Our strategies run in the current interpreter.
Both sides are timed the same way: one ``@given`` test with ``phases=[generate]``, no example
database, no deadline, ``max_examples`` examples; time per example = wall time / examples run; the
median of ``--repeats`` runs is reported. The schemas reference each other (``common.schema.json``
...), so they are bundled into one self-contained document first. A sample of the examples each side
generated is validated with ``pytest_atlas.validation`` and the invalid ones are counted.

Usage::

    python benchmarks/bench_generation.py [--repeats 5] [--ours 300] [--theirs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_atlas._table import render_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "jsonschemas"
PINS = ["hypothesis==6.170.9", "hypothesis-jsonschema==0.23.1"]

CHILD = r"""
import json, sys, time, warnings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_jsonschema import from_schema
warnings.simplefilter("ignore")
schema = json.load(open(sys.argv[1]))
examples, repeats, sample_out, budget = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])


class OutOfTime(Exception):
    pass


strategy = from_schema(schema)
start = time.perf_counter()
strategy.example()  # warm-up: from_schema resolves and canonicalises the schema on first use
setup = time.perf_counter() - start
results, sample = [], []
for _ in range(repeats):
    count = [0]
    began = [0.0]

    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(document):
        count[0] += 1
        if len(sample) < 200:
            sample.append(document)
        if time.perf_counter() - began[0] > budget:
            raise OutOfTime  # generate-only: Hypothesis stops at the first failure, no shrinking

    began[0] = time.perf_counter()
    try:
        run()
    except OutOfTime:
        pass
    results.append((time.perf_counter() - began[0]) / max(count[0], 1))
json.dump(sample, open(sample_out, "w"))
print(json.dumps({"per_example": results, "setup": setup}))
"""


GRAPH = {
    "type": "object",
    "required": ["metadata", "reward", "reward_stats", "reward_audit", "plan", "step_results", "trajectory_events"],
    "properties": {
        "metadata": {"$ref": "session-metadata.schema.json"},
        "reward": {"$ref": "session-reward.schema.json"},
        "reward_stats": {"$ref": "reward-stats.schema.json"},
        "reward_audit": {"$ref": "reward-audit.schema.json"},
        "plan": {"$ref": "plan.schema.json"},
        "step_results": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["evaluation", "metadata"],
                "properties": {
                    "evaluation": {"$ref": "step-evaluation.schema.json"},
                    "metadata": {"$ref": "step-metadata.schema.json"},
                },
            },
        },
        "trajectory_events": {
            "type": "array",
            "minItems": 8,
            "maxItems": 20,
            "items": {"$ref": "trajectory-event.schema.json"},
        },
    },
}


def graph_documents(graph: Any) -> dict[str, Any]:
    """A session graph's documents in the shape of GRAPH (to validate our side the same way)."""
    session = graph.session
    return {
        "metadata": session["metadata"],
        "reward": session["reward"],
        "reward_stats": session["reward_stats"],
        "reward_audit": session["reward_audit"],
        "plan": graph.plan,
        "step_results": [{"evaluation": r["evaluation"], "metadata": r["metadata"]} for r in graph.step_results],
        "trajectory_events": [r["event"] for r in graph.trajectory_events],
    }


def bundle(name: str) -> dict[str, Any]:
    """One self-contained schema: every ``other.schema.json#/...`` reference made local."""
    documents = {path.name: json.loads(path.read_text()) for path in SCHEMAS.glob("*.schema.json")}
    documents["graph.schema.json"] = GRAPH
    defs: dict[str, Any] = {}

    def local(file: str, pointer: str) -> str:
        stem = file.removesuffix(".schema.json").replace("-", "_")
        if not pointer or pointer == "/":
            key = f"{stem}__root"
            if key not in defs:
                defs[key] = {}
                body = {k: v for k, v in documents[file].items() if k not in ("$defs", "$id", "$schema")}
                defs[key] = rewrite(body, file)
            return f"#/$defs/{key}"
        parts = pointer.strip("/").split("/")
        if parts[0] != "$defs" or len(parts) != 2:
            raise SystemExit(f"cannot bundle the reference {file}#{pointer}")
        key = f"{stem}__{parts[1]}"
        if key not in defs:
            defs[key] = {}
            defs[key] = rewrite(documents[file]["$defs"][parts[1]], file)
        return f"#/$defs/{key}"

    def rewrite(node: Any, file: str) -> Any:
        if isinstance(node, list):
            return [rewrite(item, file) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                target, _, pointer = value.partition("#")
                out[key] = local(target or file, pointer)
            elif key.startswith("x-"):
                continue
            else:
                out[key] = rewrite(value, file)
        return out

    root = local(f"{name}.schema.json", "")

    # hypothesis-jsonschema resolves a $ref relative to the subschema it sits in, so the definitions
    # are substituted in place (the shipped schemas are not recursive)
    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            key = node["$ref"].removeprefix("#/$defs/")
            if key in seen:
                raise SystemExit(f"{name}: recursive $ref {key}; cannot bundle for hypothesis-jsonschema")
            rest = {k: inline(v, seen) for k, v in node.items() if k != "$ref"}
            target = inline(defs[key], (*seen, key))
            return {"allOf": [target, rest]} if rest else target
        return {k: inline(v, seen) for k, v in node.items()}

    body = inline({"$ref": root}, ())
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}


def ensure_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    check = [str(python), "-c", "import hypothesis, hypothesis_jsonschema; print(hypothesis.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True, text=True).stdout.strip() == "6.170.9":
        return python
    print(f"creating {path} with {' '.join(PINS)} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    return python


def theirs(
    python: Path, name: str, examples: int, repeats: int, budget: float, timeout: float, workdir: Path
) -> tuple[list[float], float, list[Any]] | None:
    schema_file = workdir / f"{name}.bundled.json"
    schema_file.write_text(json.dumps(bundle(name)))
    script = workdir / "child.py"
    script.write_text(CHILD)
    sample_file = workdir / f"{name}.sample.json"
    try:
        out = subprocess.run(
            [str(python), str(script), str(schema_file), str(examples), str(repeats), str(sample_file), str(budget)],
            capture_output=True,
            text=True,
            timeout=timeout + repeats * budget * 1.5,
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise SystemExit(f"hypothesis-jsonschema failed on {name}:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["per_example"], result["setup"], json.loads(sample_file.read_text())


def ours(strategy: Any, examples: int, repeats: int) -> tuple[list[float], list[Any]]:
    from hypothesis import HealthCheck, Phase, given, settings

    results: list[float] = []
    sample: list[Any] = []
    count = [0]

    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(document: Any) -> None:
        count[0] += 1
        if len(sample) < 200:
            sample.append(document)

    for _ in range(repeats):
        count[0] = 0
        start = time.perf_counter()
        run()
        results.append((time.perf_counter() - start) / max(count[0], 1))
    return results, sample


def invalid_count(documents: list[Any], schema: str, convert: Any = None) -> int:
    from pytest_atlas.validation import is_valid

    def valid(document: Any) -> bool:
        if schema != "graph":
            return is_valid(document, schema)
        parts = [
            (document[key], name)
            for key, name in (
                ("metadata", "session-metadata"),
                ("reward", "session-reward"),
                ("reward_stats", "reward-stats"),
                ("reward_audit", "reward-audit"),
                ("plan", "plan"),
            )
        ]
        for step in document["step_results"]:
            parts.append((step["evaluation"], "step-evaluation"))
            if step["metadata"] is not None:  # NULL in the database: nothing to validate
                parts.append((step["metadata"], "step-metadata"))
        parts += [(event, "trajectory-event") for event in document["trajectory_events"]]
        return all(is_valid(part, name) for part, name in parts)

    return sum(not valid(convert(d) if convert else d) for d in documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", type=int, default=200, help="examples per run for our strategies")
    parser.add_argument("--theirs", type=int, default=30, help="examples per run for from_schema (at most)")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds per from_schema run; it stops early when they are used up"
    )
    parser.add_argument(
        "--setup-timeout", type=float, default=120.0, help="seconds from_schema may take to produce its first example"
    )
    parser.add_argument("--only", default="", help="comma-separated schema names (default: all)")
    parser.add_argument(
        "--venv",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-atlas-bench" / "hjs-6.170.9",
    )
    args = parser.parse_args()

    from hypothesis import __version__ as hypothesis_version

    from pytest_atlas import strategies as S

    python = ensure_venv(args.venv)
    rows = [
        ("session_metadata()", S.session_metadata(), "session-metadata", None),
        ("session_rewards()", S.session_rewards(), "session-reward", None),
        ("reward_stats()", S.reward_stats(), "reward-stats", None),
        ("reward_audits()", S.reward_audits(), "reward-audit", None),
        ("drift_assessments()", S.drift_assessments(), "drift", None),
        ("trajectory_events()", S.trajectory_events(), "trajectory-event", None),
        ("plans()", S.plans(), "plan", None),
        ("step_evaluations()", S.step_evaluations(), "step-evaluation", None),
        ("step_metadata()", S.step_metadata(), "step-metadata", None),
        ("discovery_payloads()", S.discovery_payloads(), "discovery-payload", None),
        ("discovery_metadata()", S.discovery_metadata(), "discovery-metadata", None),
        ("learning_registry_metadata()", S.learning_registry_metadata(), "learning-registry-metadata", None),
        ("session_graphs()", S.session_graphs(status="succeeded", score=(0.0, 1.0)), "graph", graph_documents),
        ("export_traces()", S.export_traces(), "export-trace", None),
    ]
    wanted = {name for name in args.only.split(",") if name}
    rows = [row for row in rows if not wanted or row[2] in wanted]
    measured: dict[str, tuple[list[float], float, list[Any]] | None] = {}
    table = []
    graphs: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, strategy, schema, convert in rows:
            measured[schema] = theirs(
                python, schema, args.theirs, args.repeats, args.budget, args.setup_timeout, Path(tmp)
            )
            our_times, our_sample = ours(strategy, args.ours, args.repeats)
            if schema == "graph":
                graphs = our_sample
            outcome = measured[schema]
            table.append(
                (
                    label,
                    schema,
                    statistics.median(our_times),
                    None if outcome is None else statistics.median(outcome[0]),
                    invalid_count(our_sample, schema, convert),
                    len(our_sample),
                    0 if outcome is None else invalid_count(outcome[2], schema),
                    0 if outcome is None else len(outcome[2]),
                    None if outcome is None else outcome[1],
                )
            )

    print(
        f"\nPython {sys.version.split()[0]}; ours on Hypothesis {hypothesis_version}, from_schema on "
        f"{' + '.join(PINS)}; median of {args.repeats} runs ({args.ours} / at most {args.theirs} examples or "
        f"{args.budget:.0f} s each)\n"
    )
    cells: list[tuple[str, ...]] = [
        (
            "strategy",
            "schema",
            "ours ms/ex",
            "ours ex/s",
            "from_schema ms/ex",
            "from_schema ex/s",
            "speed-up",
            "invalid ours",
            "invalid theirs",
            "from_schema setup s",
        )
    ]
    for label, schema, ours_s, theirs_s, bad_ours, n_ours, bad_theirs, n_theirs, setup in table:
        mine = (label, schema, f"{ours_s * 1e3:.2f}", f"{1 / ours_s:.0f}")
        if theirs_s is None:
            cells.append((*mine, "no example", "0", "-", f"{bad_ours}/{n_ours}", "-", f">{args.setup_timeout:.0f}"))
            continue
        cells.append(
            (
                *mine,
                f"{theirs_s * 1e3:.1f}",
                f"{1 / theirs_s:.1f}",
                f"{theirs_s / ours_s:.0f}x",
                f"{bad_ours}/{n_ours}",
                f"{bad_theirs}/{n_theirs}",
                f"{setup:.1f}",
            )
        )
    print(render_table(cells, right=set(range(2, 10))))

    # from_schema cannot produce a whole graph; what its documents would cost one by one, for the
    # graphs we generated (their average numbers of steps and events)
    parts = (
        "session-metadata",
        "session-reward",
        "reward-stats",
        "reward-audit",
        "plan",
        "step-evaluation",
        "step-metadata",
        "trajectory-event",
    )
    per = {name: statistics.median(measured[name][0]) for name in parts if measured.get(name)}  # type: ignore[index]
    ours_graph = next((row[2] for row in table if row[1] == "graph"), None)
    if graphs and ours_graph and len(per) == len(parts):
        steps = statistics.fmean(len(g.step_results) for g in graphs)
        events = statistics.fmean(len(g.trajectory_events) for g in graphs)
        summed = (
            per["session-metadata"]
            + per["session-reward"]
            + per["reward-stats"]
            + per["reward-audit"]
            + per["plan"]
            + steps * (per["step-evaluation"] + per["step-metadata"])
            + events * per["trajectory-event"]
        )
        print(
            f"\nsession_graphs() vs from_schema one document at a time (1 metadata, reward, stats, audit, plan, "
            f"{steps:.1f} step evaluations + step metadata, {events:.1f} events per graph): "
            f"{summed * 1e3:.1f} ms vs {ours_graph * 1e3:.2f} ms per graph = {summed / ours_graph:.0f}x"
        )
    print("\ngoal: speed-up >= 50x (steady state: from_schema's one-off setup, its first example, is not counted)")


if __name__ == "__main__":
    main()
