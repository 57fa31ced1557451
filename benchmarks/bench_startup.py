"""What the plugin costs at pytest start-up: ``pytest --co -q`` on an empty project, with and without it.

Creates a temporary project holding one empty test module and runs, interleaved and repeated, in
fresh processes: ``python -m pytest --co -q`` (pytest-atlas loaded through its entry point) and the
same with ``-p no:atlas``. Prints the median wall time of each and the difference (the plugin's
cost), then the modules the plugin imports at start-up that the run without it does not.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --repeats 9
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = (
    "import sys, pytest; code = pytest.main(['--co', '-q', '-p', 'no:cacheprovider'{extra}]); "
    "print('MODULES', ' '.join(sorted(sys.modules)))"
)


def run(folder: Path, extra: list[str]) -> tuple[float, float, set[str]]:
    """Wall time, CPU time (user + system, less disturbed by a loaded machine) and modules loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS.format(extra="".join(f", {a!r}" for a in extra))],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    modules = next((line.split()[1:] for line in out.splitlines() if line.startswith("MODULES")), [])
    return seconds, cpu, set(modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_empty.py").write_text("def test_nothing():\n    pass\n")
        runs: tuple[tuple[str, list[str]], ...] = (
            ("with pytest-atlas", []),
            ("without (-p no:atlas)", ["-p", "no:atlas"]),
        )
        wall: dict[str, list[float]] = {what: [] for what, _ in runs}
        cpu: dict[str, list[float]] = {what: [] for what, _ in runs}
        modules: dict[str, set[str]] = {}
        for _ in range(args.repeats):  # interleaved
            for what, extra in runs:
                seconds, used, modules[what] = run(folder, extra)
                wall[what].append(seconds)
                cpu[what].append(used)
    print(f"`pytest --co -q` on an empty project, median of {args.repeats} interleaved runs\n")
    print("| run | wall time | CPU time |")
    print("|---|---|---|")
    for what, _ in runs:
        print(
            f"| {what} | {statistics.median(wall[what]) * 1000:.0f} ms | {statistics.median(cpu[what]) * 1000:.0f} ms |"
        )
    names = [what for what, _ in runs]
    print(
        f"| the plugin's cost | {(statistics.median(wall[names[0]]) - statistics.median(wall[names[1]])) * 1000:.0f} ms | "
        f"{(statistics.median(cpu[names[0]]) - statistics.median(cpu[names[1]])) * 1000:.0f} ms |"
    )
    extra_modules = sorted(modules["with pytest-atlas"] - modules["without (-p no:atlas)"])
    heavy = [m for m in extra_modules if "." not in m and not m.startswith("pytest_atlas")]
    print(f"\n{len(extra_modules)} modules more with the plugin; top-level packages: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
