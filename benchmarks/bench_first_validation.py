"""The cost of the *first* validation in a process (what the first Hypothesis example of a test pays).

For each schema, in a fresh Python process per measurement, it times:

* ``first is_valid``: ``pytest_atlas.is_valid(example, schema)`` as the first call after import
  (the schema's own example, read from its file, so nothing is compiled before the timer starts);
* ``first check``: ``check_payload(example, schema)`` as the first call (errors, warnings and the
  unknown-fields census: the quirk-free and closed variants are compiled too);
* ``first failure``: ``check_payload`` of a document that fails, as the first call (imports
  python-jsonschema for the detailed errors);
* ``steady is_valid``: the same call once everything is compiled;
* ``compile all``: what the first call used to cost, measured in the same run: check every
  shipped schema with python-jsonschema and compile the three variants of the asked schema against
  a registry of every file.

Each figure is the median of ``--repeats`` fresh processes; the last column is the ratio of
``first is_valid`` to ``compile all``.

    python benchmarks/bench_first_validation.py
    python benchmarks/bench_first_validation.py --repeats 9 --schemas session-metadata reward-stats
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from pytest_atlas._table import render_table

MEASURE = r"""
import json, sys, time
name, what = sys.argv[1], sys.argv[2]
from pytest_atlas import check_payload, is_valid
from pytest_atlas._resources import jsonschemas_dir
example = json.loads((jsonschemas_dir() / f"{name}.schema.json").read_text())["examples"][0]
failing = {"score": "not a number"} if name == "reward-stats" else 42
if what == "compile-all":
    start = time.perf_counter()
    import jsonschema, jsonschema_rs
    from pytest_atlas.validation import _schemas
    docs = _schemas.documents()
    for doc in docs.values():
        jsonschema.Draft202012Validator.check_schema(doc)
    for variant in ("lenient", "no_quirk", "closed"):
        derived = {n: _schemas.derive(d, variant) for n, d in docs.items()}
        registry = jsonschema_rs.Registry([(d["$id"], d) for d in derived.values()])
        jsonschema_rs.Draft202012Validator(derived[name], registry=registry, validate_formats=True)
    print(time.perf_counter() - start)
    raise SystemExit
start = time.perf_counter()
if what == "first-is-valid":
    is_valid(example, name)
elif what == "first-check":
    check_payload(example, name)
elif what == "first-failure":
    check_payload(failing, name)
else:
    is_valid(example, name)
    start = time.perf_counter()
    for _ in range(1000):
        is_valid(example, name)
    print((time.perf_counter() - start) / 1000)
    raise SystemExit
print(time.perf_counter() - start)
"""

KINDS = ("first-is-valid", "first-check", "first-failure", "steady", "compile-all")


def measure(name: str, what: str, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", MEASURE, name, what], capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--schemas", nargs="*", default=["reward-stats", "session-metadata", "trajectory-event", "export-trace"]
    )
    args = parser.parse_args()
    header = ("schema", "first is_valid", "first check", "first failure", "steady is_valid", "compile all", "ratio")
    rows = [header]
    for name in args.schemas:
        figures = {what: measure(name, what, args.repeats) for what in KINDS}
        rows.append(
            (
                name,
                f"{figures['first-is-valid'] * 1000:.1f} ms",
                f"{figures['first-check'] * 1000:.1f} ms",
                f"{figures['first-failure'] * 1000:.1f} ms",
                f"{figures['steady'] * 1e6:.1f} µs",
                f"{figures['compile-all'] * 1000:.1f} ms",
                f"{figures['first-is-valid'] / figures['compile-all']:.3f}",
            )
        )
    print(render_table(rows, right=set(range(1, len(header)))))
    print(f"(medians of {args.repeats} fresh processes each)")


if __name__ == "__main__":
    main()
