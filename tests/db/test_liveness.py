"""Whether a run is alive is judged by something that dies with it and that every container sees:
a lock on a file in its folder (locally), a session advisory lock of its token (on a shared
server). Host names and PIDs are no evidence: a second CI job in its own PID namespace, with the
same host name, must leave a live run alone, and reap it once it is dead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from pytest_atlas.db._account import server_account
from pytest_atlas.db._runtime import RunDir, choose_base, reap_stale
from tests.db.conftest import (
    PasswordServer,
    launch_inner,
    own_password_server,
    servers_of,
    stop_inner,
    wait_gone,
    wait_inner,
)

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root (CI runs as root)")
#: the advisory lock of a run token, as docs/security.md states it: keys (0x61746C61, token as int4)
ATLA = 0x61746C61


def token_key(token: str) -> tuple[int, int]:
    value = int(token, 16)
    return ATLA, value - (1 << 32) if value >= 1 << 31 else value


def databases(server: PasswordServer, like: str = "pytest_atlas_%") -> set[str]:
    with server.connect() as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))}


def lock_holders(server: PasswordServer, token: str) -> set[int]:
    """The backends that hold run ``token``'s lock (a run holds it on two connections)."""
    with server.connect() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::oid"
            " AND objid = %s::oid AND objsubid = 2",
            (ATLA, int(token, 16)),
        ).fetchall()
    return {int(row[0]) for row in rows}


def wait_free(server: PasswordServer, token: str) -> None:
    """Wait until no backend holds run ``token``'s lock any more (15 s at most: the backends a test
    terminated, or those of a killed run, take a moment to end)."""
    deadline = time.monotonic() + 15
    while lock_holders(server, token):
        assert time.monotonic() < deadline, "the lock's backends did not end"
        time.sleep(0.05)


#: how long a run whose lock is free must have been silent (by the server's clock) before a later
#: run takes it for dead: each job of these tests says, in $ATLAS_GRACE (the live runs keep theirs)
GRACE_CONFTEST = """
import os

import pytest_atlas.db._external as external

if "ATLAS_GRACE" in os.environ:
    external.HEARTBEAT_GRACE = float(os.environ["ATLAS_GRACE"])
"""


def heartbeat(server: PasswordServer, token: str) -> float:
    """Run ``token``'s heartbeat as docs/security.md states it: the newest ``alive`` (the server's
    time) in the labels of its databases; waits until it has one (15 s at most)."""
    deadline = time.monotonic() + 15
    while True:
        with server.connect() as conn:
            rows = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE %s",
                (f"pytest\\_atlas\\_{token}\\_%",),
            ).fetchall()
        beats = []
        for (comment,) in rows:
            label = json.loads(comment)["pytest-atlas"] if comment else {}
            if label.get("token") == token and "alive" in label:
                beats.append(float(label["alive"]))
        if beats:
            return max(beats)
        assert time.monotonic() < deadline, "the run keeps no heartbeat on the server"
        time.sleep(0.05)


def next_heartbeat(server: PasswordServer, token: str, after: float) -> float:
    """Wait until run ``token`` writes a heartbeat newer than ``after`` (30 s at most: it writes one
    every 5 s), and check it is the server's time (never later than the server's clock)."""
    deadline = time.monotonic() + 30
    while (beat := heartbeat(server, token)) <= after:
        assert time.monotonic() < deadline, "the run's heartbeat did not go on"
        time.sleep(0.1)
    with server.connect() as conn:
        row = conn.execute("SELECT extract(epoch FROM statement_timestamp())::float8").fetchone()
    assert row is not None and beat <= float(row[0])
    return beat


def later_job(pytester: pytest.Pytester, url: str, grace: float) -> str:
    """A second job (its own process, its own PID namespace when root) on the server at ``url``, that
    takes a run silent for ``grace`` s for dead; returns its output, once it passed."""
    pytester.makepyfile(test_second="def test_second(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    namespace = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] if os.geteuid() == 0 else []
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_TEST_DSN"}
    second = subprocess.run(
        [*namespace, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_second.py"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env={**env, "ATLAS_TEST_DSN": url, "ATLAS_GRACE": str(grace)},
        timeout=120,
        check=False,
    )
    assert "1 passed" in second.stdout, second.stdout + second.stderr
    return second.stdout


def wait_holders(server: PasswordServer, token: str, gone: set[int], message: str) -> set[int]:
    """Wait until two backends other than ``gone`` hold run ``token``'s lock (15 s at most)."""
    deadline = time.monotonic() + 15
    while len((holders := lock_holders(server, token)) - gone) < 2:
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
    return holders


@ROOT_ONLY
def test_a_second_job_in_its_own_pid_namespace_leaves_live_runs_alone(
    pytester: pytest.Pytester,
    tmp_path: Path,
    own_base: list[str],
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = launch_inner(pytester, tmp_path, *own_base, name="local")
    shared = launch_inner(pytester, tmp_path, "--atlas-dsn", password_server.url(), *own_base, name="shared")
    try:
        seen_local, seen_shared = wait_inner(local, tmp_path, "local"), wait_inner(shared, tmp_path, "shared")
        token = seen_shared["token"]
        live = databases(password_server, f"pytest_atlas_{token}_%")
        assert live, "the run on the shared server made no database"
        # a fault first: a backend holding the run's lock is killed; the run takes it again
        first = min(lock_holders(password_server, token))
        with password_server.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (first,))
        wait_holders(password_server, token, {first}, "the run did not take its lock again")
        # the second job: same host name, its own PID namespace (the first job's PIDs do not exist there)
        pytester.makepyfile(test_second="def test_second(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
        # both kinds side by side: a started server, and a run on the shared server
        command = " & ".join(
            f"{sys.executable} -m pytest -q -p no:cacheprovider test_second.py {' '.join(args)} > {out}"
            for args, out in (
                (own_base, tmp_path / "second-local.txt"),
                (["--atlas-dsn", f"'{password_server.url()}'", *own_base], tmp_path / "second-shared.txt"),
            )
        )
        command += " & wait"
        second = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", command],
            cwd=pytester.path,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "ATLAS_TEST_DSN"},
            check=False,
        )
        outputs = [(tmp_path / f"second-{kind}.txt").read_text() for kind in ("local", "shared")]
        assert all("1 passed" in out for out in outputs), (second.stderr, outputs)
        # both live runs are intact: folders, server, databases
        assert Path(seen_local["run_dir"]).exists() and servers_of(seen_local["data_dir"])
        with psycopg.connect(seen_local["dsn"]) as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        assert Path(seen_shared["run_dir"]).exists()
        assert live <= databases(password_server, f"pytest_atlas_{token}_%")  # (the run clones ahead)
        with psycopg.connect(seen_shared["dsn"]) as conn:  # through the live run's passfile
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    finally:
        stop_inner(local)
        stop_inner(shared)
    # once they are dead (SIGKILL: nothing cleaned up), the next run reaps both (on the server, once
    # the dead run's heartbeat is older than the grace: none here)
    assert wait_gone(servers_of(seen_local["data_dir"])) == []
    pytester.makeconftest(GRACE_CONFTEST)
    monkeypatch.setenv("ATLAS_GRACE", "0")
    result = pytester.runpytest_subprocess(
        "test_second.py", "-p", "no:cacheprovider", "--atlas-dsn", password_server.url(), *own_base
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"dropped * database(s) left by dead run {token}"])
    assert databases(password_server, f"pytest_atlas_{token}_%") == set()
    # (a run that writes a passfile cleans the base folder too)
    assert not Path(seen_shared["run_dir"]).exists()
    assert not Path(seen_local["run_dir"]).exists()


@ROOT_ONLY
def test_a_run_on_a_shared_server_holds_its_lock_as_long_as_it_lives(
    pytester: pytest.Pytester, tmp_path: Path, password_server: PasswordServer
) -> None:
    """The lock is the run's liveness, and a second job (each in its own PID namespace) leaves the
    run alone while it lives: while one of the lock's backends is killed and cannot reconnect (the
    other still holds it), and after an outage of both that lasts longer than the time after which
    the run says so (shortened here from 300 s to 1 s), when the run takes its lock again."""
    db = "atlas_lock_outage"
    with password_server.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    pytester.makeconftest("import pytest_atlas.db._external as external\n\nexternal.LOCK_LOST_NOTE_AFTER = 1.0\n")
    pytester.makepyfile(test_second="def test_second(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    namespace = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    proc = launch_inner(pytester, tmp_path, prefix=namespace, env={"ATLAS_TEST_DSN": password_server.url(dbname=db)})

    def second_job() -> None:
        """A second job, in a PID namespace of its own, whose DSN names another database."""
        second = subprocess.run(
            [*namespace, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_second.py"],
            cwd=pytester.path,
            capture_output=True,
            text=True,
            env={**os.environ, "ATLAS_TEST_DSN": password_server.url()},
            timeout=120,
            check=False,
        )
        assert "1 passed" in second.stdout, second.stdout + second.stderr
        assert f"dead run {token}" not in second.stdout
        assert live <= databases(password_server, f"pytest\\_atlas\\_{token}\\_%"), "a live run's databases went"

    try:
        probe = wait_inner(proc, tmp_path)
        token = probe["token"]
        live = databases(password_server, f"pytest\\_atlas\\_{token}\\_%")
        assert probe["database"] in live
        holders = wait_holders(password_server, token, set(), "the run does not hold its lock twice")
        with password_server.connect() as admin:
            # one backend of the lock is killed and cannot come back (its database refuses connections)
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(%s)", (min(holders),))
            second_job()
            # then both, for 3 s
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(holders),))
            time.sleep(3)
            assert lock_holders(password_server, token) == set()
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
        wait_holders(password_server, token, holders, "the run gave up its lock while it still ran")
        second_job()
        with psycopg.connect(probe["dsn"]) as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        (tmp_path / "probe.release").write_text("")
        out = proc.communicate(timeout=120)[0].decode()
        assert "1 passed" in out, out
        assert "this run's lock on the server was lost for" in out, out
    finally:
        stop_inner(proc)
        with password_server.connect() as admin:
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_leftovers_on_a_shared_server_are_judged_by_name_and_lock(
    pytester: pytest.Pytester, password_server: PasswordServer
) -> None:
    """Run as a role with CREATEDB but no superuser, as on a shared CI server."""
    with password_server.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS atlas_ci")
        admin.execute("CREATE ROLE atlas_ci LOGIN CREATEDB PASSWORD 'ci-pass'")
        # a dead run of another role (labelled the old way, as if by a dead process of this host)
        admin.execute("CREATE DATABASE pytest_atlas_0e0e0e0e_0001")
        label = json.dumps({"pytest-atlas": {"host": os.uname().nodename, "pid": 2**22 - 5, "start": "1"}})
        admin.execute(f"COMMENT ON DATABASE pytest_atlas_0e0e0e0e_0001 IS '{label}'")
    ci = PasswordServer(password_server.port, "ci-pass")
    holder = psycopg.connect(ci.url("atlas_ci"), autocommit=True)
    try:
        with psycopg.connect(ci.url("atlas_ci"), autocommit=True) as conn:
            for name in (
                "pytest_atlas_deadbeef_0001",  # a dead run's clone, killed before any label: reaped
                "pytest_atlas_deadbeef_tpl_0a1b2c3d4e",  # its template: reaped
                "pytest_atlas_cafebabe_0001",  # kept with --atlas-keep-db: left
                "pytest_atlas_0a1b2c3d_0001",  # a live run's (its lock is held below): left
                "pytest_atlas_users_own",  # not a run's name: left
            ):
                conn.execute(f"CREATE DATABASE {name}")
            kept = json.dumps({"pytest-atlas": {"token": "cafebabe", "keep": True}})
            conn.execute(f"COMMENT ON DATABASE pytest_atlas_cafebabe_0001 IS '{kept}'")
        holder.execute("SELECT pg_advisory_lock(%s, %s)", token_key("0a1b2c3d"))
        pytester.makepyfile("def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
        result = pytester.runpytest("--atlas-dsn", ci.url("atlas_ci"))
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*pytest-atlas: clean-up*",
                "left 1 database(s) of role 'postgres' alone (not ours to drop): pytest_atlas_0e0e0e0e_0001",
                "dropped 2 database(s) left by dead run deadbeef",
            ]
        )
        assert databases(password_server) == {
            "pytest_atlas_0e0e0e0e_0001",
            "pytest_atlas_cafebabe_0001",
            "pytest_atlas_0a1b2c3d_0001",
            "pytest_atlas_users_own",
        }
    finally:
        holder.close()
        with password_server.connect() as admin:
            for name in databases(password_server):
                admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute("DROP ROLE IF EXISTS atlas_ci")


def test_nothing_but_dead_run_folders_is_reaped(tmp_path: Path, own_base: list[str]) -> None:
    """In the base folder, only this user's run folders whose lock is free go; a folder being
    created (young, its lock maybe not held yet), a link, and everything else stay."""
    base = choose_base(Path(own_base[1]), server_account(None)).path
    (base / "run-0badf00d" / "pgdata").mkdir(parents=True)
    (base / "run-0badf00d" / "lock").write_bytes(b"")  # a dead run: nobody holds its lock
    (base / "dsn-0badcafe").mkdir()  # a dead run's passfile folder, killed before its lock file
    live = RunDir.create(base, server_account(None), keep=False)
    kept = RunDir.create(base, server_account(None), keep=True)
    kept.release()  # its run ended: --atlas-keep-db keeps it
    (base / ".new-0000beef").mkdir()  # a run creating its folder right now
    (base / "notes").mkdir()  # not a run folder
    (base / "run-link").symlink_to(tmp_path)
    try:
        reaped = reap_stale(base)
        assert sorted(Path(line).name for line in reaped) == ["run-0badf00d"]
        names = {p.name for p in base.iterdir()}
        assert {live.path.name, kept.path.name, "dsn-0badcafe", ".new-0000beef", "notes", "run-link"} <= names
        assert tmp_path.exists()
        old = time.time() - 3600
        os.utime(base / ".new-0000beef", (old, old))  # a run killed while creating its folder, long ago
        assert [Path(line).name for line in reap_stale(base)] == [".new-0000beef"]
    finally:
        live.remove()


def test_a_job_whose_dsn_names_another_database_leaves_a_live_run_alone(
    pytester: pytest.Pytester, tmp_path: Path, password_server: PasswordServer
) -> None:
    """An advisory lock belongs to the database its session is in: a second job whose DSN names
    another database of the same server (same role) must still see the first job's lock."""
    with password_server.connect() as admin:
        admin.execute("DROP DATABASE IF EXISTS atlas_other_maintenance")
        admin.execute("CREATE DATABASE atlas_other_maintenance")
    proc = launch_inner(pytester, tmp_path, env={"ATLAS_TEST_DSN": password_server.url()})
    try:
        probe = wait_inner(proc, tmp_path)
        live = databases(password_server, f"pytest\\_atlas\\_{probe['token']}\\_%")
        assert probe["database"] in live
        pytester.makepyfile(test_second="def test_second(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
        other = password_server.url(dbname="atlas_other_maintenance")
        result = pytester.runpytest_subprocess("test_second.py", "-p", "no:cacheprovider", "--atlas-dsn", other)
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line(f"*dead run {probe['token']}*")
        assert live <= databases(password_server, f"pytest\\_atlas\\_{probe['token']}\\_%")  # (and spare clones)
        (tmp_path / "probe.release").write_text("")
        out = proc.communicate(timeout=120)[0].decode()
        assert "1 passed" in out, out
    finally:
        stop_inner(proc)
        with password_server.connect() as admin:
            admin.execute("DROP DATABASE IF EXISTS atlas_other_maintenance WITH (FORCE)")


def test_a_live_run_whose_lock_connections_are_all_gone_is_not_taken_for_dead(
    pytester: pytest.Pytester, tmp_path: Path, password_server: PasswordServer
) -> None:
    """Both connections that hold a live run's lock are killed at once and cannot come back (the
    database its DSN names refuses connections) while a second job starts: the lock is free, but
    the run wrote the server's time on the server moments ago (its heartbeat), so the second job
    leaves its databases alone and says when it would take the run for dead. The run takes its lock
    again and goes on. Once it is killed (its heartbeat stops), a job leaves it alone as long as it
    is recent, and drops its databases once it has been silent for longer than the grace (set here
    to one hour, then to none)."""
    db = "atlas_lock_all_gone"
    with password_server.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    pytester.makeconftest(GRACE_CONFTEST)
    proc = launch_inner(pytester, tmp_path, env={"ATLAS_TEST_DSN": password_server.url(dbname=db)})
    token = ""
    try:
        probe = wait_inner(proc, tmp_path)
        token = probe["token"]
        pattern = f"pytest\\_atlas\\_{token}\\_%"
        live = databases(password_server, pattern)
        assert probe["database"] in live
        holders = wait_holders(password_server, token, set(), "the run does not hold its lock twice")
        beat = next_heartbeat(password_server, token, heartbeat(password_server, token))  # it goes on
        with password_server.connect() as admin:
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(holders),))
            wait_free(password_server, token)  # both are gone, and neither can come back
            beat = heartbeat(password_server, token)
            out = later_job(pytester, password_server.url(), grace=3600)
            assert f"dead run {token}" not in out, out
            assert live <= databases(password_server, pattern), "a live run's databases went"
            assert f"database(s) of run {token} alone: its lock is free, but it was alive " in out, out
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
        wait_holders(password_server, token, holders, "the run did not take its lock again")
        next_heartbeat(password_server, token, beat)  # and its heartbeat goes on
        with psycopg.connect(probe["dsn"]) as conn:  # the live run's database, as it was
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        # the run is killed: nothing cleans up, its heartbeat stops
        stop_inner(proc)
        wait_free(password_server, token)
        out = later_job(pytester, password_server.url(), grace=3600)
        assert f"dead run {token}" not in out, out
        assert live <= databases(password_server, pattern), "a recently silent run's databases went"
        note = next(line for line in out.splitlines() if f"of run {token} alone" in line)
        assert "taken for dead from 20" in note and " UTC (server time) on, if it stays silent" in note, note
        left = databases(password_server, pattern)
        out = later_job(pytester, password_server.url(), grace=0)
        assert f"dropped {len(left)} database(s) left by dead run {token}" in out, out
        assert databases(password_server, pattern) == set()
    finally:
        stop_inner(proc)
        with password_server.connect() as admin:
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            for name in databases(password_server, f"pytest\\_atlas\\_{token}\\_%") if token else ():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_live_run_keeps_its_databases_across_a_server_restart(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The server restarts (every session ends, the lock with them) and the run cannot connect again
    at once (the database its DSN names refuses connections): a job that starts meanwhile finds
    the lock free but the run's heartbeat on the server (it outlives the restart), and leaves the
    run's databases alone; the run takes its lock again and passes."""
    db = "atlas_lock_restart"
    pytester.makeconftest(GRACE_CONFTEST)
    with own_password_server() as server:
        with server.connect() as admin:
            admin.execute(f"CREATE DATABASE {db}")
        proc = launch_inner(pytester, tmp_path, env={"ATLAS_TEST_DSN": server.url(dbname=db)})
        try:
            probe = wait_inner(proc, tmp_path)
            token = probe["token"]
            pattern = f"pytest\\_atlas\\_{token}\\_%"
            live = databases(server, pattern)
            assert probe["database"] in live
            wait_holders(server, token, set(), "the run does not hold its lock twice")
            with server.connect() as admin:
                admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")
            server.restart()
            assert lock_holders(server, token) == set()
            out = later_job(pytester, server.url(), grace=3600)
            assert f"dead run {token}" not in out, out
            assert live <= databases(server, pattern), "a live run's databases went with the restart"
            with server.connect() as admin:
                admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
            wait_holders(server, token, set(), "the run did not take its lock again")
            with psycopg.connect(probe["dsn"]) as conn:
                assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            (tmp_path / "probe.release").write_text("")
            out = proc.communicate(timeout=120)[0].decode()
            assert "1 passed" in out, out
            assert databases(server, pattern) == set()  # (it dropped its own at its end)
        finally:
            stop_inner(proc)


def test_a_run_whose_databases_went_while_its_lock_was_lost_fails_clearly(
    pytester: pytest.Pytester, tmp_path: Path, password_server: PasswordServer
) -> None:
    """Every connection of a live run is cut and none can come back, and meanwhile its databases
    are dropped (as a job of an older version, which knows no heartbeat, would): once the run takes
    its lock again it finds its templates gone, and its next test fails saying so, not with a
    bare error about a missing template."""
    db = "atlas_lock_dropped"
    with password_server.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    pytester.makepyfile(test_zafter="def test_after(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    proc = launch_inner(pytester, tmp_path, "test_zafter.py", env={"ATLAS_TEST_DSN": password_server.url(dbname=db)})
    try:
        probe = wait_inner(proc, tmp_path)
        token = probe["token"]
        pattern = f"pytest\\_atlas\\_{token}\\_%"
        holders = wait_holders(password_server, token, set(), "the run does not hold its lock twice")
        with password_server.connect() as admin:
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )
            wait_free(password_server, token)
            for name in sorted(databases(password_server, pattern), key=lambda name: "_tpl_" not in name):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            assert databases(password_server, pattern) == set()
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
        wait_holders(password_server, token, holders, "the run did not take its lock again")
        (tmp_path / "probe.release").write_text("")
        out = proc.communicate(timeout=120)[0].decode()
        assert "this run's databases on the server were dropped while it had lost its lock" in out, out
        assert "ERROR at setup of test_after" in out, out
        assert "another run took it for dead" in out, out
    finally:
        stop_inner(proc)
        with password_server.connect() as admin:
            admin.execute(f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def janitor(*args: str, grace: float | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_atlas ARGS``, which takes a run silent for ``grace`` s for dead."""
    code = "import runpy, sys\nimport pytest_atlas.db._external as external\n"
    if grace is not None:
        code += f"external.HEARTBEAT_GRACE = {grace!r}\n"
    code += "sys.argv = ['pytest_atlas', *sys.argv[1:]]\nrunpy.run_module('pytest_atlas', run_name='__main__')\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, timeout=120)


def test_kept_databases_on_a_shared_server_go_once_their_run_is_over(
    pytester: pytest.Pytester, tmp_path: Path, own_base: list[str], password_server: PasswordServer
) -> None:
    """With --atlas-keep-db on an existing server: a run that ended says so in its label, and
    ``kept --remove --dsn`` drops what it kept at once; a run that was killed (its lock free, its
    heartbeat recent) is still listed as going and left alone, with when it will not be, until
    its heartbeat is older than the grace (none, the second time)."""
    url = password_server.url()
    proc = launch_inner(pytester, tmp_path, "--atlas-keep-db", *own_base, env={"ATLAS_TEST_DSN": url})
    try:
        killed = wait_inner(proc, tmp_path)["token"]
    finally:
        stop_inner(proc)
    wait_free(password_server, killed)
    pytester.makepyfile(test_ended="def test_ended(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    env = {**os.environ, "ATLAS_TEST_DSN": url}
    ended_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ended.py", "--atlas-keep-db", *own_base],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "1 passed" in ended_run.stdout, ended_run.stdout + ended_run.stderr
    tokens = {killed}
    try:
        listed = janitor("kept", "--dsn", url)
        rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("pytest_atlas_")]
        tokens |= {row[1] for row in rows}
        [ended] = tokens - {killed}
        states = {(row[1], row[2]) for row in rows}
        assert states == {(killed, "going"), (ended, "ended")}, listed.stdout
        removed = janitor("kept", "--remove", "--dsn", url)
        assert removed.returncode == 1, removed.stdout + removed.stderr
        lines = removed.stdout.splitlines()
        assert databases(password_server, f"pytest\\_atlas\\_{ended}\\_%") == set()
        assert {line.split()[0] for line in lines} == {"dropped", "left"}
        left = [line for line in lines if line.startswith("left ")]
        assert left and all(f"pytest_atlas_{killed}_" in line for line in left), lines
        assert all("its lock is free, but it was alive" in line and "(server time)" in line for line in left), lines
        assert databases(password_server, f"pytest\\_atlas\\_{killed}\\_%")
        removed = janitor("kept", "--remove", "--dsn", url, grace=0.0)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert sorted(line.split()[1] for line in removed.stdout.splitlines()) == sorted(
            line.split()[1] for line in left
        )
        # (what was not labelled kept yet, a clone being made when the run was killed, is reaped by a run)
        assert f" {killed} " not in janitor("kept", "--dsn", url).stdout
    finally:
        with password_server.connect() as admin:
            for token in tokens:
                for name in databases(password_server, f"pytest\\_atlas\\_{token}\\_%"):
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
