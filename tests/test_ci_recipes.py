"""The CI recipes of docs/ci.md, run as far as this machine allows.

Each ```` ```yaml ```` block of docs/ci.md is a CI job. It runs here in a private network and mount
namespace (``unshare``), with what the CI system would give it:

* its ``run:`` steps (GitHub: ``bash -eo pipefail``, one step after the other) or its ``script:``
  lines (GitLab: one shell, stopping at the first failing line), with the job's environment
  variables, from a fresh home folder, in a user project holding tests that use pytest-atlas;
* a PostgreSQL service when the recipe has one: started with PostgreSQL's own tools, listening on
  5432 of the namespace's own loopback, under the host name the CI system gives it (GitHub:
  ``localhost`` through the port mapping; GitLab: the image's name, through ``/etc/hosts``), with
  the password and user of the service's ``POSTGRES_*`` variables;
* a tmpfs of the container's ``--shm-size`` mounted on /dev/shm: the plugin decides where to keep
  its data by looking at /dev/shm itself, so this is what it would see in that container.

``uses:`` steps are the CI system's (checkout, setup-python, cache) and are only checked to be
known ones (a restored ``actions/cache`` is stood in for by this suite's own cluster cache); ``pip install`` lines are checked (the packages must be installed) instead of run.
What is checked is what a CI step sees: the exit status of each step, and the output.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_atlas.db._cache import default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "ci.md"
_YAML = re.compile(r"^```yaml\n(?P<body>.*?)^```$", re.S | re.M)
_KNOWN_ACTIONS = ("actions/checkout@", "actions/setup-python@", "actions/cache@")

PASSING = """
    def test_insert_and_read(atlas_db, atlas_factory):
        atlas_factory.sessions(3)
        assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (3,)

    def test_a_fresh_database(atlas_db):
        assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
"""
FAILING = (
    PASSING
    + """
    def test_a_regression(atlas_db):
        assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
"""
)


@dataclass
class Job:
    name: str
    kind: str  # "github" or "gitlab"
    steps: list[str]
    env: dict[str, str]
    service: dict[str, str] | None = None  # POSTGRES_* of the service, and "host"
    shm_size: str | None = None
    skipped: list[str] = field(default_factory=list)


def recipes() -> list[Job]:
    jobs = []
    for match in _YAML.finditer(PAGE.read_text(encoding="utf-8")):
        body = match.group("body")
        name = body.splitlines()[0].lstrip("# ").strip()
        data: dict[Any, Any] = yaml.safe_load(body)
        jobs.append(_gitlab(name, data) if name == ".gitlab-ci.yml" else _github(name, data))
    return jobs


def _github(name: str, data: dict[Any, Any]) -> Job:
    [job] = data["jobs"].values()
    env = {**data.get("env", {}), **job.get("env", {})}
    steps, skipped = [], []
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].startswith(_KNOWN_ACTIONS), f"{name}: an action this suite cannot stand in for"
            skipped.append(step["uses"])
        else:
            steps.append(step["run"])
    service = None
    if "services" in job:
        [spec] = job["services"].values()
        assert spec["image"].startswith("postgres:") and "5432:5432" in spec["ports"]
        service = {**spec.get("env", {}), "host": "localhost"}
    shm = None
    options = job.get("container", {}).get("options", "") if isinstance(job.get("container"), dict) else ""
    found = re.search(r"--shm-size[= ](\S+)", options)
    if found:
        shm = found.group(1)
    return Job(name, "github", steps, {k: str(v) for k, v in env.items()}, service, shm, skipped)


def _gitlab(name: str, data: dict[Any, Any]) -> Job:
    [(_, job)] = [(k, v) for k, v in data.items() if isinstance(v, dict) and "script" in v]
    env = {k: str(v) for k, v in job.get("variables", {}).items()}
    service = None
    for spec in job.get("services", []):
        image = spec if isinstance(spec, str) else spec["name"]
        assert image.startswith("postgres:")
        # GitLab: the job's variables reach the service; its host name is the image's name
        service = {**env, "host": image.split(":")[0]}
    return Job(name, "gitlab", [*job.get("before_script", []), *job["script"]], env, service)


def _installed(line: str) -> str:
    """A check, instead of a download, for a ``pip install`` line: every package must be installed."""
    names = [
        re.split(r"[\[<>=!~ ]", word.strip("\"'"))[0] for word in shlex.split(line)[2:] if not word.startswith("-")
    ]
    check = f"import importlib.metadata as m; [m.version(name) for name in {names!r}]"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(check)}"


def _step_script(job: Job) -> list[str]:
    """One shell command per step, as the CI system runs it."""

    def adapt(text: str) -> str:
        return "\n".join(
            _installed(line) if line.strip().startswith("pip install") else line for line in text.splitlines()
        )

    if job.kind == "github":
        return [f"bash --noprofile --norc -eo pipefail -c {shlex.quote(adapt(step))}" for step in job.steps]
    # GitLab runs every line of the script in one shell and stops at the first one that fails
    return ["bash --noprofile --norc -e -c " + shlex.quote("\n".join(adapt(line) for line in job.steps))]


def run_job(job: Job, project: Path, work: Path) -> tuple[list[int], str]:
    """Run ``job`` in ``project``; returns the exit status of each step and the output."""
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    home = work / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "CI": "true",
        "LC_ALL": "C.UTF-8",
        **job.env,
    }
    if any(action.startswith("actions/cache@") for action in job.skipped):
        # the cache step restores ~/.cache/pytest-atlas: this suite's own cache stands in for it
        env["XDG_CACHE_HOME"] = str(default_cache_dir().parent)
    lines = ["set -u", "ip link set lo up"]
    if job.shm_size:
        lines.append(f"mount -t tmpfs -o size={shlex.quote(job.shm_size)} tmpfs /dev/shm")
    if job.service:
        hosts = work / "hosts"
        hosts.write_text(f"127.0.0.1 localhost {job.service['host']}\n")
        lines.append(f"mount --bind {hosts} /etc/hosts")
        lines += _service_lines(job.service, Path(bindir), work)
    statuses = work / "statuses"
    lines.append("failed=")
    for command in _step_script(job):
        # a failed step ends the job: the later steps do not run
        lines.append('if [ -z "$failed" ]; then')
        lines.append(f"  (cd {shlex.quote(str(project))} && env -i {_assignments(env)} {command}); code=$?")
        lines.append(f"  echo $code >> {statuses}; [ $code = 0 ] || failed=1")
        lines.append("fi")
    if job.service:
        lines.append(f"runuser -u postgres -- {bindir}/pg_ctl -D {work / 'service'} -m immediate stop >/dev/null")
    script = work / "job.sh"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        ["unshare", "--net", "--mount", "--fork", "bash", str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    codes = [int(code) for code in statuses.read_text().split()] if statuses.exists() else []
    return codes, output


def _assignments(env: dict[str, str]) -> str:
    return " ".join(shlex.quote(f"{key}={value}") for key, value in env.items())


def _service_lines(service: dict[str, str], bindir: Path, work: Path) -> list[str]:
    """Start a server like the ``postgres`` image does with these POSTGRES_* variables."""
    user = service.get("POSTGRES_USER", "postgres")
    password = service["POSTGRES_PASSWORD"]
    (work / "pw").write_text(password + "\n")
    os.chmod(work, 0o711)
    data, sock = work / "service", work / "sock"
    as_pg = "runuser -u postgres --"
    return [
        f"install -d -o postgres -m 700 {data} {sock}",
        f"chown postgres {work / 'pw'}",
        f"{as_pg} {bindir}/initdb -D {data} -U {shlex.quote(user)} --auth=scram-sha-256 --pwfile={work / 'pw'} "
        "--no-sync >/dev/null",
        f"{as_pg} {bindir}/pg_ctl -D {data} -w -l {sock / 'service.log'} -o "
        + shlex.quote(
            f"-c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories={sock} "
            # durability off, as for the plugin's own servers: a shared, busy disk makes every CREATE
            # DATABASE's checkpoint take seconds; what the recipe's steps see is the same
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        + " start >/dev/null",
    ]


@pytest.fixture
def workdir() -> Any:
    # reachable by the postgres account (pytest's tmp_path is not, when running as root)
    path = Path(tempfile.mkdtemp(prefix="atlas-ci-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _project(work: Path, tests: str) -> Path:
    project = work / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_app.py").write_text(textwrap.dedent(tests))
    (project / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:randomly\nasyncio_default_fixture_loop_scope = function\n"
    )
    return project


JOBS = {job.name: job for job in recipes()}


def test_every_recipe_of_the_page_is_run_here() -> None:
    assert set(JOBS) == {
        ".github/workflows/tests.yml",
        ".github/workflows/tests-service.yml",
        ".gitlab-ci.yml",
        ".github/workflows/tests-container.yml",
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and the service account need root (CI runs as root)")
@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_passing_suite_passes_every_step(name: str, workdir: Path) -> None:
    job = JOBS[name]
    codes, output = run_job(job, _project(workdir, PASSING), workdir)
    assert codes == [0] * len(job.steps if job.kind == "github" else [1]), output
    assert "2 passed" in output, output
    [where] = re.findall(r"^atlas: (?:access: .*; data in (\S+)|existing server \S+ \(from (\S+)\))", output, re.M)
    if job.service:
        assert where[1] == "$ATLAS_TEST_DSN", output  # the service's databases, no server of its own
        assert "postgres:postgres@" not in output
    elif job.shm_size:
        assert where[0].startswith(tempfile.gettempdir()), output  # 64 MB /dev/shm: not used
    else:
        assert where[0].startswith("/dev/shm/"), output


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and the service account need root (CI runs as root)")
@pytest.mark.parametrize("name", [".github/workflows/tests-service.yml", ".gitlab-ci.yml"])
def test_a_failing_test_fails_the_step(name: str, workdir: Path) -> None:
    job = JOBS[name]
    codes, output = run_job(job, _project(workdir, FAILING), workdir)
    assert codes[-1] == 1 and all(code == 0 for code in codes[:-1]), output
    assert "1 failed, 2 passed" in output, output
