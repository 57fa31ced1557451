"""Side-by-side benchmark: pytest-atlas's server and database fixtures vs pytest-postgresql 10.

Runs generated test suites (N trivial tests, each touching the Atlas ``sessions`` table) with:

* ``pytest-postgresql``: ``postgresql_proc(load=[schema.sql])`` + the ``postgresql`` fixture;
* ``atlas_db`` with a cold start (``--atlas-no-cache``: initdb + schema load) and a warm start (cache hit),
  with each isolation (``--atlas-isolation=clone``: a fresh clone per test; ``reset``: the used
  database is proved untouched beyond its rows and sequences, emptied and reused);
* ``atlas_tx`` (rolled-back transaction on one connection per run);
* "container": pytest-postgresql and ``atlas_db`` with no folder options at all, in a mount
  namespace whose /dev/shm is a 64 MB tmpfs (Docker's default), as in a CI container: the plugin
  then keeps its data in the temp folder, on the disk (run as root only: it needs ``unshare``).

Storage: "disk" is the work folder (``--workdir``, on the machine's disk), "tmpfs" is /dev/shm.

Each configuration runs ``--repeats`` times, interleaved, in one process tree, on the same machine
and the same storage, and the script prints medians and ratios. pytest-postgresql refuses to run as
root, so when this script runs as root every suite runs as the unprivileged ``postgres`` account
(pytest-atlas's own root path is measured in an extra row).

Measured per run (from pytest's own phase durations, via a tiny timing plugin):

* session start = setup time of the first test - median setup time of the other tests
  (server start, schema load, and the first database beyond a normal per-test clone);
* per-test cost = median of setup + teardown time of tests 2..N (the fixture's own cost);
* wall = the whole pytest process.

Usage::

    python benchmarks/bench_server.py [--tests 50] [--repeats 5] [--workdir /tmp/pytest-atlas-bench]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import pwd
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schema.sql"

TIMING_PLUGIN = """
import json, os, pytest

_PHASES = []

def pytest_runtest_logreport(report):
    _PHASES.append([report.nodeid, report.when, report.duration])

def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(_PHASES, f)
"""

PP_CONFTEST = """
from pathlib import Path

from pytest_postgresql import factories

postgresql_proc = factories.postgresql_proc(executable={pg_ctl!r}, load=[Path({schema!r})])
postgresql = factories.postgresql("postgresql_proc")
"""

TEST_BODY = """
import pytest

@pytest.mark.parametrize("n", range({n}))
def test_touch(n, {fixture}):
    {fixture}.execute("INSERT INTO sessions (task) VALUES ('bench')")
    assert {fixture}.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
"""


#: the report header lines of the last run of each configuration (where the data went, which isolation)
HEADERS: dict[tuple[Any, ...], list[str]] = {}


def run_as_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("postgres")


def prepare(workdir: Path, account: pwd.struct_passwd | None, n: int, pg_ctl: str) -> Path:
    """A virtualenv the server account can read (system python), and the generated projects."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    venv = workdir / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".ready"
    if not marker.exists():
        base = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "pytest", "psycopg[binary]", "pytest-postgresql==10.0.0"],
            check=True,
        )
        marker.write_text("ok")
    # our package, as in a user's environment (no dependencies beyond the ones above are imported)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
        check=True,
        capture_output=True,
    )
    projects = workdir / "projects"
    shutil.rmtree(projects, ignore_errors=True)
    for name, fixture, conftest in (
        ("pytest_postgresql", "postgresql", PP_CONFTEST.format(pg_ctl=pg_ctl, schema=str(SCHEMA))),
        ("atlas_db", "atlas_db", ""),
        ("atlas_tx", "atlas_tx", ""),
    ):
        project = projects / name
        project.mkdir(parents=True)
        (project / "conftest.py").write_text(conftest + "\npytest_plugins = ['benchtiming']\n")
        (project / "benchtiming.py").write_text(TIMING_PLUGIN)
        (project / "test_bench.py").write_text(TEST_BODY.format(n=n, fixture=fixture))
    (workdir / "schema.sql").write_text(SCHEMA.read_text())
    if account is not None:
        for root, dirs, files in os.walk(workdir):
            for entry in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                os.lchown(entry, account.pw_uid, account.pw_gid)
    return python


#: run the rest of the command line with a 64 MB /dev/shm (a container's), as the account named by $1
CONTAINER = (
    "mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm && "
    'exec setpriv --reuid="$1" --regid="$1" --clear-groups "${@:2}"'
)


def run_suite(
    python: Path,
    project: Path,
    args: list[str],
    account: pwd.struct_passwd | None,
    workdir: Path,
    *,
    container: bool = False,
) -> dict[str, float] | None:
    out = workdir / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "ATLAS"))}
    env.update(
        BENCH_OUT=str(out), HOME=str(workdir), XDG_CACHE_HOME=str(workdir / "cache"), PYTHONDONTWRITEBYTECODE="1"
    )
    preexec: Callable[[], None] | None = None
    if account is not None:
        uid, gid = account.pw_uid, account.pw_gid

        def preexec() -> None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        env["USER"] = env["LOGNAME"] = account.pw_name
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", *args]
    if container:
        assert account is not None
        command = ["unshare", "--mount", "--propagation", "private", "bash", "-c", CONTAINER, "-", account.pw_name]
        command += [str(python), "-m", "pytest", "-p", "no:cacheprovider", *args]
        preexec = None  # the command itself drops to the account
    started = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=project,
        env=env,
        preexec_fn=preexec,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        # one failed suite (a concurrent run on the shared machine, say) must not lose the others
        print(f"suite failed in {project} {args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", file=sys.stderr)
        return None
    HEADERS[(str(project), container, tuple(args))] = [
        line for line in result.stdout.splitlines() if line.startswith(("atlas: access:", "atlas: isolation:"))
    ]
    phases = json.loads(out.read_text())
    out.unlink()
    setups = [d for _id, when, d in phases if when == "setup"]
    teardowns = [d for _id, when, d in phases if when == "teardown"]
    # the last teardown also stops the server: leave it out
    per_test = [s + t for s, t in zip(setups[1:-1], teardowns[1:-1], strict=True)]
    typical_setup = statistics.median(setups[1:])
    return {"start": setups[0] - typical_setup, "per_test": statistics.median(per_test), "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pytest-atlas-bench"))
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from pytest_atlas.db._binaries import find_install

    install = find_install(None)
    pg_ctl = str(install.bindir / "pg_ctl")
    account = run_as_account()
    python = prepare(args.workdir, account, args.tests, pg_ctl)
    projects = args.workdir / "projects"
    shm = Path("/dev/shm")
    disk = args.workdir / "data"
    disk.mkdir(exist_ok=True)
    if account is not None:
        os.chown(disk, account.pw_uid, account.pw_gid)
    atlas_cache = ["--atlas-cache-dir", str(args.workdir / "cache")]

    clone, reset = ["--atlas-isolation", "clone"], ["--atlas-isolation", "reset"]
    on_disk = ["--atlas-data-dir", str(disk)]
    # name: (project, pytest arguments, account, in a container)
    configs: dict[str, tuple[str, list[str], pwd.struct_passwd | None, bool]] = {
        "pytest-postgresql, data on disk": ("pytest_postgresql", ["--basetemp", str(disk / "pp")], account, False),
        "pytest-postgresql, data on tmpfs": (
            "pytest_postgresql",
            ["--basetemp", str(shm / "pp-bench")],
            account,
            False,
        ),
        "atlas_db cold (--atlas-no-cache), disk": ("atlas_db", ["--atlas-no-cache", *on_disk], account, False),
        "atlas_db warm, disk, clone": ("atlas_db", [*atlas_cache, *on_disk, *clone], account, False),
        "atlas_db warm, disk, reset": ("atlas_db", [*atlas_cache, *on_disk, *reset], account, False),
        "atlas_db cold (--atlas-no-cache), tmpfs": ("atlas_db", ["--atlas-no-cache"], account, False),
        "atlas_db warm, tmpfs, clone": ("atlas_db", [*atlas_cache, *clone], account, False),
        "atlas_db warm, tmpfs, reset": ("atlas_db", [*atlas_cache, *reset], account, False),
        "atlas_tx warm, tmpfs": ("atlas_tx", atlas_cache, account, False),
    }
    if account is not None:
        # the container rows: no folder options at all (the plugin's own choice, its default isolation)
        configs["pytest-postgresql, container (/dev/shm 64 MB)"] = ("pytest_postgresql", [], account, True)
        configs["atlas_db warm, container (/dev/shm 64 MB), default isolation"] = (
            "atlas_db",
            atlas_cache,
            account,
            True,
        )
        configs["atlas_db warm, container (/dev/shm 64 MB), clone"] = (
            "atlas_db",
            [*atlas_cache, *clone],
            account,
            True,
        )
    # the cache belongs to the account that runs pytest: a root run refuses one in the postgres
    # account's folder, so it has its own, next to the work folder
    root_cache = ["--atlas-cache-dir", str(args.workdir.parent / f"{args.workdir.name}-root-cache")]
    if account is not None:
        configs["atlas_db warm, tmpfs, pytest as root"] = ("atlas_db", root_cache, None, False)

    # warm the cluster caches and the file cache once, unmeasured
    run_suite(python, projects / "atlas_db", atlas_cache, account, args.workdir)
    if account is not None:
        run_suite(python, projects / "atlas_db", root_cache, None, args.workdir)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    try:
        for _ in range(args.repeats):
            for name, (project, extra, who, container) in configs.items():
                measured = run_suite(python, projects / project, extra, who, args.workdir, container=container)
                if measured is not None:
                    results[name].append(measured)
    finally:
        shutil.rmtree(shm / "pp-bench", ignore_errors=True)  # pytest's basetemp for the tmpfs runs

    failed = [name for name, runs in results.items() if len(runs) < args.repeats]
    results = {name: runs for name, runs in results.items() if runs}

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(
        f"# pytest-atlas vs pytest-postgresql 10.0.0 — {datetime.date.today()}, {platform.node()}, "
        f"{os.cpu_count()} cores, PostgreSQL {install.version}, {args.tests} tests x {args.repeats} repeats "
        f"(medians){', suites run as the postgres account' if account else ''}"
    )
    print()
    print("| configuration | session start (s) | per test (ms) | wall (s) |")
    print("|---|---|---|---|")
    for name in results:
        print(f"| {name} | {med(name, 'start'):.3f} | {med(name, 'per_test') * 1000:.1f} | {med(name, 'wall'):.2f} |")
    print()
    print("| ratio (same storage, same run) | disk | tmpfs | container | goal |")
    print("|---|---|---|---|---|")
    pp = {
        "disk": "pytest-postgresql, data on disk",
        "tmpfs": "pytest-postgresql, data on tmpfs",
        "container": "pytest-postgresql, container (/dev/shm 64 MB)",
    }

    def ratio(name: str, storage: str, key: str) -> str:
        if name not in results or pp[storage] not in results:
            return "-"
        return f"{med(name, key) / med(pp[storage], key):.2f}"

    def row(label: str, names: dict[str, str], key: str, goal: str) -> None:
        cells = [ratio(names[s], s, key) if s in names else "-" for s in ("disk", "tmpfs", "container")]
        print(f"| {label} | {' | '.join(cells)} | {goal} |")

    box = "atlas_db warm, container (/dev/shm 64 MB), {}"
    row(
        "warm start / pytest-postgresql start",
        {"disk": "atlas_db warm, disk, reset", "tmpfs": "atlas_db warm, tmpfs, reset"},
        "start",
        "<= 0.3",
    )
    row(
        "cold start / pytest-postgresql start",
        {"disk": "atlas_db cold (--atlas-no-cache), disk", "tmpfs": "atlas_db cold (--atlas-no-cache), tmpfs"},
        "start",
        "-",
    )
    row(
        "atlas_db per test, reset / postgresql per test",
        {
            "disk": "atlas_db warm, disk, reset",
            "tmpfs": "atlas_db warm, tmpfs, reset",
            "container": box.format("default isolation"),
        },
        "per_test",
        "<= 0.2 on disk",
    )
    row(
        "atlas_db per test, clone / postgresql per test",
        {
            "disk": "atlas_db warm, disk, clone",
            "tmpfs": "atlas_db warm, tmpfs, clone",
            "container": box.format("clone"),
        },
        "per_test",
        "-",
    )
    row("atlas_tx per test / postgresql per test", {"tmpfs": "atlas_tx warm, tmpfs"}, "per_test", "<= 0.1")
    print()
    print("| reset / clone, per test (same storage, same run) | ratio | goal |")
    print("|---|---|---|")
    for storage, reset_name, clone_name in (
        ("disk", "atlas_db warm, disk, reset", "atlas_db warm, disk, clone"),
        ("tmpfs", "atlas_db warm, tmpfs, reset", "atlas_db warm, tmpfs, clone"),
        ("container", box.format("default isolation"), box.format("clone")),
    ):
        if reset_name in results and clone_name in results:
            value = med(reset_name, "per_test") / med(clone_name, "per_test")
            print(f"| {storage} | {value:.2f} | <= 1.0 |")
    if failed:
        print(f"\nconfigurations with failed runs (fewer than {args.repeats} measured): {', '.join(failed)}")
    print()
    print("What the plugin chose in the container (its report header):")
    for name in (box.format("default isolation"), box.format("clone")):
        if name in configs:
            project, extra, _who, in_container = configs[name]
            for line in HEADERS.get((str(projects / project), in_container, tuple(extra)), []):
                print(f"    {name}: {line}")


if __name__ == "__main__":
    main()
