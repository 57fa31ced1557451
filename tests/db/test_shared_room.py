"""Two separate runs of one account that share a data folder account for each other's room: a run
records what its servers need (a reservation) while it decides, and a later run subtracts what
live runs reserved but have not used yet from the free space it sees.

The runs are ordered by files the test makes, never by timing: the first run holds its
reservation (it has planned, its server not started yet) until the test lets it go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mounts import needs_root, small_tmpfs

#: tests that each take a database cloned from the template (the pool clones one ahead of each)
_CLONES = (
    "@pytest.mark.parametrize('n', range(4))\n"
    "def test_db(atlas_db, n):\n"
    "    atlas_db.execute('CREATE TABLE t AS SELECT g, md5(g::text) AS s FROM generate_series(1, 5000) g')\n"
)

_WAITS = """
import json
import os
import time
from pathlib import Path

import pytest

SIGNALS = Path(os.environ["ATLAS_ROOM_SIGNALS"])


def wait_for(name):
    # the outer test makes the file; it kills this run if it ends first (no timed assertion here)
    while not (SIGNALS / name).exists():
        time.sleep(0.05)
"""

#: the first run: planned (its header printed, its decision made), then waits before any server starts
FIRST = (
    _WAITS
    + """
def test_0_holds_its_room():
    (SIGNALS / "first-planned").touch()
    wait_for("first-go")


"""
    + _CLONES
)

#: the second run: starts its server, then waits while it holds it
SECOND = (
    _WAITS
    + """
def test_0_server_up(atlas_db):
    atlas_db.execute("SELECT 1")
    (SIGNALS / "second-up").touch()
    wait_for("second-go")


"""
    + _CLONES
)

_PATIENCE = 600.0  # seconds a step may take before the test gives up (a hung run, not a verdict)


def _entry(cache: Path) -> Path:
    entries = [marker.parent for marker in cache.glob("*/atlas-cache.json")]
    assert len(entries) == 1, entries
    return entries[0]


@pytest.fixture
def cached(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder on disk holding the entry of the runs' schema (built where it fits)."""
    cache = tmp_path_factory.mktemp("cache")
    pytester.makepyfile(warm="import pytest\n" + _CLONES)
    with small_tmpfs(128) as roomy:
        options = (f"--atlas-data-dir={roomy}", f"--atlas-cache-dir={cache}", "-p", "no:randomly", "warm.py")
        pytester.runpytest(*options).assert_outcomes(passed=4)
    _entry(cache)
    (pytester.path / "warm.py").unlink()
    return cache


class _Run:
    """An inner pytest run in its own process, its output in files (a full pipe never blocks it)."""

    def __init__(self, pytester: pytest.Pytester, name: str, args: list[str]) -> None:
        self.out = pytester.path / f"{name}.out"
        self.err = pytester.path / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = pytester.popen(
                [sys.executable, "-m", "pytest", *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, signal: Path) -> bool:
        """Whether ``signal`` appeared (False: the run ended first)."""
        deadline = time.monotonic() + _PATIENCE
        while not signal.exists():
            if self.proc.poll() is not None:
                return signal.exists()
            if time.monotonic() > deadline:
                pytest.fail(f"{signal.name} never appeared:\n{self.text()}")
            time.sleep(0.05)
        return True

    def finish(self) -> int:
        self.code: int = self.proc.wait(timeout=_PATIENCE)
        return self.code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)


@pytest.fixture
def signals(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = pytester.path / "signals"
    folder.mkdir()
    monkeypatch.setenv("ATLAS_ROOM_SIGNALS", str(folder))
    return folder


@pytest.fixture
def runs() -> Iterator[list[_Run]]:
    started: list[_Run] = []
    try:
        yield started
    finally:
        for run in started:
            run.kill()


def _options(data: Path, cached: Path) -> list[str]:
    """An inner run's options: its data folder and the shared cache, in a fixed order, no cache files."""
    return [f"--atlas-data-dir={data}", f"--atlas-cache-dir={cached}", "-p", "no:randomly", "-p", "no:cacheprovider"]


def _overlap(
    pytester: pytest.Pytester, options: list[str], signals: Path, runs: list[_Run], *, second_must_start: bool
) -> tuple[_Run, _Run]:
    """Run first.py and second.py so that they overlap: the first plans and waits, the second starts
    (and, if ``second_must_start``, must get as far as its server), then each goes on in turn to its end."""
    first = _Run(pytester, "first", [*options, "first.py"])
    runs.append(first)
    assert first.wait_for(signals / "first-planned"), first.text()
    second = _Run(pytester, "second", [*options, "second.py"])
    runs.append(second)
    started = second.wait_for(signals / "second-up")
    assert started or not second_must_start, second.text()
    (signals / "first-go").touch()
    first.finish()
    (signals / "second-go").touch()
    second.finish()
    return first, second


@needs_root
def test_a_second_run_on_a_data_folder_with_room_for_one_is_refused_while_the_first_holds_it(
    pytester: pytest.Pytester, cached: Path, signals: Path, runs: list[_Run]
) -> None:
    """96 MB holds one run's server (~61 MB) but not two. The first run plans (its header says it
    uses the folder), then waits before its server starts; the second run, started meanwhile, is
    refused before any test: a usage error that names the first run (its pid) as holding the room.
    The first run then passes. The old code let the second run see the free space the first had
    not used yet: it started its server there, and the first run's tests failed for want of space
    ('no space left on ...') once it went on."""
    pytester.makepyfile(first=FIRST, second=SECOND)
    with small_tmpfs(96) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        options = _options(data, cached)
        # (the old code: the second run's server is up, holding the room, before the first goes on)
        first, second = _overlap(pytester, options, signals, runs, second_must_start=False)
        first_code, second_code = first.code, second.code
        first_text, second_text = first.text(), second.text()
        assert first_code == 0, first_text
        assert "5 passed" in first_text, first_text
        assert second_code == pytest.ExitCode.USAGE_ERROR, second_text
        assert f"--atlas-data-dir: {base} has " in second_text, second_text
        assert f"held by another live run of yours (pytest, pid {first.pid}" in second_text, second_text
        assert "No space left on device" not in first_text + second_text
        assert "INTERNALERROR" not in first_text + second_text
        # both ended: nothing of theirs is left (no server folder, no reservation)
        assert sorted(path.name for path in base.glob("run-*")) == []
        assert sorted(path.name for path in base.glob("rooms/*.json")) == []


#: an inner project's conftest that makes a small tmpfs its /dev/shm (the real one is the machine's)
_SMALL_SHM = """
import json
import os
from pathlib import Path

from pytest_atlas.db import _runtime

_runtime._SHM = Path(os.environ["ATLAS_ROOM_SHM"])
_runtime._shm_has_room = lambda: True  # (the 1 GiB a real /dev/shm must have: this one is small)
"""


@needs_root
def test_a_second_run_goes_to_the_disk_when_the_first_holds_the_room_of_dev_shm(
    pytester: pytest.Pytester, cached: Path, signals: Path, runs: list[_Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default data folder: /dev/shm (here a 96 MB tmpfs in its place) holds one run's server.
    The first run chose it and waits before its server starts; the second run sees that room held
    and keeps its data in the temp folder instead, its header naming the run that holds it; both
    pass. The old code put both on /dev/shm, and the first run's tests found no space there."""
    pytester.makepyfile(first=FIRST, second=SECOND)
    pytester.makeconftest(_SMALL_SHM)
    with small_tmpfs(96) as shm:
        monkeypatch.setenv("ATLAS_ROOM_SHM", str(shm))
        name = f"pytest-atlas-v2-{os.geteuid()}"
        options = [f"--atlas-cache-dir={cached}", "-p", "no:randomly", "-p", "no:cacheprovider"]
        first, second = _overlap(pytester, options, signals, runs, second_must_start=True)
        first_code, second_code = first.code, second.code
        first_text, second_text = first.text(), second.text()
        assert first_code == 0, first_text
        assert "5 passed" in first_text, first_text
        assert f"data in {shm / name}" in first_text, first_text
        assert second_code == 0, second_text
        assert "5 passed" in second_text, second_text
        assert f"data in {shm / name}" not in second_text, second_text
        assert (
            f"atlas: data folder: not using {shm}: ~61 MB of its free space is held by another live run of "
            f"yours (pytest, pid {first.pid} on "
        ) in second_text, second_text
        assert "No space left on device" not in first_text + second_text
        assert sorted(path.name for path in (shm / name).glob("rooms/*.json")) == []


@needs_root
def test_a_killed_runs_reservation_is_not_counted_and_is_removed(
    pytester: pytest.Pytester, cached: Path, signals: Path, runs: list[_Run]
) -> None:
    """A run killed (SIGKILL: no clean-up) while it holds its reservation: the next run finds the
    reservation's lock free, does not count it, and removes it."""
    pytester.makepyfile(first=FIRST, second=SECOND)
    with small_tmpfs(96) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        options = _options(data, cached)
        first = _Run(pytester, "first", [*options, "first.py"])
        runs.append(first)
        assert first.wait_for(signals / "first-planned"), first.text()
        assert len(list(base.glob("rooms/*.json"))) == 1  # its reservation
        first.kill()
        assert len(list(base.glob("rooms/*.json"))) == 1  # left behind: nothing cleaned it up
        (signals / "second-go").touch()
        second = _Run(pytester, "second", [*options, "second.py"])
        runs.append(second)
        assert second.finish() == 0, second.text()
        assert "5 passed" in second.text()
        assert "held by" not in second.text()
        assert sorted(path.name for path in base.glob("rooms/*")) == ["lock"]


@needs_root
def test_what_a_live_run_has_used_already_is_not_counted_twice(
    pytester: pytest.Pytester, cached: Path, signals: Path, runs: list[_Run]
) -> None:
    """136 MB: the first run's server is up and it waits; its reservation (~99 MB: its server and
    the cache's copy in memory) is mostly used already (the copy, the cluster, its test databases).
    The second run counts only the part not used yet (the free space shows the rest), so its server
    fits beside it and both pass. Counting the whole reservation against the free space as well
    refuses the second run ('has 45 MB free, but ~99 MB of it is held by another live run')."""
    pytester.makepyfile(first=FIRST, second=SECOND)
    with small_tmpfs(136) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        options = _options(data, cached)
        up = _Run(pytester, "second", [*options, "second.py"])  # its server up, holding it
        runs.append(up)
        assert up.wait_for(signals / "second-up"), up.text()
        (signals / "first-go").touch()
        later = _Run(pytester, "first", [*options, "first.py"])
        runs.append(later)
        later_code = later.finish()
        (signals / "second-go").touch()
        up_code = up.finish()
        assert later_code == 0, later.text()
        assert "5 passed" in later.text()
        assert f"of its free space is held by another live run of yours (pytest, pid {up.pid} on " in later.text()
        assert up_code == 0, up.text()
        assert sorted(path.name for path in base.glob("rooms/*.json")) == []


#: every worker (``--dist each``) starts its server, then waits
EACH_WORKER = (
    _WAITS
    + """
def test_server_up(atlas_db, worker_id):
    atlas_db.execute("SELECT 1")
    (SIGNALS / f"up-{worker_id}").touch()
    wait_for("go")
"""
)


@needs_root
def test_the_workers_of_an_xdist_run_count_their_servers_in_its_one_reservation(
    pytester: pytest.Pytester, cached: Path, signals: Path, runs: list[_Run]
) -> None:
    """Under pytest-xdist the controller decides and reserves for the servers of all its workers:
    while both workers' servers are up there is one reservation (the controller's, for two servers),
    and each server folder names it, so another run counts what they use against it."""
    pytester.makepyfile(each=EACH_WORKER)
    with small_tmpfs(256) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        options = _options(data, cached)
        run = _Run(pytester, "each", [*options, "-n", "2", "--dist", "each", "each.py"])
        runs.append(run)
        assert run.wait_for(signals / "up-gw0"), run.text()
        assert run.wait_for(signals / "up-gw1"), run.text()
        reservations = list(base.glob("rooms/*.json"))
        records = [json.loads(path.read_text()) for path in reservations]
        tags = sorted((folder / "room").read_text() for folder in base.glob("run-*"))
        (signals / "go").touch()
        assert run.finish() == 0, run.text()
        assert len(reservations) == 1, reservations
        [record] = records
        assert record["pid"] == run.pid
        assert record["reserved"] >= 2 * (38 << 20)  # two servers, each a cluster and more
        assert tags == [reservations[0].stem] * 2
        assert list(base.glob("rooms/*.json")) == []
