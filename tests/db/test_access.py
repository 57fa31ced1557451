"""Who can reach a server the plugin starts: the run itself, through every driver users bring, and
nobody else: another account can neither connect (socket or TCP) nor read the data, cache, log or
passfile, and the server's own account cannot redirect what root writes."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import atlas.runtime.storage.database  # noqa: F401
import pytest

from tests.db.conftest import psql, run_as, server_account_name, start_inner, stop_inner

DRIVERS = """
import asyncio
from urllib.parse import urlsplit

import psycopg
import pytest


def test_the_dsn_has_no_secret(atlas_dsn, atlas_postgres):
    assert urlsplit(atlas_dsn).password is None
    if atlas_postgres.tcp:
        assert urlsplit(atlas_dsn).hostname == "127.0.0.1" and "passfile=" in atlas_dsn
    else:
        assert "host=/" in atlas_dsn and "passfile" not in atlas_dsn


def test_psycopg(atlas_dsn):
    with psycopg.connect(atlas_dsn) as conn:
        conn.execute("INSERT INTO sessions (task) VALUES ('psycopg')")
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)


def test_asyncpg(atlas_dsn):
    import asyncpg

    async def main():
        conn = await asyncpg.connect(atlas_dsn)
        try:
            await conn.execute("INSERT INTO sessions (task) VALUES ('asyncpg')")
            return await conn.fetchval("SELECT count(*) FROM sessions")
        finally:
            await conn.close()

    assert asyncio.run(main()) == 1


def test_sqlalchemy(atlas_dsn):
    import sqlalchemy

    engine = sqlalchemy.create_engine(atlas_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO sessions (task) VALUES ('sqlalchemy')"))
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM sessions")).scalar() == 1
    engine.dispose()


def test_sqlalchemy_asyncio(atlas_dsn):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main():
        engine = create_async_engine(atlas_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO sessions (task) VALUES ('sqlalchemy asyncpg')"))
            count = (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar()
        await engine.dispose()
        return count

    assert asyncio.run(main()) == 1


def test_atlas_database(atlas_dsn, atlas_db):
    from atlas.config.models import StorageConfig
    from atlas.runtime.storage.database import Database

    async def main():
        # apply_schema_on_connect=False: the arc-atlas 0.1.16 wheel lacks its own schema.sql
        db = Database(StorageConfig(database_url=atlas_dsn, apply_schema_on_connect=False))
        await db.connect()
        try:
            session_id = await db.create_session("through Atlas", {"learning_key": "k"})
            await db.finalize_session(session_id, "done", "succeeded")
            return session_id, await db.fetch_session(session_id)
        finally:
            await db.disconnect()

    session_id, row = asyncio.run(main())
    assert row["status"] == "succeeded"
    assert atlas_db.execute("SELECT task FROM sessions WHERE id = %s", (session_id,)).fetchone() == ("through Atlas",)
"""


# Atlas is imported above, in this process, on purpose: an inner in-process run that imports the
# ``atlas`` package first leaves later inner runs of the process without the ``atlas`` plugin (the
# entry point and Atlas's package share that name, and pytester drops the modules a run imported).
@pytest.mark.parametrize("mode", ["socket", "tcp"])
def test_every_driver_connects_with_atlas_dsn(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(DRIVERS)
    args = ["--atlas-tcp"] if mode == "tcp" else []
    result = pytester.runpytest("-p", "no:randomly", *args)
    result.assert_outcomes(passed=6)
    if mode == "tcp":
        result.stdout.fnmatch_lines(["atlas: access: unix socket (peer login for *) and 127.0.0.1:a free port*"])
    else:
        result.stdout.fnmatch_lines(["atlas: access: unix socket only, in a private folder (peer login for *"])


def test_roles_a_test_creates_log_in_with_their_password(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psycopg, pytest

        def test_app_role(atlas_db, atlas_postgres):
            atlas_db.execute("CREATE ROLE app_user LOGIN PASSWORD 'app-pw'")
            atlas_db.commit()
            try:
                conninfo = atlas_postgres.conninfo(atlas_db.info.dbname) + " user=app_user"
                with pytest.raises(psycopg.OperationalError, match="password"):
                    psycopg.connect(conninfo + " password=wrong")
                with psycopg.connect(conninfo + " password=app-pw") as conn:
                    assert conn.execute("SELECT current_user").fetchone() == ("app_user",)
            finally:
                atlas_db.execute("DROP ROLE app_user")
                atlas_db.commit()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_port_turns_tcp_on(pytester: pytest.Pytester) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pytester.makepyfile(
        f"""
        def test_port(atlas_postgres, atlas_db):
            assert atlas_postgres.tcp and atlas_postgres.port == {port}
            assert atlas_postgres.passfile is not None and atlas_postgres.passfile.stat().st_mode & 0o777 == 0o600
            assert atlas_db.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert atlas_db.execute("SELECT inet_server_port()").fetchone() == ({port},)
        """
    )
    pytester.runpytest("--atlas-port", str(port)).assert_outcomes(passed=1)


def may(account: str, *command: str) -> tuple[bool, str]:
    done = run_as(account, *command)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other accounts (CI runs as root)")
def test_another_account_cannot_reach_the_server_or_its_files(
    pytester: pytest.Pytester, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The attacker is 'nobody'; the server runs as 'postgres' (the plugin's choice as root)."""
    reachable = tmp_path_factory.mktemp("reachable")
    os.chmod(reachable, 0o755)
    for parent in reachable.parents:  # pytest's tmp folders are root-only: open the way to this one
        if parent == Path("/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)
    cache = reachable / "cache"
    proc, probe = start_inner(pytester, tmp_path, "--atlas-tcp", "--atlas-cache-dir", str(cache))
    try:
        run_dir = Path(probe["run_dir"])
        socket_dir, port = run_dir / "sock", probe["port"]
        assert probe["passfile"] and run_dir.exists()
        [entry] = [p for p in cache.iterdir() if p.is_dir()]
        hot = [p for p in Path(probe["data_dir"]).parents[1].glob("cache/*/*") if p.is_dir()]
        client = psql()
        as_me = f"host={socket_dir} port={port} user=postgres dbname=postgres"
        attempts = {
            "the socket": [client, "-w", "-X", as_me, "-c", "SELECT 1"],
            "TCP, no password": [client, "-w", "-X", f"host=127.0.0.1 port={port} user=postgres", "-c", "SELECT 1"],
            "TCP, the run's passfile": [
                client,
                "-w",
                "-X",
                f"host=127.0.0.1 port={port} user=postgres passfile={probe['passfile']}",
                "-c",
                "SELECT 1",
            ],
            "the passfile": ["cat", probe["passfile"]],
            "the log": ["cat", probe["log_file"]],
            "the data": ["ls", probe["data_dir"]],
            "the cache entry": ["ls", str(entry / "pgdata")],
            "the cache": ["ls", str(cache)],
            **{f"the hot tier {p.name}": ["ls", str(p)] for p in hot},
        }
        for what, command in attempts.items():
            ok, out = may("nobody", *command)
            assert not ok, f"'nobody' reached {what}: {out}"
        # the server's own account: it owns the data, but cannot read the passfile, change the access
        # rules, swap the log for a link that root would then append to, or touch the cache
        server = server_account_name()
        attacks = {
            "read the passfile": ["cat", probe["passfile"]],
            "edit pg_hba.conf": ["sh", "-c", f"echo 'local all all trust' >> {run_dir}/pg_hba.conf"],
            "swap the log": ["sh", "-c", f"rm -f {probe['log_file']} && ln -s /etc/shadow {probe['log_file']}"],
            "write to the cache": ["touch", str(entry / "pgdata" / "planted")],
            "write to the hot tier": [
                "sh",
                "-c",
                " ".join(f"touch {shlex.quote(str(p))}/planted" for p in hot) or "false",
            ],
        }
        for what, command in attacks.items():
            ok, out = may(server, *command)
            assert not ok, f"the server account could {what}: {out}"
        # and the run itself can (so the refusals above are the rules at work, not broken commands)
        for dsn in (probe["dsn"], as_me):
            done = subprocess.run(
                [client, "-w", "-X", "-At", dsn, "-c", "SELECT current_user"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.stdout.strip() == "postgres", done.stderr
    finally:
        stop_inner(proc)
