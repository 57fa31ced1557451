"""Clean exit: servers stop and their files go away after a normal run, a failure, Ctrl-C and a
SIGKILL (the next run reaps what a killed run left); kept servers stay; pytest-xdist. (What
--atlas-keep-db prints, pasted and run: test_secrets.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.db.conftest import (
    as_owner_of,
    discard_kept,
    foreign_process,
    release_inner,
    rewrite_pid_file,
    running,
    servers_of,
    start_inner,
    stop_inner,
    wait_gone,
)


def test_normal_run_and_failing_run_leave_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_ok(atlas_db, atlas_tx):
            pass

        def test_fails(atlas_db, atlas_postgres):
            with open("data_dir.txt", "w") as f:
                f.write(str(atlas_postgres.data_dir))
            assert False, "a failing test"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    data_dir = (pytester.path / "data_dir.txt").read_text()
    assert not Path(data_dir).parent.exists(), "the run folder was not removed"
    assert servers_of(data_dir) == [], "a postgres server outlived its run"


def test_ctrl_c_stops_the_server_and_removes_its_files(pytester: pytest.Pytester, tmp_path: Path) -> None:
    proc, probe = start_inner(pytester, tmp_path)
    assert servers_of(probe["data_dir"]), "the inner run has no server"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert b"KeyboardInterrupt" in out
    assert wait_gone(servers_of(probe["data_dir"])) == []
    assert not Path(probe["data_dir"]).parent.exists()


def test_sigkill_takes_the_server_down_and_the_next_run_reaps_the_files(
    pytester: pytest.Pytester, tmp_path: Path, own_base: list[str]
) -> None:
    proc, probe = start_inner(pytester, tmp_path, *own_base)
    servers = servers_of(probe["data_dir"])
    assert servers
    proc.kill()
    proc.wait(timeout=30)
    # the kernel signals the server when its parent dies (PR_SET_PDEATHSIG): no orphan
    assert wait_gone(servers) == [], "the server survived a SIGKILL of pytest"
    run_dir = Path(probe["data_dir"]).parent
    assert run_dir.exists()  # nobody removed the files yet
    pytester.makepyfile(test_next="def test_next(atlas_db, atlas_postgres):\n    print('NOTE', atlas_postgres.cache)\n")
    result = pytester.runpytest_subprocess("test_next.py", "-s", "-p", "no:cacheprovider", *own_base)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*NOTE *removed * server folder(s) left by killed runs*"])
    assert not run_dir.exists()


def test_kept_servers_are_never_reaped_and_orphans_are_stopped(
    pytester: pytest.Pytester, tmp_path: Path, own_base: list[str]
) -> None:
    """A kept server outlives its run and no later run touches it; a server whose run is dead but
    which still runs (kept, then unmarked; or a kernel without pdeathsig) is stopped, not just unlinked."""
    proc, probe = start_inner(pytester, tmp_path, "--atlas-keep-db", *own_base)
    run_dir = Path(probe["data_dir"]).parent
    try:
        # (the postmaster's PID: a backend it just forked shows the same command line for a moment)
        postmaster = int((run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert postmaster in servers_of(probe["data_dir"])
        proc.kill()  # a detached (kept) server has no parent-death signal: it keeps running
        proc.wait(timeout=30)
        pytester.makepyfile(other_test="def test_other(atlas_db):\n    pass\n")
        pytester.runpytest_subprocess("other_test.py", "-p", "no:cacheprovider", *own_base).assert_outcomes(passed=1)
        assert run_dir.exists(), "a kept server's folder was reaped"
        assert postmaster in servers_of(probe["data_dir"]), "a kept server was stopped"
        (run_dir / "kept").unlink()  # now it is an orphan: its run is dead (its lock is free)
        # and its account made postmaster.pid a link to a file it cannot read (so the server, which
        # checks that file every minute, keeps running): it is stopped all the same
        secret = tmp_path / "root-only"
        secret.write_text("")
        os.chmod(secret, 0o600)
        pid_file = run_dir / "pgdata" / "postmaster.pid"
        subprocess.run([*as_owner_of(pid_file.parent), "ln", "-sf", str(secret), str(pid_file)], check=True)
        result = pytester.runpytest_subprocess("other_test.py", "-p", "no:cacheprovider", *own_base)
        result.assert_outcomes(passed=1)
        assert wait_gone([postmaster]) == [], "the orphan was left running (its folder gone)"
        assert not run_dir.exists()
    finally:
        discard_kept(run_dir)


def test_a_server_started_again_in_the_folder_is_stopped_with_the_run(
    pytester: pytest.Pytester, tmp_path: Path, own_base: list[str]
) -> None:
    """The server's account (or a test, through ``COPY ... TO PROGRAM``) can restart the server with
    ``pg_ctl``: the new postmaster is no child of pytest, and postmaster.pid, which names it, may be
    rewritten to name anything. The run still stops it at its end, and signals nothing else."""
    proc, probe = start_inner(pytester, tmp_path, *own_base)
    pgdata = Path(probe["data_dir"])
    first = int((pgdata / "postmaster.pid").read_text().split()[0])
    second = victim = 0
    try:
        pg_ctl = Path(os.fsdecode(Path(f"/proc/{first}/cmdline").read_bytes().split(b"\0")[0])).parent / "pg_ctl"
        restarted = subprocess.run(
            [*as_owner_of(pgdata), str(pg_ctl), "-D", str(pgdata), "-m", "immediate", "-w", "-t", "60", "restart"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            timeout=90,
            check=False,
        )
        assert restarted.returncode == 0, "pg_ctl restart failed"
        second = int((pgdata / "postmaster.pid").read_text().split()[0])
        assert second != first and running(second)
        victim = foreign_process()
        rewrite_pid_file(pgdata, victim)
        release_inner(proc, tmp_path)
        assert wait_gone([second]) == [], "a server started again in the run's folder outlived the run"
        assert not pgdata.parent.exists()
        assert running(victim), "the run signalled the process a rewritten postmaster.pid named"
    finally:
        stop_inner(proc)
        for pid in (victim, second):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        discard_kept(pgdata.parent)


def test_xdist_workers_are_isolated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.parametrize("n", range(6))
        def test_all_fixtures(atlas_db, atlas_dsn, atlas_tx, atlas_postgres, n):
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            assert worker in ("gw0", "gw1")
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            atlas_db.execute("INSERT INTO sessions (task) VALUES (%s)", (worker,))
            atlas_db.commit()
            atlas_tx.execute("INSERT INTO sessions (task) VALUES ('tx')")
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
            with open("servers.txt", "a") as f:
                f.write(str(atlas_postgres.data_dir) + chr(10))

        @pytest.mark.asyncio
        async def test_async(atlas_async_db):
            cur = await atlas_async_db.execute("SELECT count(*) FROM sessions")
            assert await cur.fetchone() == (0,)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
    data_dirs = set((pytester.path / "servers.txt").read_text().split())
    assert len(data_dirs) == 2, "each xdist worker has its own server"
    for data_dir in data_dirs:
        assert servers_of(data_dir) == []
        assert not Path(data_dir).parent.exists()


#: ``python -m pytest_atlas`` on a machine without pidfds (a kernel before 5.3, a sandbox that refuses them)
_NO_PIDFD = (
    "import errno, os, runpy, sys\n"
    "def refuse(pid, flags=0):\n"
    "    raise OSError(errno.ENOSYS, 'Function not implemented')\n"
    "os.pidfd_open = refuse\n"
    "sys.argv[0] = 'pytest_atlas'\n"
    "runpy.run_module('pytest_atlas', run_name='__main__', alter_sys=True)\n"
)


def test_a_kept_server_is_stopped_where_there_are_no_pidfds(pytester: pytest.Pytester, own_base: list[str]) -> None:
    """Without pidfds the server is signalled by its pid, checked again right before: it was taken
    for gone (any failure of pidfd_open was), and left running with its folder removed."""
    pytester.makepyfile("def test_keep(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    result = pytester.runpytest_subprocess("--atlas-keep-db", "-p", "no:cacheprovider", *own_base)
    result.assert_outcomes(passed=1)
    [run_dir] = list(Path(own_base[1]).glob("pytest-atlas-v2-*/run-*"))
    servers = servers_of(str(run_dir / "pgdata"))
    victim = foreign_process()  # a process of root's that the pid file is made to name
    try:
        assert servers
        rewrite_pid_file(run_dir / "pgdata", victim)
        done = subprocess.run(
            [sys.executable, "-c", _NO_PIDFD, "kept", "--remove", str(run_dir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert f"removed {run_dir} (stopped its server)" in done.stdout, done.stdout + done.stderr
        assert wait_gone(servers) == [], "the kept server was left running (its folder gone)"
        assert running(victim)
        assert not run_dir.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        discard_kept(run_dir)
