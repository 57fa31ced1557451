"""``python -m pytest_atlas``: the cache (info, clear) and what --atlas-keep-db kept (the table,
``kept``, ``kept --remove``), run as users run them: commands in a shell, their exit statuses."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas.db._cache import ClusterCache
from tests.db.conftest import PasswordServer, discard_kept, postmasters, wait_gone
from tests.db.test_cache import fake_cluster, store
from tests.db.test_secrets import pasted

pytest_plugins = ["pytester"]


def janitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_atlas", *args], capture_output=True, text=True, check=False, timeout=120
    )


def janitor_run_with_kept_db(data_dir: Path) -> Path:
    """A kept run folder (as --atlas-keep-db leaves one, its run over) in ``data_dir``'s base folder."""
    from pytest_atlas.db._account import server_account
    from pytest_atlas.db._runtime import RunDir, choose_base

    run = RunDir.create(choose_base(data_dir, server_account(None)).path, server_account(None), keep=True)
    run.release()
    return run.path


def table_rows(text: str) -> list[list[str]]:
    """The rows of the kept-databases table: [test id, database, connect command]."""
    rows = []
    for line in text.splitlines():
        if "psql '" in line:
            head, command = line.split("psql '", 1)
            test, database = head.split()
            rows.append([test, database, "psql '" + command.strip()])
    return rows


def test_keep_db_prints_test_database_command_and_kept_remove_removes_it(
    pytester: pytest.Pytester, own_base: list[str]
) -> None:
    pytester.makeconftest(
        """
        from pytest_atlas import atlas_fixtures

        module_db = atlas_fixtures(scope="module").db
        """
    )
    pytester.makepyfile(
        test_keep="""
        def test_writes(atlas_db):
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('kept by test_writes')")
            atlas_db.commit()

        def test_empty(atlas_db):
            pass

        def test_module(module_db):
            module_db.execute("INSERT INTO sessions (task) VALUES ('kept by the module')")
            module_db.commit()
        """
    )
    result = pytester.runpytest_subprocess("--atlas-keep-db", "-p", "no:cacheprovider", "-p", "no:randomly", *own_base)
    result.assert_outcomes(passed=3)
    [run_dir] = list(Path(own_base[1]).glob("pytest-atlas-v2-*/run-*"))
    try:
        rows = {test: (database, command) for test, database, command in table_rows(result.stdout.str())}
        assert set(rows) >= {"test_keep.py::test_writes", "test_keep.py::test_empty", "test_keep.py"}
        for test, expected in [
            ("test_keep.py::test_writes", "kept by test_writes"),
            ("test_keep.py::test_empty", ""),
            ("test_keep.py", "kept by the module"),
        ]:
            database, command = rows[test]
            assert pasted(command, "SELECT current_database() || ':' || coalesce(min(task), '') FROM sessions") == (
                f"{database}:{expected}"
            )
        listed = janitor("kept", "--data-dir", own_base[1])
        assert listed.returncode == 0, listed.stderr
        assert "server running" in listed.stdout and "test_keep.py::test_writes" in listed.stdout
        assert table_rows(listed.stdout) == table_rows(result.stdout.str())
        pids = [int((run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])]
        removed = janitor("kept", "--remove", "--data-dir", own_base[1])
        assert removed.returncode == 0, removed.stderr
        assert f"removed {run_dir} (stopped its server)" in removed.stdout
        assert wait_gone(pids) == [] and not run_dir.exists()
        assert pids[0] not in postmasters()
        assert janitor("kept", "--data-dir", own_base[1]).stdout.strip() == "nothing kept"
    finally:
        discard_kept(run_dir)


def test_kept_remove_leaves_a_run_that_is_still_going(tmp_path: Path, own_base: list[str]) -> None:
    from pytest_atlas.db._account import server_account
    from pytest_atlas.db._runtime import RunDir, choose_base

    base = choose_base(Path(own_base[1]), server_account(None))
    live = RunDir.create(base.path, server_account(None), keep=True)  # its lock is held: a live run
    try:
        result = janitor("kept", "--remove", "--data-dir", own_base[1])
        assert result.returncode == 1
        assert f"left {live.path} (its run is still going)" in result.stdout
        assert live.path.exists()
    finally:
        live.remove()


def test_cache_info_and_clear(tmp_path: Path, own_base: list[str]) -> None:
    disk = ClusterCache(tmp_path / "disk")
    disk.prepare()
    store(disk, "pg15-aaaa", fake_cluster(tmp_path / "src1", "a" * 5000))
    store(disk, "pg15-bbbb", fake_cluster(tmp_path / "src2", "b"))
    hot_tier = Path(own_base[1]) / f"pytest-atlas-v2-{os.geteuid()}" / "cache" / "t1"
    hot_tier.parent.mkdir(parents=True, mode=0o700)
    os.chmod(hot_tier.parent.parent, 0o700)
    store(ClusterCache(hot_tier), "pg15-aaaa", fake_cluster(tmp_path / "src3", "a"))
    args = ["--cache-dir", str(tmp_path / "disk"), "--data-dir", own_base[1]]

    info = janitor("cache", "info", *args)
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0].startswith(f"persistent cache: {tmp_path / 'disk'} (") and lines[0].endswith(" in 2)")
    assert any(line.split()[:2] == ["disk", "pg15-aaaa"] for line in lines)
    assert any(line.split()[:2] == ["memory", "t1/pg15-aaaa"] for line in lines)
    assert lines[-1].startswith("hot cache in memory:") and lines[-1].endswith("in 1 entries")

    with disk.lock("pg15-bbbb", shared=True):  # a run is copying it
        cleared = janitor("cache", "clear", *args)
    assert cleared.returncode == 1, cleared.stderr
    assert cleared.stdout.splitlines()[-1] == "2 removed, 1 in use"
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["pg15-bbbb", "pg15-bbbb.lock"]
    assert list(hot_tier.iterdir()) == []  # no lock file of a removed entry stays behind
    assert janitor("cache", "clear", *args).returncode == 0


def test_usage_errors_exit_2() -> None:
    result = janitor("cache", "burn")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = janitor("kept", "--remove", "--dsn", " ")
    assert result.returncode == 2 and "--dsn: give the server's DSN" in result.stderr
    assert "Traceback" not in result.stderr
    result = janitor("kept", "--remove", "--dsn", "postgresql://ci:Secr3tW0rd@127.0.0.1:1/x?bogus=1")
    assert result.returncode == 2, result.stderr
    assert "invalid value for --dsn" in result.stderr and 'invalid URI query parameter: "bogus"' in result.stderr
    assert "Secr3tW0rd" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_every_option_is_checked_before_anything_is_removed(tmp_path: Path, own_base: list[str]) -> None:
    """A wrong --dsn, --cache-dir or --data-dir is a usage error before the command removes anything
    (a bad --dsn after the local kept servers were already gone; a file given as a folder cleared
    the other tier)."""
    data = Path(own_base[1])
    kept = janitor_run_with_kept_db(data)
    file = tmp_path / "a-file"
    file.write_text("")
    for args in (
        ["kept", "--remove", "--data-dir", str(data), "--dsn", "host=db port=notaport junk"],
        ["kept", "--remove", "--data-dir", str(file)],
        ["cache", "clear", "--cache-dir", str(file), "--data-dir", str(data)],
        ["cache", "clear", "--data-dir", str(file)],
    ):
        result = janitor(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "removed" not in result.stdout, result.stdout
        assert kept.is_dir(), args
    assert janitor("kept", "--remove", "--data-dir", str(data)).returncode == 0
    assert not kept.exists()


def test_pytest_cache_flags_do_what_the_command_does(tmp_path: Path, own_base: list[str]) -> None:
    disk = ClusterCache(tmp_path / "disk")
    disk.prepare()
    store(disk, "pg15-aaaa", fake_cluster(tmp_path / "src1", "a"))
    folders = ["--atlas-cache-dir", str(tmp_path / "disk"), "--atlas-data-dir", own_base[1]]

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:randomly", *args, *folders],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            timeout=120,
        )

    info = pytest_run("--atlas-cache-info")
    assert info.returncode == 0, info.stderr
    assert (
        info.stdout == janitor("cache", "info", "--cache-dir", str(tmp_path / "disk"), "--data-dir", own_base[1]).stdout
    )
    with disk.lock("pg15-aaaa", shared=True):
        busy = pytest_run("--atlas-cache-clear")
    assert (busy.returncode, busy.stdout.splitlines()[-1]) == (1, "0 removed, 1 in use")
    cleared = pytest_run("--atlas-cache-clear")
    assert (cleared.returncode, cleared.stdout.splitlines()[-1]) == (0, "1 removed, 0 in use")
    assert list((tmp_path / "disk").iterdir()) == []


def test_kept_on_a_server_acts_only_there_on_what_its_role_kept(
    tmp_path: Path, own_base: list[str], password_server: PasswordServer
) -> None:
    """``kept --dsn`` lists the kept databases with the role that owns each (not the role that
    connects: a superuser has the rights of every role), and ``kept --remove --dsn`` drops only the
    DSN role's own, of runs that are over (a run still going holds its token's advisory lock), never
    one whose label names another token, and never a kept server folder on this machine."""
    from psycopg import sql

    from pytest_atlas.db._external import lock_key

    def kept(conn: psycopg.Connection[Any], name: str, token: str) -> None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        label = json.dumps({"pytest-atlas": {"token": token, "keep": True}})
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))

    live, dead = "pytest_atlas_0a0a0a0a_0001", "pytest_atlas_0b0b0b0b_0001"
    theirs, forged = "pytest_atlas_0c0c0c0c_0001", "pytest_atlas_0d0d0d0d_0001"
    local = janitor_run_with_kept_db(Path(own_base[1]))  # a kept server folder of this machine
    url = password_server.url()
    with password_server.connect() as admin, password_server.connect() as holder:
        admin.execute("DROP ROLE IF EXISTS atlas_keeper")
        admin.execute("CREATE ROLE atlas_keeper LOGIN CREATEDB PASSWORD 'keeper-pass'")
        try:
            kept(admin, live, "0a0a0a0a")
            kept(admin, dead, "0b0b0b0b")
            kept(admin, forged, "0e0e0e0e")  # labelled kept, with another run's token: not provably ours
            keeper = PasswordServer(password_server.port, "keeper-pass").url("atlas_keeper")
            with psycopg.connect(keeper, autocommit=True) as ci:
                kept(ci, theirs, "0c0c0c0c")  # another role's run kept it
            holder.execute("SELECT pg_advisory_lock(%s, %s)", lock_key("0a0a0a0a"))  # the live run's lock

            mixed = janitor("kept", "--remove", "--dsn", url, "--data-dir", own_base[1])
            assert mixed.returncode == 2 and "--dsn acts only on that server" in mixed.stderr, mixed.stdout
            assert local.is_dir(), "kept --remove --dsn removed a kept server folder of this machine"

            listed = janitor("kept", "--dsn", url)
            assert listed.returncode == 0, listed.stderr
            rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("pytest_atlas_")]
            assert rows == [
                [live, "0a0a0a0a", "going", "postgres"],
                [dead, "0b0b0b0b", "ended", "postgres"],
                [theirs, "0c0c0c0c", "ended", "atlas_keeper"],
            ]
            assert not password_server.leaks(listed.stdout + listed.stderr)

            result = janitor("kept", "--remove", "--dsn", url)
            assert result.stdout.splitlines() == [
                f"dropped {dead}",
                f"left {live} (its run is still going)",
                f"left {theirs} (of role 'atlas_keeper', not ours to drop)",
            ], result.stdout + result.stderr
            assert result.returncode == 1
            assert not password_server.leaks(result.stdout + result.stderr)
            names = [live, dead, theirs, forged]
            left = admin.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY 1", (names,))
            assert left.fetchall() == [(live,), (theirs,), (forged,)]
            assert local.is_dir()
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            for name in (live, dead, theirs, forged):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            admin.execute("DROP ROLE IF EXISTS atlas_keeper")
            discard_kept(local)


def test_kept_remove_on_a_server_drops_what_dead_runs_of_its_role_left(password_server: PasswordServer) -> None:
    """``kept --remove --dsn`` drops at once what the next run's start would reap: the unkept
    databases of runs that are over (one killed before it labelled anything, one that ended but
    whose drop failed), of the DSN's own role; a live run's databases, a run that went silent only
    seconds ago and another role's leftovers stay, and only the silent run's are named."""
    from psycopg import sql

    from pytest_atlas.db._external import lock_key
    from pytest_atlas.db._postgres import run_label

    killed, ended, live = "pytest_atlas_0f0f0f0f_0001", "pytest_atlas_0f0f0f1f_0002", "pytest_atlas_0a0a0a1a_0001"
    silent, theirs = "pytest_atlas_0a0a0a2a_0001", "pytest_atlas_0c0c0c1c_0001"
    names = [killed, ended, live, silent, theirs]
    url = password_server.url()

    def create(conn: psycopg.Connection[Any], name: str, label: str | None = None) -> None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if label is not None:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(label)))

    with password_server.connect() as admin, password_server.connect() as holder:
        admin.execute("DROP ROLE IF EXISTS atlas_leaver")
        admin.execute("CREATE ROLE atlas_leaver LOGIN CREATEDB PASSWORD 'leaver-pass'")
        try:
            (now,) = admin.execute("SELECT extract(epoch FROM now())::float8").fetchone() or (0.0,)
            create(admin, killed)  # killed before its first label: no heartbeat, its lock free
            create(admin, ended, run_label("0f0f0f1f", keep=False, alive=now - 5, ended=True))
            create(admin, live)
            create(admin, silent, run_label("0a0a0a2a", keep=False, alive=now - 5))  # may be reconnecting
            with psycopg.connect(PasswordServer(password_server.port, "leaver-pass").url("atlas_leaver")) as other:
                other.autocommit = True
                create(other, theirs)  # another role's dead run: not ours to drop
            holder.execute("SELECT pg_advisory_lock_shared(%s, %s)", lock_key("0a0a0a1a"))  # the live run

            result = janitor("kept", "--remove", "--dsn", url)
            assert result.stdout.splitlines()[:2] == [
                f"dropped {killed} (left by dead run 0f0f0f0f)",
                f"dropped {ended} (left by dead run 0f0f0f1f)",
            ], result.stdout + result.stderr
            rest = result.stdout.splitlines()[2:]
            assert len(rest) == 1 and rest[0].startswith(f"left {silent} (left by run 0a0a0a2a: its lock is free"), rest
            assert result.returncode == 1  # something is left: the silent run's, to be tried again
            assert not password_server.leaks(result.stdout + result.stderr)
            found = admin.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY 1", (names,))
            assert found.fetchall() == [(live,), (silent,), (theirs,)]
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            admin.execute("DROP ROLE IF EXISTS atlas_leaver")


def test_kept_does_not_call_a_recycled_process_id_a_running_server(own_base: list[str]) -> None:
    """A kept run's ``postmaster.pid`` may name a process id that is now another program's (or one
    of another PID namespace): the listing says the server runs only when that process is it."""
    from pytest_atlas.db._account import server_account
    from pytest_atlas.db._runtime import RunDir, choose_base

    base = choose_base(Path(own_base[1]), server_account(None))
    run = RunDir.create(base.path, server_account(None), keep=True)
    other = subprocess.Popen(["sleep", "60"])  # a live process id that is not a server
    try:
        run.mark_kept()
        run.release()  # the run is over
        run.pgdata.mkdir(mode=0o700)
        (run.pgdata / "postmaster.pid").write_text(f"{other.pid}\n{run.pgdata}\n")
        listed = janitor("kept", "--data-dir", own_base[1])
        assert f"{run.path}: server not running" in listed.stdout, listed.stdout + listed.stderr
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
        (run.pgdata / "postmaster.pid").unlink(missing_ok=True)
        discard_kept(run.path)


def test_kept_remove_refuses_a_folder_named_through_another_account_s_link(tmp_path: Path, own_base: list[str]) -> None:
    """A kept folder named by a path through a link another account planted (to the base folder's
    parent), or through a folder another account may write in, is left: what the path names could
    be switched before it is removed. The same folder named by its real path is removed."""
    data_dir = Path(own_base[1])
    kept = janitor_run_with_kept_db(data_dir)
    base = kept.parent
    nobody = pwd.getpwnam("nobody").pw_uid
    planted = tmp_path / "planted"
    planted.symlink_to(data_dir)
    os.lchown(planted, nobody, nobody)
    through_link = planted / base.name / kept.name
    done = janitor("kept", "--remove", str(through_link))
    unsafe = "(named through a link or folder another account could change: give its real path)"
    assert done.stdout.splitlines() == [f"left {through_link} {unsafe}"], done.stdout
    assert done.returncode == 1 and kept.exists()

    shared = tmp_path / "shared"  # writable by everyone, not sticky: anyone could rename what is in it
    shared.mkdir()
    os.chmod(shared, 0o777)
    (shared / "data").symlink_to(data_dir)  # (root's own link, in a folder others may change)
    through_shared = shared / "data" / base.name / kept.name
    done = janitor("kept", "--remove", str(through_shared))
    assert done.stdout.splitlines() == [f"left {through_shared} {unsafe}"], done.stdout
    assert done.returncode == 1 and kept.exists()

    done = janitor("kept", "--remove", str(kept))
    assert done.stdout.splitlines() == [f"removed {kept}"], done.stdout
    assert done.returncode == 0 and not kept.exists()


def test_kept_remove_with_folders_removes_just_those(tmp_path: Path, own_base: list[str]) -> None:
    data_dir = Path(own_base[1])
    first, second = janitor_run_with_kept_db(data_dir), janitor_run_with_kept_db(data_dir)
    stray = tmp_path / "run-00000000"  # a folder of the same name shape that is not a kept server's
    stray.mkdir()
    done = janitor("kept", "--remove", str(first), str(stray))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"removed {first}", f"left {stray} (not a kept server folder of yours)"]
    assert not first.exists() and second.exists() and stray.exists()
    # a folder shaped like a kept one, but not in a base folder of pytest-atlas: not provably ours
    lookalike = tmp_path / "elsewhere" / "run-0000abcd"
    lookalike.mkdir(parents=True)
    (lookalike / "kept").write_text("")
    (lookalike / "lock").write_text("")
    done = janitor("kept", "--remove", str(lookalike))
    assert done.stdout.splitlines() == [f"left {lookalike} (not a kept server folder of yours)"], done.stdout
    assert done.returncode == 1 and lookalike.exists()
    usage = janitor("kept", str(second))
    assert usage.returncode == 2 and "a FOLDER is only for --remove" in usage.stderr
    assert second.exists()
