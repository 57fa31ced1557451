"""What the plugin costs at pytest start-up: ``pytest --co -q`` on an empty project, with and without it.

Creates a temporary project holding one empty test module and runs, interleaved and repeated, in
fresh processes, three pairs:

* ``python -m pytest --co -q`` with every installed plugin (pytest-atlas through its entry point)
  and the same with ``-p no:atlas``: what a user pays in the environment at hand;
* the same pair with plugin autoloading off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, pytest-atlas
  loaded by ``-p pytest_atlas.plugin``, the run without it loading an empty plugin module the same
  way, so that both pay for pytest's handling of ``-p``): the plugin's own cost, including modules
  another installed plugin would otherwise load first (pytest-postgresql imports psycopg, for example);
* that pair without ``-q``: pytest then prints its report header, for which the plugin plans the
  test-database server (finds the binaries and the cache entry; connects to nothing).

Prints the median wall and CPU time of each run and each pair's difference (the plugin's cost), then
the heavy packages (psycopg, numpy, scipy, jsonschema, hypothesis) each run with the plugin imported
that its run without did not.

With ``--instructions`` each run is also made once under valgrind's callgrind, which counts the
instructions it executes: a measure other processes on the machine do not change.

The children run with byte-code caching on (``PYTHONDONTWRITEBYTECODE`` removed), as an installed
package is, after one warm-up round that writes the caches and is not counted.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --repeats 9
    python benchmarks/bench_startup.py --repeats 3 --instructions
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = (
    "import sys, pytest; code = pytest.main(['--co', '-p', 'no:cacheprovider'{extra}]); "
    "print('MODULES', ' '.join(sorted(sys.modules)))"
)
HEAVY = ("psycopg", "numpy", "scipy", "jsonschema", "jsonschema_rs", "hypothesis", "referencing")


def _env(autoload: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte code cached (see the warm-up round)
    if autoload:
        env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    else:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _command(extra: list[str]) -> list[str]:
    return [sys.executable, "-c", IMPORTS.format(extra="".join(f", {a!r}" for a in extra))]


def run(folder: Path, extra: list[str], autoload: bool) -> tuple[float, float, set[str]]:
    """Wall time, CPU time (user + system, less disturbed by a loaded machine) and modules loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        _command(extra),
        cwd=folder,
        env=_env(autoload),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    modules = next((line.split()[1:] for line in out.splitlines() if line.startswith("MODULES")), [])
    return seconds, cpu, set(modules)


def instructions(folder: Path, extra: list[str], autoload: bool) -> int | None:
    """Instructions the run executes, counted by valgrind's callgrind (the same on a busy machine)."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *_command(extra)],
        cwd=folder,
        env=_env(autoload),
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if found else None


#: (pair, run, extra arguments, autoload): the first run of a pair has the plugin, the second not
RUNS: tuple[tuple[str, str, list[str], bool], ...] = (
    ("installed plugins, -q", "with pytest-atlas", ["-q"], True),
    ("installed plugins, -q", "without (-p no:atlas)", ["-q", "-p", "no:atlas"], True),
    ("autoload off, -q", "with -p pytest_atlas.plugin", ["-q", "-p", "pytest_atlas.plugin"], False),
    ("autoload off, -q", "without (-p empty_plugin)", ["-q", "-p", "empty_plugin"], False),
    ("autoload off, header", "with -p pytest_atlas.plugin", ["-p", "pytest_atlas.plugin"], False),
    ("autoload off, header", "without (-p empty_plugin)", ["-p", "empty_plugin"], False),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each run's instructions once under valgrind (slow; unaffected by other processes)",
    )
    args = parser.parse_args()
    keys = [(pair, what) for pair, what, _, _ in RUNS]
    wall: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    modules: dict[tuple[str, str], set[str]] = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        (folder / "empty_plugin.py").write_text('"""A pytest plugin with no hooks."""\n')
        for round_ in range(args.repeats + 1):  # interleaved; the first round warms up and is not counted
            for pair, what, extra, autoload in RUNS:
                seconds, used, modules[pair, what] = run(folder, extra, autoload)
                if round_ > 0:
                    wall[pair, what].append(seconds)
                    cpu[pair, what].append(used)
        counted: dict[tuple[str, str], int | None] = {}
        if args.instructions:
            for pair, what, extra, autoload in RUNS:
                counted[pair, what] = instructions(folder, extra, autoload)
    print(f"`pytest --co` on an empty project, median of {args.repeats} interleaved runs\n")
    print("| pair | run | wall time | CPU time |")
    print("|---|---|---|---|")
    median = {key: (statistics.median(wall[key]) * 1000, statistics.median(cpu[key]) * 1000) for key in keys}
    for pair, what in keys:
        print(f"| {pair} | {what} | {median[pair, what][0]:.0f} ms | {median[pair, what][1]:.0f} ms |")
    heavy_lines = []
    for index in range(0, len(keys), 2):
        (pair, with_), (_, without) = keys[index], keys[index + 1]
        (wall_with, cpu_with), (wall_without, cpu_without) = median[pair, with_], median[pair, without]
        print(
            f"| {pair} | **the plugin's cost** | {wall_with - wall_without:.0f} ms "
            f"({wall_with / wall_without:.2f}x) | {cpu_with - cpu_without:.0f} ms ({cpu_with / cpu_without:.2f}x) |"
        )
        extra_modules = modules[pair, with_] - modules[pair, without]
        heavy = sorted({m.split(".")[0] for m in extra_modules if m.split(".")[0] in HEAVY})
        heavy_lines.append(
            f"{pair}: {len(extra_modules)} modules more with the plugin; heavy packages among them: "
            f"{', '.join(heavy) or 'none'}"
        )
    print("\n" + "\n".join(heavy_lines))
    if args.instructions:
        print("\n| pair | instructions with | without | the plugin's share |")
        print("|---|---|---|---|")
        for index in range(0, len(keys), 2):
            with_, without = counted[keys[index]], counted[keys[index + 1]]
            if with_ is None or without is None:
                print(f"| {keys[index][0]} | (valgrind unavailable) | | |")
                continue
            print(
                f"| {keys[index][0]} | {with_ / 1e6:,.0f} M | {without / 1e6:,.0f} M | "
                f"+{(with_ - without) / 1e6:,.0f} M ({with_ / without:.2f}x) |"
            )


if __name__ == "__main__":
    main()
