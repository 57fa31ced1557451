"""A data folder that cannot hold a server (not writable, not a real file system, someone else's) is
a usage error before anything runs; a data folder that fills up while a server starts says so
(how much is free, how much is needed) and never costs a good cluster cache entry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mounts import fill, needs_root, small_tmpfs

USES_DB = "def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n"


# -- a data folder that cannot be used: a usage error naming the option, the path, why, what to do --


def test_a_data_folder_on_a_pseudo_file_system_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-data-dir=/proc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--atlas-data-dir: /proc is on a 'proc' file system, which is not a real one (nothing can be stored there)*",
            "*how to fix: give a folder on a disk or a tmpfs with --atlas-data-dir*",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*passed*")


@needs_root
def test_a_data_folder_of_another_account_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(USES_DB)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    result = pytester.runpytest(f"--atlas-data-dir={theirs}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--atlas-data-dir: {theirs} belongs to *uid 65534*, who could replace pytest-atlas-v2-0 in it*"]
    )
    assert list(theirs.iterdir()) == []  # nothing made in it


@needs_root
@pytest.mark.parametrize("below", ["new/data", ""])
def test_a_new_data_folder_the_server_account_cannot_reach_is_refused_before_it_is_made(
    pytester: pytest.Pytester, tmp_path: Path, below: str
) -> None:
    """As root the server runs as another account: a missing data folder below one that account
    cannot search (root's 0700 home, say) is refused before anything is made, naming that folder."""
    pytester.makepyfile(USES_DB)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    wanted = closed / below if below else closed  # missing folders below it, or the folder itself
    result = pytester.runpytest(f"--atlas-data-dir={wanted}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--atlas-data-dir: {closed}: the server account * cannot reach it*", "*how to fix: give a folder*"]
    )
    assert list(closed.iterdir()) == []  # nothing made, nothing left behind
    result.stdout.no_fnmatch_line("*passed*")


@needs_root
def test_a_read_only_data_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_DB)
    with small_tmpfs(4, read_only=True) as frozen:
        result = pytester.runpytest(f"--atlas-data-dir={frozen}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--atlas-data-dir: {frozen} is not writable: it is on a read-only file system",
            "*how to fix: give a folder on a writable file system with --atlas-data-dir",
        ]
    )


@needs_root
def test_a_data_folder_the_user_may_not_write_names_the_user(tmp_path: Path) -> None:
    """As an account without the right to write /var (as `runuser -u rvuser` would be): the checks of
    ``--atlas-data-dir`` raise the error the plugin turns into a usage error (naming the option), not
    PermissionError.
    Run in a child that drops root after importing what it needs (this interpreter lives in root's
    home, which other accounts cannot open)."""
    code = (
        "import os, pwd, sys\n"
        "from pathlib import Path\n"
        "from pytest_atlas.db import server_account\n"
        "from pytest_atlas.db._runtime import choose_base\n"
        "from pytest_atlas.errors import AtlasError\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    choose_base(Path('/var'), server_account(None))\n"
        "except AtlasError as exc:\n"
        "    print('REFUSED', str(exc))\n"
        "else:\n"
        "    print('ACCEPTED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60, check=False
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert out.startswith("REFUSED /var is not writable by 'nobody' (uid 65534)"), out
    assert "how to fix: give a folder of yours with --atlas-data-dir" in out, out
    assert not Path("/var/pytest-atlas-v2-65534").exists()


# -- a data folder that fills up while the server starts ---------------------------------------------


@pytest.fixture
def small_data() -> Iterator[Path]:
    with small_tmpfs(128) as folder:  # a copy in memory (~38 MB) beside a server (~61 MB)
        yield folder


def _entry(cache: Path) -> Path:
    entries = [marker.parent for marker in cache.glob("*/atlas-cache.json")]
    assert len(entries) == 1, entries
    return entries[0]


@needs_root
def test_a_full_data_folder_says_so_and_keeps_the_cache_entry(
    pytester: pytest.Pytester, small_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytester.makepyfile(USES_DB)
    cache = tmp_path_factory.mktemp("cache")  # on disk: the data folder's tmpfs holds the in-memory tier
    options = (f"--atlas-data-dir={small_data}", f"--atlas-cache-dir={cache}", "-p", "no:randomly")
    pytester.runpytest(*options).assert_outcomes(passed=1)  # builds and stores the entry
    entry = _entry(cache)
    manifest = (entry / "atlas-cache.json").read_text()
    made = json.loads(manifest)["created"]
    filler = fill(small_data, leave=12 << 20)  # less than one cluster is free
    full = pytester.runpytest(*options)
    full.assert_outcomes(errors=1)
    full.stdout.fnmatch_lines(
        [
            f"*no space left on {small_data}* (* MB free, needs ~* MB*",
            "*how to fix: free space there, or give --atlas-data-dir a folder with ~* MB free*",
        ]
    )
    assert "INTERNALERROR" not in full.stdout.str()
    # the good entry is still there, untouched
    assert _entry(cache) == entry and json.loads((entry / "atlas-cache.json").read_text())["created"] == made
    filler.unlink()
    again = pytester.runpytest(*options)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["atlas: cluster cache: hit *"])
    assert json.loads((_entry(cache) / "atlas-cache.json").read_text())["created"] == made  # not rebuilt


@needs_root
def test_initdb_on_a_full_data_folder_says_the_disk_is_full(pytester: pytest.Pytester, small_data: Path) -> None:
    pytester.makepyfile(USES_DB)
    fill(small_data, leave=6 << 20)
    result = pytester.runpytest(f"--atlas-data-dir={small_data}", "--atlas-no-cache")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*no space left on {small_data}* (* MB free, needs ~* MB*",
            "*how to fix: free space there, or give --atlas-data-dir a folder with ~* MB free*",
        ]
    )
    result.stdout.no_fnmatch_line("*check that the data folder is writable*")


# -- the report header says which copy a hit is served from ------------------------------------------


@needs_root
def test_the_header_says_a_hit_is_served_from_memory(
    pytester: pytest.Pytester, small_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytester.makepyfile(USES_DB)
    cache = tmp_path_factory.mktemp("cache")
    options = (f"--atlas-data-dir={small_data}", f"--atlas-cache-dir={cache}", "-p", "no:randomly")
    pytester.runpytest(*options).assert_outcomes(passed=1)  # stored on disk and copied into memory
    key = _entry(cache).name
    hot = [marker.parent for marker in small_data.glob(f"*/cache/*/{key}/atlas-cache.json")]
    assert len(hot) == 1, hot
    second = pytester.runpytest(*options)
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines([f"atlas: cluster cache: hit (in memory: {hot[0]}, a copy of {cache / key});*"])
    # the copy in memory gone: the hit is the persistent entry (copied into memory again on the way)
    shutil.rmtree(hot[0])
    third = pytester.runpytest(*options)
    third.assert_outcomes(passed=1)
    third.stdout.fnmatch_lines([f"atlas: cluster cache: hit ({cache / key}, copied into memory first);*"])


# -- a data folder with room for a server but not for the in-memory copy beside it -------------------

#: tests that each take a database cloned from the template (the pool clones one ahead of each)
USES_CLONES = (
    "import pytest\n"
    "@pytest.mark.parametrize('n', range(4))\n"
    "def test_db(atlas_db, n):\n"
    "    atlas_db.execute('CREATE TABLE t AS SELECT g, md5(g::text) AS s FROM generate_series(1, 5000) g')\n"
)


def _leftovers(data: Path) -> list[Path]:
    """What runs left in the data folder: server folders, copies in memory, temporary folders."""
    return sorted(
        [
            *data.glob("*/run-*"),
            *data.glob("*/.new-*"),
            *data.glob("*/cache/*/*/atlas-cache.json"),
            *data.glob("*/cache/*/.*"),
        ]
    )


@needs_root
def test_a_data_folder_too_small_for_a_copy_in_memory_runs_from_the_disk_cache(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """80 MB holds a server started from the cache (~38 MB of cluster, its WAL and test databases)
    but not that and a copy of the cluster in memory beside it: the run goes without the copy in
    memory (the header says why) instead of filling the folder (the old code copied the cluster into
    memory, then failed: 'No space left on device', or 'needs ~46 MB' on every later run)."""
    pytester.makepyfile(USES_CLONES)
    cache = tmp_path_factory.mktemp("cache")  # on disk: the data folder's tmpfs holds the in-memory tier
    with small_tmpfs(80) as data:
        options = (f"--atlas-data-dir={data}", f"--atlas-cache-dir={cache}", "-p", "no:randomly")
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        for run in ("miss: built and stored", "hit"):
            result = pytester.runpytest(*options)
            result.assert_outcomes(passed=4)
            result.stdout.fnmatch_lines(
                [
                    f"atlas: hot cache in memory: not used: {base} has * MB free, a copy in memory (* MB) and "
                    "this run's server (~* MB) need ~* MB; give --atlas-data-dir a tmpfs with ~* MB free to "
                    "keep clusters in memory*",
                ]
            )
            result.stdout.no_fnmatch_line("*No space left on device*")
            assert _leftovers(data) == [], run  # no copy in memory, no partial copy, no server folder
        result.stdout.fnmatch_lines([f"atlas: cluster cache: hit ({cache / _entry(cache).name});*"])


@needs_root
def test_a_copy_in_memory_an_earlier_run_left_is_removed_when_the_server_needs_its_room(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A copy in memory that leaves too little room for the run (made when the folder had more
    room, or by an older version) is removed, not kept at the cost of every later run."""
    pytester.makepyfile(USES_CLONES)
    cache = tmp_path_factory.mktemp("cache")
    with small_tmpfs(80) as data:
        options = (f"--atlas-data-dir={data}", f"--atlas-cache-dir={cache}", "-p", "no:randomly")
        pytester.runpytest(*options).assert_outcomes(passed=4)  # builds and stores the entry
        key = _entry(cache).name
        tiers = data / f"pytest-atlas-v2-{os.geteuid()}" / "cache"
        tier = tiers / "0000feed"  # a copy in memory as an earlier run made it
        tier.mkdir(mode=0o700)
        subprocess.run(["cp", "-a", str(cache / key), str(tier / key)], check=True)
        result = pytester.runpytest(*options)
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(
            ["atlas: hot cache in memory: not used: *; removed 1 copy in memory no run was using*"]
        )
        assert not (tier / key).exists()


@needs_root
def test_a_data_folder_too_small_for_a_server_says_how_much_it_needs(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """48 MB holds the cluster (~38 MB) but not the server's WAL and test databases beside it: a
    start from the cache (or from initdb) is refused before anything is copied, naming the folder,
    what it has and needs, and how to fix it; nothing is left in it (the old code copied the cluster,
    started it, and the tests failed with 'No space left on device')."""
    pytester.makepyfile(USES_CLONES)
    cache = tmp_path_factory.mktemp("cache")
    with small_tmpfs(128) as roomy:  # the entry, built where it fits
        pytester.runpytest(f"--atlas-data-dir={roomy}", f"--atlas-cache-dir={cache}").assert_outcomes(passed=4)
    entry = _entry(cache)
    made = json.loads((entry / "atlas-cache.json").read_text())["created"]
    with small_tmpfs(48) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        for extra in ((f"--atlas-cache-dir={cache}",), ("--atlas-no-cache",)):
            result = pytester.runpytest(f"--atlas-data-dir={data}", *extra, "-p", "no:randomly")
            result.assert_outcomes(errors=4)
            result.stdout.fnmatch_lines(
                [
                    f"*no space left on {base} (* MB free, needs ~* MB: * MB for the cluster, * MB for its WAL "
                    "and test databases)*",
                    "*how to fix: free space there, or give --atlas-data-dir a folder with ~* MB free*",
                ]
            )
            result.stdout.no_fnmatch_line("*No space left on device*")
            assert _leftovers(data) == [], extra
    assert json.loads((entry / "atlas-cache.json").read_text())["created"] == made  # the entry is kept


# -- pytest-xdist: one data folder for the servers of every worker ------------------------------------

#: enough tests that each of two workers starts its server (xdist hands both a share at once)
USES_CLONES_8 = USES_CLONES.replace("range(4)", "range(8)")


@pytest.fixture
def cached(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder on disk holding the entry of USES_CLONES_8's schema (built where it fits)."""
    cache = tmp_path_factory.mktemp("cache")
    pytester.makepyfile(USES_CLONES_8)
    with small_tmpfs(128) as roomy:
        options = (f"--atlas-data-dir={roomy}", f"--atlas-cache-dir={cache}", "-p", "no:randomly")
        pytester.runpytest(*options).assert_outcomes(passed=8)
    _entry(cache)
    return cache


@needs_root
@pytest.mark.parametrize("workers", [("-n", "2"), ("--tx", "2*popen", "--dist", "load")], ids=["-n", "--tx"])
def test_a_data_folder_with_room_for_one_server_stops_an_xdist_run_of_two_before_any_test(
    pytester: pytest.Pytester, cached: Path, workers: tuple[str, ...]
) -> None:
    """100 MB holds one server (~61 MB) but not the two of ``-n 2`` (or ``--tx 2*popen``): the run
    stops before any test (a usage error naming the folder, what it has, what ``-n 2`` needs, and how
    to fix it), and nothing is made in the folder. The old code checked each worker's room for its
    own server only: both saw room for one, both started, and tests failed deep inside PostgreSQL
    ('No space left on device') or with 'needs ~61 MB' on the worker that came second."""
    with small_tmpfs(100) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        result = pytester.runpytest(
            f"--atlas-data-dir={data}", f"--atlas-cache-dir={cached}", "-p", "no:randomly", *workers
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
        result.stderr.fnmatch_lines(
            [
                f"*--atlas-data-dir: {base} has * MB free, but -n 2 starts 2 servers there, ~* MB each (* MB "
                "for the cluster, * MB for its WAL and test databases): ~* MB in all",
                "*how to fix: give it ~* MB free (a larger tmpfs), run fewer workers (-n 1 fits), or give "
                "--atlas-data-dir another folder with room*",
            ]
        )
        out = result.stdout.str() + result.stderr.str()
        assert "passed" not in out and "No space left on device" not in out and "INTERNALERROR" not in out
        assert _leftovers(data) == []


@needs_root
def test_a_data_folder_with_room_for_two_servers_runs_an_xdist_run_of_two_without_a_copy_in_memory(
    pytester: pytest.Pytester, cached: Path
) -> None:
    """150 MB holds the two servers of ``-n 2`` (~61 MB each) but not them and a copy of the cluster
    in memory (~38 MB) beside them: every test passes and the run goes without the copy in memory,
    the header saying why. The old code weighed the copy against one server: it made the copy and
    a worker ran out of space."""
    with small_tmpfs(150) as data:
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        options = (f"--atlas-data-dir={data}", f"--atlas-cache-dir={cached}", "-p", "no:randomly", "-n", "2")
        for run in ("first", "second"):
            result = pytester.runpytest(*options)
            result.assert_outcomes(passed=8)
            result.stdout.fnmatch_lines(
                [
                    f"atlas: hot cache in memory: not used: {base} has * MB free, a copy in memory (* MB) and "
                    "the 2 servers of -n 2 (~* MB each) need ~* MB; give --atlas-data-dir a tmpfs with ~* MB "
                    "free to keep clusters in memory*",
                ]
            )
            result.stdout.no_fnmatch_line("*No space left on device*")
            assert _leftovers(data) == [], run


# -- a data folder that fills up while the tests run ---------------------------------------------------

FILLS_UP = """
import pytest
from tests.mounts import fill

@pytest.fixture
def filled(atlas_postgres):
    # the server is up, its template made: fill its file system before the test's database is cloned
    fill(atlas_postgres.data_dir.parents[2], leave=1 << 20)

def test_full(atlas_postgres, filled, atlas_db):
    pass
"""


@needs_root
def test_a_clone_on_a_full_data_folder_names_the_folder_and_its_free_space(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The file system of the server's data fills up while the tests run (a test wrote there):
    cloning the next test database fails with PostgreSQL's 53100 (disk full); the message names the
    server's data folder and what it has free, and says how to fix it. The old hint said only
    "the server's disk is full: free disk space, or reduce parallel workers (-n)"."""
    pytester.makepyfile(FILLS_UP)
    cache = tmp_path_factory.mktemp("cache")
    with small_tmpfs(80) as data:
        result = pytester.runpytest(
            f"--atlas-data-dir={data}", f"--atlas-cache-dir={cache}", "-p", "no:randomly", "-n", "0"
        )
        result.assert_outcomes(errors=1)
        base = data / f"pytest-atlas-v2-{os.geteuid()}"
        result.stdout.fnmatch_lines(
            [
                "*could not create a test database from atlas_template on *: no space left on "
                f"{base}/run-*/pgdata (* free): *No space left on device*",
                "*how to fix: free space on that file system, give --atlas-data-dir a folder with more room, or "
                "run fewer pytest-xdist workers (-n): each worker's server clones its test databases there",
            ]
        )
