"""Files and folders are created without following anyone's links and checked before use, and
nothing the run did not create is changed or deleted."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_atlas.db import _runtime
from pytest_atlas.db._account import server_account
from pytest_atlas.db._fs import FileLock, UnsafePathError, ensure_dir, read_regular
from pytest_atlas.db._runtime import BASE_NAME, choose_base
from tests.db.conftest import run_as

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other accounts (CI runs as root)")
USES_DB = "def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n"


@pytest.fixture
def sticky() -> Iterator[Path]:
    """A world-writable sticky folder like /dev/shm or /tmp (where other accounts may plant things)."""
    folder = Path(tempfile.mkdtemp(prefix="atlas-sticky-", dir="/dev/shm"))
    os.chmod(folder, 0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_ensure_dir_creates_checks_and_never_chmods(tmp_path: Path) -> None:
    made = ensure_dir(tmp_path / "a" / "b", 0o711, parents=True)
    assert stat.S_IMODE(made.stat().st_mode) == 0o711
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    os.chmod(made, 0o750)  # the user's choice for an existing folder is kept
    ensure_dir(made, 0o700)
    assert stat.S_IMODE(made.stat().st_mode) == 0o750


def test_ensure_dir_refuses_what_it_must_not_use(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(UnsafePathError, match=r"is a symbolic link .* never follows links") as info:
        ensure_dir(tmp_path / "link")
    assert "remove it" in str(info.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(UnsafePathError, match="exists and is not a folder"):
        ensure_dir(tmp_path / "file")
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    with pytest.raises(UnsafePathError, match=r"is writable by other users \(mode 777\)") as info:
        ensure_dir(open_folder)
    assert "chmod go-w" in str(info.value)
    # a parent that others may write to and that is not sticky: they could rename our folder away
    os.chmod(open_folder, 0o777)
    with pytest.raises(UnsafePathError, match="writable by other users and not sticky"):
        ensure_dir(open_folder / "inside")


@ROOT_ONLY
def test_ensure_dir_refuses_a_folder_of_another_account(sticky: Path) -> None:
    assert run_as("nobody", "mkdir", "-m", "700", str(sticky / "planted")).returncode == 0
    with pytest.raises(UnsafePathError, match=r"belongs to 'nobody' \(uid 65534\), not to 'root'"):
        ensure_dir(sticky / "planted")


def test_reading_a_file_someone_else_controls_never_follows_or_blocks(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("root's secret")
    (tmp_path / "postmaster.pid").symlink_to(tmp_path / "secret")
    assert read_regular(tmp_path / "postmaster.pid") is None
    os.mkfifo(tmp_path / "fifo")
    assert read_regular(tmp_path / "fifo") is None  # would block a plain open()
    (tmp_path / "plain").write_text("42\n")
    assert read_regular(tmp_path / "plain") == "42\n"


def test_a_lock_file_removed_by_its_holder_is_not_shared(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = FileLock.acquire(path)
    assert first is not None and FileLock.try_acquire(path) is None
    path.unlink()  # a reaper removes the file while it holds the lock
    second = FileLock.acquire(path)  # a new file: a new lock, not the old unlinked one
    assert second is not None
    assert FileLock.try_acquire(path) is None
    first.release()
    second.release()
    assert FileLock.try_acquire(path) is not None


def test_the_default_folders_fall_back_to_a_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """When /dev/shm's and the temp folder's names are taken (a link planted by another account),
    the run uses a private folder of its own and says so."""
    name = BASE_NAME.format(uid=os.geteuid())
    shm = _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    base = choose_base(None, server_account(None))
    try:
        assert base.private and base.path.parent == shm and base.path.name.startswith(name + "-")
        assert "using the private folder" in base.note and "is a symbolic link" in base.note
        assert list(tmp_path.iterdir()) == []
    finally:
        shutil.rmtree(base.path)


def test_the_default_data_folder_is_dev_shm_only_if_it_holds_the_servers_of_every_worker() -> None:
    """Without --atlas-data-dir, /dev/shm is chosen when it has 1 GiB free and room for the servers of
    every pytest-xdist worker (``room``); when it lacks that room the run goes to the temp folder on
    disk instead of being refused there before any test. (The old code weighed 1 GiB only, and had
    no way to say what the run's servers need.)"""
    shm = Path("/dev/shm")
    if not _runtime._shm_has_room():
        pytest.skip("/dev/shm has less than 1 GiB free on this machine")
    account = server_account(None)
    assert choose_base(None, account, room=64 << 20).path.parent == shm
    free = shutil.disk_usage(shm).free
    crowded = choose_base(None, account, room=free + (1 << 30))
    assert crowded.path.parent != shm and not crowded.private, crowded


@ROOT_ONLY
def test_a_planted_link_is_refused_and_the_victim_untouched(pytester: pytest.Pytester, sticky: Path) -> None:
    """Another account plants the plugin's folder name as a link to a folder of the victim's whose
    sub-folders look like leftovers of killed runs."""
    victim = Path(tempfile.mkdtemp(prefix="atlas-victim-"))
    try:
        os.chmod(victim, 0o750)
        for name in ("run-0000aaaa", "build-0000bbbb", "dsn-0000cccc", ".new-0000dddd"):
            (victim / name / "pgdata").mkdir(parents=True)
            old = time.time() - 7200
            os.utime(victim / name, (old, old))
        link = sticky / BASE_NAME.format(uid=os.geteuid())
        assert run_as("nobody", "ln", "-s", str(victim), str(link)).returncode == 0
        pytester.makepyfile(USES_DB)
        result = pytester.runpytest("--atlas-data-dir", str(sticky))
        assert result.ret == pytest.ExitCode.USAGE_ERROR  # refused before anything runs
        result.stderr.fnmatch_lines(
            [
                f"*--atlas-data-dir: {link} is a symbolic link (to {victim}); pytest-atlas never follows links*",
                "*how to fix: if you did not make it, someone else did: remove it*",
            ]
        )
        assert stat.S_IMODE(victim.stat().st_mode) == 0o750, "the victim's folder mode was changed"
        assert sorted(p.name for p in victim.iterdir()) == [
            ".new-0000dddd",
            "build-0000bbbb",
            "dsn-0000cccc",
            "run-0000aaaa",
        ]
    finally:
        shutil.rmtree(victim, ignore_errors=True)


def test_an_existing_data_folder_keeps_its_mode(pytester: pytest.Pytester, sticky: Path) -> None:
    base = sticky / BASE_NAME.format(uid=os.geteuid())
    base.mkdir()
    os.chmod(base, 0o751)  # the user's choice (traversable by the server account, listable by its group)
    pytester.makepyfile(USES_DB)
    pytester.runpytest("--atlas-data-dir", str(sticky)).assert_outcomes(passed=1)
    assert stat.S_IMODE(base.stat().st_mode) == 0o751
    assert [p.name for p in base.iterdir() if p.name.startswith("run-")] == []


def test_a_cache_folder_that_is_a_link_means_a_cold_start_with_the_reason(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "cache").symlink_to(target)
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-cache-dir", str(tmp_path / "cache"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"atlas: cluster cache: unavailable: cache folder refused: {tmp_path / 'cache'} is a symbolic link*; starting without a cache*"
        ]
    )
    assert list(target.iterdir()) == []


def _refuse_the_defaults(sticky: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plant links at the default folder names (as another account would), so every run falls back
    to a private folder in ``sticky``/shm; returns that parent."""
    name = BASE_NAME.format(uid=os.geteuid())
    shm, temp = sticky / "shm", sticky / "tmp"
    for folder in (shm, temp):
        folder.mkdir()
        os.chmod(folder, 0o1777)
        (folder / name).symlink_to(tmp_path)
    monkeypatch.setattr(_runtime, "_SHM", shm)
    monkeypatch.setattr(_runtime, "_shm_has_room", lambda: True)
    monkeypatch.setattr(_runtime, "_temp_folders", lambda: [temp])
    return shm


_PRIVATE_RUN = """
import os, signal, sys
from pathlib import Path
from pytest_atlas.db import _runtime
from pytest_atlas.db._account import server_account
shm, temp = Path(sys.argv[1]), Path(sys.argv[2])
_runtime._SHM = shm
_runtime._shm_has_room = lambda: True
_runtime._temp_folders = lambda: [temp]
base = _runtime.choose_base(None, server_account(None))
assert base.private, base
run = _runtime.RunDir.create(base.path, server_account(None), keep=False)
print(base.path, run.path, flush=True)
sys.stdin.readline()
if sys.argv[3] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_runs_private_folder_is_reaped_by_the_next_run_a_live_ones_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """A private fallback folder whose run was killed (SIGKILL: no clean-up ran) is found and removed
    by the next run that looks in the same places; one whose run still lives is left alone, and so
    is a folder of that name that is not a private folder of ours (a link, open to others)."""
    shm = _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    runs = {}
    for how in ("killed", "alive"):
        child = subprocess.Popen(
            [sys.executable, "-c", _PRIVATE_RUN, str(shm), str(sticky / "tmp"), how],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        base, run = (Path(p) for p in child.stdout.readline().split())
        runs[how] = (child, base, run)
    name = BASE_NAME.format(uid=os.geteuid())
    decoy_link = shm / f"{name}-decoy1"
    decoy_link.symlink_to(tmp_path)
    decoy_open = shm / f"{name}-decoy2"
    decoy_open.mkdir()
    os.chmod(decoy_open, 0o777)
    (decoy_open / "run-x").mkdir()
    killed, base_killed, run_killed = runs["killed"]
    alive, base_alive, run_alive = runs["alive"]
    try:
        assert killed.stdin is not None
        killed.stdin.write("\n")
        killed.stdin.flush()
        assert killed.wait(timeout=30) == -9
        assert run_killed.is_dir()  # nothing cleaned it up
        base = choose_base(None, server_account(None))  # the next run
        try:
            assert base.private
            assert not base_killed.exists()
            assert run_alive.is_dir() and base_alive.is_dir()
            assert decoy_link.is_symlink() and (decoy_open / "run-x").is_dir()
        finally:
            _runtime.remove_private_base(base)
    finally:
        assert alive.stdin is not None
        alive.stdin.write("\n")
        alive.stdin.flush()
        alive.wait(timeout=30)
        shutil.rmtree(base_alive, ignore_errors=True)


def test_a_run_that_never_starts_a_server_leaves_no_private_folder(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """The report header plans the server (and so picks the private folder) even when no test uses
    the database: the folder goes at the end of the run all the same."""
    shm = _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*using the private folder*"])
    name = BASE_NAME.format(uid=os.geteuid())
    assert [p.name for p in shm.iterdir()] == [name]  # the planted link only


def test_no_private_folder_is_made_in_a_parent_others_may_write_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """A temp folder that is world-writable but not sticky is refused for the usual folder (anyone
    could rename it away); the private fallback must not be made there either, nor reaped there."""
    name = BASE_NAME.format(uid=os.geteuid())
    shm = _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    open_parent = sticky / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)  # no sticky bit
    left = open_parent / f"{name}-left0000"
    left.mkdir(mode=0o700)
    (left / "lock").write_text("")
    monkeypatch.setattr(_runtime, "_temp_folders", lambda: [open_parent, sticky / "tmp"])
    base = choose_base(None, server_account(None))
    try:
        assert base.private and base.path.parent == shm, base
        assert [p.name for p in open_parent.iterdir()] == [left.name] and (left / "lock").exists()
    finally:
        _runtime.remove_private_base(base)


def test_a_private_folder_is_never_seen_without_its_lock_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """The reaper takes a private folder whose lock file it can lock as dead. The folder's run
    creates that lock file already locked (made under another name, locked, then renamed), so a
    reaper running between the two steps finds no lock file and leaves the folder alone."""
    _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    import fcntl

    seen: list[Path] = []
    flock = fcntl.flock

    def another_run_reaps_first(fd: int, operation: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.parent.name.startswith(BASE_NAME.format(uid=os.geteuid()) + "-") and not seen:
            seen.append(path.parent)
            _runtime.reap_private_bases([path.parent.parent])  # the other run, at the worst moment
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", another_run_reaps_first)
    base = choose_base(None, server_account(None))
    monkeypatch.undo()
    try:
        assert seen == [base.path]
        assert base.path.is_dir() and (base.path / "lock").is_file()
        assert FileLock.try_acquire(base.path / "lock") is None  # held by this run
    finally:
        _runtime.remove_private_base(base)


def test_kept_servers_in_a_private_folder_are_listed_and_removed_by_the_janitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sticky: Path
) -> None:
    """`python -m pytest_atlas kept` (the command a kept run prints) finds kept run folders in the
    private folders of runs that fell back, not only in the usual one."""
    from pytest_atlas.db import _janitor

    shm = _refuse_the_defaults(sticky, tmp_path, monkeypatch)
    monkeypatch.setattr(_janitor, "_default_parents", lambda: [shm, sticky / "tmp"])
    base = choose_base(None, server_account(None))
    run = _runtime.RunDir.create(base.path, server_account(None), keep=True)
    run.release()
    assert base.path in _janitor.base_folders()
    assert [kept.path for kept in _janitor.kept_runs()] == [run.path]
    removed, left = _janitor.remove_kept()
    assert (removed, left) == ([str(run.path)], [])
    _runtime.remove_private_base(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing folders to another account needs root")
def test_a_folder_is_handed_over_from_the_bottom_up_without_following_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing the filled cluster to the server's account: once a folder is that account's, it can
    rename what is inside and plant a link (the account may already run programs: 'nobody' does).
    So nothing is changed below a folder already given away, and no change follows a link: each
    entry is given while the folder that holds it is still ours, the folder itself last."""
    account = server_account(None)
    top = tmp_path / "cluster"
    (top / "base" / "1").mkdir(parents=True)
    (top / "base" / "1" / "1259").write_bytes(b"page")
    (top / "global").mkdir()
    (top / "PG_VERSION").write_text("15\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (top / "global" / "planted").symlink_to(victim)
    calls: list[tuple[str, bool, bool]] = []  # (path, its folder was still ours, followed links)
    real_chown = os.chown

    def chown(path: str, uid: int, gid: int, *, follow_symlinks: bool = True, dir_fd: int | None = None) -> None:
        calls.append((str(path), os.lstat(os.path.dirname(path)).st_uid == os.geteuid(), follow_symlinks))
        real_chown(path, uid, gid, follow_symlinks=follow_symlinks, dir_fd=dir_fd)

    def lchown(path: str, uid: int, gid: int) -> None:
        chown(path, uid, gid, follow_symlinks=False)

    monkeypatch.setattr(os, "chown", chown)
    monkeypatch.setattr(os, "lchown", lchown)
    account.give(top)
    monkeypatch.undo()
    everything = [top, *top.rglob("*")]
    assert {str(path) for path, _, _ in calls} == {str(path) for path in everything}
    assert all(os.lstat(path).st_uid == account.uid for path in everything)
    assert os.lstat(victim).st_uid == os.geteuid(), "a link was followed"
    assert [path for path, ours, _ in calls if not ours] == [], "changed inside a folder already given away"
    assert [path for path, _, follows in calls if follows] == [], "a change that would follow a link"


# -- links and others' folders above the plugin's folders ---------------------------------------------


def _plant(link: Path, target: Path, uid: int = 65534) -> Path:
    """A symbolic link at ``link`` to ``target`` as another account would make it (its owner ``uid``)."""
    link.symlink_to(target)
    os.lchown(link, uid, uid)
    return link


@pytest.fixture
def target() -> Iterator[Path]:
    """A folder of root's (0755) that a planted link points to: nothing may appear in it."""
    folder = Path(tempfile.mkdtemp(prefix="atlas-target-", dir="/dev/shm"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@ROOT_ONLY
def test_another_accounts_link_above_the_data_folder_is_refused(
    pytester: pytest.Pytester, sticky: Path, target: Path
) -> None:
    """A link another account planted as a parent of --atlas-data-dir is never followed: the run
    stops with the reason (a usage error, not a traceback) and nothing appears in its target."""
    link = _plant(sticky / "plant", target)
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-data-dir", str(link / "d"), "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--atlas-data-dir: {link} is a symbolic link of 'nobody' (uid 65534) (to {target}); "
            "pytest-atlas never follows another account's links*",
            f"*how to fix: if you did not make it, someone else did: remove it (rm {link})*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stderr.no_fnmatch_line("*Traceback*")
    assert list(target.iterdir()) == []
    with pytest.raises(UnsafePathError, match="is a symbolic link of 'nobody'"):
        choose_base(link / "d" / "e", server_account(None))
    assert list(target.iterdir()) == []


@ROOT_ONLY
def test_another_accounts_link_above_the_cache_folder_is_refused(sticky: Path, target: Path) -> None:
    from pytest_atlas.db._cache import CacheUnavailable, ClusterCache

    link = _plant(sticky / "plant", target)
    with pytest.raises(CacheUnavailable, match=rf"cache folder refused: {link} is a symbolic link of 'nobody'"):
        ClusterCache(link / "c" / "pytest-atlas").prepare()
    cache = ClusterCache(link / "c" / "pytest-atlas")
    with pytest.raises(UnsafePathError, match="is a symbolic link of 'nobody'"), cache.lock("pg15-x"):
        pass
    assert list(target.iterdir()) == []


@ROOT_ONLY
def test_a_report_is_never_written_through_another_accounts_link_above_it(sticky: Path, target: Path) -> None:
    from pytest_atlas.db import check_output, write_output

    link = _plant(sticky / "plant", target)
    for path in (link / "r.json", link / "sub" / "deeper" / "r.json"):
        for call in (check_output, lambda p: write_output(p, b"{}")):
            with pytest.raises(UnsafePathError, match=r"plant is a symbolic link of 'nobody' \(uid 65534\)"):
                call(path)
    assert list(target.iterdir()) == []


@ROOT_ONLY
@pytest.mark.parametrize("make", ["report", "data folder", "cache folder"])
def test_a_link_planted_just_before_a_folder_is_made_is_not_followed(
    monkeypatch: pytest.MonkeyPatch, sticky: Path, target: Path, make: str
) -> None:
    """The race of a planting account, made deterministic: the link appears at the name right before
    the plugin creates the folder there, after every check by name has passed. The folder is made
    relative to the descriptor of the folder that was checked, so the link is found, not followed."""
    from pytest_atlas.db import write_output
    from pytest_atlas.db._cache import CacheUnavailable, ClusterCache

    real_mkdir = os.mkdir
    planted: list[Path] = []

    def mkdir(path: str | Path, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if os.path.basename(os.fspath(path)) == "race" and not planted:
            planted.append(_plant(sticky / "race", target))
        real_mkdir(path, mode, dir_fd=dir_fd)

    calls: dict[str, Callable[[], object]] = {
        "report": lambda: write_output(sticky / "race" / "sub" / "r.json", b"{}"),
        "data folder": lambda: choose_base(sticky / "race" / "sub", server_account(None)),
        "cache folder": lambda: ClusterCache(sticky / "race" / "sub").prepare(),
    }
    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises((UnsafePathError, CacheUnavailable), match=r"race is a symbolic link"):
        calls[make]()
    monkeypatch.undo()
    assert planted and list(target.iterdir()) == []


@ROOT_ONLY
def test_a_folder_of_another_account_above_the_data_folder_is_refused(tmp_path: Path) -> None:
    """Not only the folder the new one goes in: the owner of any folder above can rename what is
    below away and put a link there; a sticky folder does not stop its own owner."""
    theirs = tmp_path / "theirs"
    (theirs / "mine").mkdir(parents=True)
    os.chmod(theirs, 0o755)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafePathError, match=r"theirs belongs to 'nobody' \(uid 65534\), who could replace mine"):
        ensure_dir(theirs / "mine" / "d" / "e", parents=True)
    os.chmod(theirs, 0o1777)
    with pytest.raises(UnsafePathError, match=r"theirs belongs to 'nobody' \(uid 65534\), who could replace mine"):
        ensure_dir(theirs / "mine" / "d", 0o700)
    assert list((theirs / "mine").iterdir()) == []


def test_links_of_root_or_of_this_account_above_a_folder_are_followed(sticky: Path, target: Path) -> None:
    """A link that root or the running account made (/var/run -> /run, /tmp -> /private/tmp, a link of
    the user's own) is nobody else's plant: the folders are made in its target. The folder itself
    being a link is still refused."""
    from pytest_atlas.db import write_output

    mine = target  # this account's, 0755, where the server account can reach
    link = sticky / "link"
    link.symlink_to(os.path.relpath(mine, sticky))  # relative, and mine (root's when run as root)
    made = ensure_dir(link / "a" / "b", 0o700, parents=True)
    assert made == link / "a" / "b" and (mine / "a" / "b").is_dir()
    assert stat.S_IMODE((mine / "a" / "b").stat().st_mode) == 0o700
    assert write_output(link / "reports" / "r.json", b"{}").read_bytes() == b"{}"
    assert (mine / "reports" / "r.json").read_bytes() == b"{}"
    base = choose_base(link / "data", server_account(None))
    assert base.path == link / "data" / BASE_NAME.format(uid=os.geteuid()) and base.path.is_dir()
    assert (mine / "data" / BASE_NAME.format(uid=os.geteuid())).is_dir()
    (mine / "a" / "final").symlink_to(mine / "a" / "b")
    with pytest.raises(UnsafePathError, match=r"is a symbolic link .* never follows links to its folders"):
        ensure_dir(link / "a" / "final")
