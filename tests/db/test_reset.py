"""Reset isolation: a used database is reused only when it is provably equal to a fresh clone.

Each case does something in the first test's database, gives it back, and takes the next database
from a pool that keeps none ahead (so the next one is the reset database, or the fresh clone that
replaced it). The next database must then have the full fingerprint of a fresh clone of the
template (catalog, data, sequences, database settings), and be the reused one exactly when the
case is one a reset can undo.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_atlas import AtlasPostgres
from pytest_atlas.db import ClonePool
from pytest_atlas.db._reset import choose_isolation
from pytest_atlas.fixtures._state import run_state
from pytest_atlas.schema import default_sources
from tests.db.conftest import discard_kept

Action = Callable[[AtlasPostgres, str], Any]

#: pg_class columns that vacuum and row counts move without changing what a test can see
_VOLATILE = {"pg_class": ["relpages", "reltuples", "relallvisible", "relfrozenxid", "relminmxid"]}


def fingerprint(server: AtlasPostgres, name: str) -> dict[str, Any]:
    """Everything a test can read of a database through SQL, as digests: every catalog table of the
    database, every table's rows, every sequence's state, and the database's own settings."""
    found: dict[str, Any] = {}
    with server.connect(name, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND NOT c.relisshared AND n.nspname NOT LIKE 'pg\\_temp%%' "
            "AND n.nspname NOT LIKE 'pg\\_toast%%' AND c.relname NOT IN ('pg_statistic', 'pg_statistic_ext_data') "
            "AND (c.relkind = 'r' OR c.relispopulated) ORDER BY 1, 2"
        ).fetchall()
        for nsp, rel in tables:
            drop = sql.Literal(_VOLATILE.get(rel, []))
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(string_agg(j, '|' ORDER BY j)) FROM "
                    "(SELECT (to_jsonb(t) - {}::text[])::text AS j FROM {} t) s"
                ).format(drop, sql.Identifier(nsp, rel))
            ).fetchone()
            found[f"{nsp}.{rel}"] = row
        for nsp, rel in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' ORDER BY 1, 2"
        ).fetchall():
            found[f"sequence {nsp}.{rel}"] = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(nsp, rel))
            ).fetchone()
        found["database"] = conn.execute(
            "SELECT to_jsonb(d) - ARRAY['oid', 'datname', 'datfrozenxid', 'datminmxid'],"
            " (SELECT array_agg(setconfig) FROM pg_db_role_setting WHERE setdatabase = d.oid),"
            " (SELECT array_agg(description) FROM pg_shdescription WHERE objoid = d.oid)"
            " FROM pg_database d WHERE datname = current_database()"
        ).fetchone()
    return found


def database_oid(server: AtlasPostgres, name: str) -> int:
    with server.connect(autocommit=True) as admin:
        row = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


class Scenario:
    """A reset pool on a template, and a fresh clone of that template to compare with."""

    def __init__(self, server: AtlasPostgres, template: str) -> None:
        self.server = server
        self.template = template
        self.pool = ClonePool(server, template, f"rst{secrets.token_hex(3)}_", ahead=0, reset=True)
        probe = f"rstprobe_{secrets.token_hex(3)}"
        with server.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(probe), sql.Identifier(template))
            )
        try:
            self.pristine = fingerprint(server, probe)
        finally:
            with server.connect(autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(probe)))

    def run(self, action: Action) -> tuple[bool, str]:
        """Do ``action`` in a first database, give it back, take the next: (reused, next's name)."""
        first = self.pool.acquire()
        oid = database_oid(self.server, first)
        action(self.server, first)
        self.pool.release(first)
        following = self.pool.acquire()
        try:
            assert fingerprint(self.server, following) == self.pristine
            return database_oid(self.server, following) == oid, following
        finally:
            self.pool.release(following)

    def close(self) -> None:
        self.pool.close(drop=True)


@pytest.fixture(scope="module")
def scenario(atlas_postgres: AtlasPostgres, pytestconfig: pytest.Config) -> Iterator[Scenario]:
    state = run_state(pytestconfig)
    template = state.manager().pool(state.sources()).template
    made = Scenario(atlas_postgres, template)
    yield made
    made.close()


def sql_action(*statements: str, autocommit: bool = False) -> Action:
    def act(server: AtlasPostgres, name: str) -> None:
        with server.connect(name, autocommit=autocommit) as conn:
            for statement in statements:
                conn.execute(statement)
            if not autocommit:
                conn.commit()

    return act


GRAPH = (
    "INSERT INTO sessions (task) VALUES ('a'), ('b')",
    "INSERT INTO plans (session_id, plan) SELECT id, '{}' FROM sessions",
)

RESETTABLE: dict[str, Action] = {
    "nothing": sql_action(),
    "rows in several tables, with foreign keys": sql_action(*GRAPH),
    "rows rolled back": sql_action("BEGIN", *GRAPH, "ROLLBACK", autocommit=True),
    "a sequence moved by hand": sql_action(
        "SELECT setval(pg_get_serial_sequence('sessions', 'id'), 4242)",
        "SELECT nextval(pg_get_serial_sequence('trajectory_events', 'id'))",
    ),
    "rows written with triggers off (session_replication_role = replica)": sql_action(
        "SET session_replication_role = replica", *GRAPH
    ),
    "rows deleted and updated after insert": sql_action(*GRAPH, "UPDATE sessions SET task = 'z'", "DELETE FROM plans"),
    "many rows (the table spans pages)": sql_action(
        "INSERT INTO sessions (task) SELECT repeat('x', 500) FROM generate_series(1, 2000)"
    ),
}


def _role_action(server: AtlasPostgres, name: str) -> None:
    role = f"rst_{secrets.token_hex(3)}"
    with server.connect(name, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    _ROLES.append(role)


_ROLES: list[str] = []


def _left_open(server: AtlasPostgres, name: str) -> None:
    conn = server.connect(name)
    conn.execute("INSERT INTO sessions (task) VALUES ('open')")
    _LEFT_OPEN.append(conn)  # never closed by the test: the pool must not wait for it forever


_LEFT_OPEN: list[psycopg.Connection[Any]] = []


def _large_object(server: AtlasPostgres, name: str) -> None:
    with server.connect(name) as conn:
        conn.execute("SELECT lo_create(0)")
        conn.commit()


def _database_setting(server: AtlasPostgres, name: str) -> None:
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} SET work_mem = '7MB'").format(sql.Identifier(name)))


def _connection_limit(server: AtlasPostgres, name: str) -> None:
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 50").format(sql.Identifier(name)))


def _database_comment(server: AtlasPostgres, name: str) -> None:
    with server.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS 'touched'").format(sql.Identifier(name)))


def _subscription(server: AtlasPostgres, name: str) -> None:
    """A subscription lives in a shared catalog (pg_subscription), outside the database's files."""
    with server.connect(name, autocommit=True) as conn:
        conn.execute(
            "CREATE SUBSCRIPTION rst_sub CONNECTION 'host=/nonexistent dbname=x' PUBLICATION p"
            " WITH (connect = false, enabled = false, create_slot = false, slot_name = NONE)"
        )


def _role_setting(server: AtlasPostgres, name: str) -> None:
    """ALTER ROLE ... SET for every database: a row of pg_db_role_setting with setdatabase 0."""
    with server.connect(name, autocommit=True) as conn:
        conn.execute("ALTER ROLE CURRENT_USER SET lock_timeout = '4321ms'")
        _ROLE_SETTINGS.append(str(conn.info.user))


_ROLE_SETTINGS: list[str] = []


FALLBACK: dict[str, Action] = {
    "CREATE TABLE": sql_action("CREATE TABLE extra (x int)"),
    "ALTER TABLE ADD COLUMN": sql_action("ALTER TABLE sessions ADD COLUMN extra int"),
    "CREATE INDEX": sql_action("CREATE INDEX ON sessions (task)"),
    "DROP TABLE (catalog rows only deleted)": sql_action("DROP TABLE learning_registry"),
    "CREATE FUNCTION": sql_action("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    "COMMENT ON TABLE": sql_action("COMMENT ON TABLE sessions IS 'x'"),
    "GRANT": sql_action("GRANT SELECT ON sessions TO PUBLIC"),
    "a temporary table": sql_action("CREATE TEMP TABLE t (x int)"),
    "TRUNCATE": sql_action(*GRAPH, "TRUNCATE sessions, plans RESTART IDENTITY CASCADE"),
    "ALTER SEQUENCE": sql_action("ALTER SEQUENCE sessions_id_seq INCREMENT BY 5"),
    "an extension dropped": sql_action("DROP EXTENSION plpgsql"),
    "a catalog row written directly": sql_action(
        "UPDATE pg_catalog.pg_attribute SET attstattarget = 7 WHERE attrelid = 'sessions'::regclass AND attname = 'task'"
    ),
    "a large object": _large_object,
    "a role created": _role_action,
    "a role's setting in every database (ALTER ROLE SET)": _role_setting,
    "a subscription": _subscription,
    "a connection left open": _left_open,
    "ALTER DATABASE SET": _database_setting,
    "ALTER DATABASE CONNECTION LIMIT": _connection_limit,
    "COMMENT ON DATABASE": _database_comment,
}


@pytest.mark.parametrize("case", list(RESETTABLE))
def test_what_a_reset_undoes_reuses_the_database(scenario: Scenario, case: str) -> None:
    reused, _ = scenario.run(RESETTABLE[case])
    assert reused, f"{case}: cloned afresh: {scenario.pool.resetter.fallbacks if scenario.pool.resetter else None}"


@pytest.mark.parametrize("case", list(FALLBACK))
def test_what_a_reset_cannot_undo_gives_a_fresh_clone(scenario: Scenario, case: str) -> None:
    reused, _ = scenario.run(FALLBACK[case])
    assert not reused, f"{case}: the used database was handed out again"
    # the summary names what the test did, not an error of the reset
    assert scenario.pool.resetter is not None
    assert not [reason for reason in scenario.pool.resetter.fallbacks if reason.startswith("an error")], case
    for conn in _LEFT_OPEN:
        # the fresh clone replaced it: the connection left open was ended with its database
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    _LEFT_OPEN.clear()
    with scenario.server.connect(autocommit=True) as admin:
        for role in _ROLES:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        for role in _ROLE_SETTINGS:
            admin.execute(sql.SQL("ALTER ROLE {} RESET lock_timeout").format(sql.Identifier(role)))
    _ROLES.clear()
    _ROLE_SETTINGS.clear()


def test_a_reset_database_has_a_new_name(scenario: Scenario) -> None:
    """Code that kept the previous test's DSN cannot reach the next test's database."""
    first = scenario.pool.acquire()
    scenario.pool.release(first)
    following = scenario.pool.acquire()
    try:
        assert following != first
        with pytest.raises(Exception, match="does not exist"):
            scenario.server.connect(first).close()
    finally:
        scenario.pool.release(following)


def test_a_role_that_existed_before_may_write(scenario: Scenario) -> None:
    """Rows written by another role (with a right it had before the test) are reset too."""
    role = f"rst_{secrets.token_hex(3)}"
    with scenario.server.connect(autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} IN ROLE pg_write_all_data, pg_read_all_data").format(sql.Identifier(role))
        )
    try:
        scenario.run(sql_action())  # the role's creation itself is a fallback; the next one is fresh
        reused, _ = scenario.run(sql_action(sql.SQL("SET ROLE {}").format(sql.Identifier(role)).as_string(), *GRAPH))
        assert reused
    finally:
        with scenario.server.connect(autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# -- a template with seeded rows, a materialized view and a delete trigger that always fires --------

SEED = """
CREATE TABLE labels (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO labels (name) VALUES ('good'), ('bad');
CREATE MATERIALIZED VIEW session_count AS SELECT 1 AS one, count(*) AS n FROM sessions;
CREATE UNIQUE INDEX ON session_count (one);
CREATE TABLE audit (what text);
CREATE TABLE watched (x int);
CREATE FUNCTION note_delete() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit VALUES ('deleted'); RETURN NULL; END $$;
CREATE TRIGGER note_delete AFTER DELETE ON watched FOR EACH STATEMENT EXECUTE FUNCTION note_delete();
ALTER TABLE watched ENABLE ALWAYS TRIGGER note_delete;
"""


@pytest.fixture(scope="module")
def seeded(
    atlas_postgres: AtlasPostgres, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    seed = tmp_path_factory.mktemp("seed") / "seed.sql"
    seed.write_text(SEED)
    state = run_state(pytestconfig)
    sources = default_sources(state.settings.schema, (*state.settings.extra_sql, Path(seed)))
    made = Scenario(atlas_postgres, state.manager().pool(sources).template)
    yield made
    made.close()


SEEDED_RESETTABLE: dict[str, Action] = {
    "seeded rows only read": sql_action("SELECT * FROM labels"),
    "rows in a table empty in the template": sql_action(*GRAPH),
    "a seeded table's sequence moved": sql_action("SELECT nextval('labels_id_seq')"),
}

SEEDED_FALLBACK: dict[str, Action] = {
    "a seeded row updated": sql_action("UPDATE labels SET name = 'ok' WHERE name = 'good'"),
    "a seeded row deleted": sql_action("DELETE FROM labels WHERE name = 'bad'"),
    "a row added to a seeded table": sql_action("INSERT INTO labels (name) VALUES ('new')"),
    "a seeded row deleted and put back as it was": sql_action(
        "DELETE FROM labels WHERE id = 1", "INSERT INTO labels (id, name) VALUES (1, 'good')"
    ),
    "a materialized view refreshed concurrently": sql_action(
        *GRAPH, "REFRESH MATERIALIZED VIEW CONCURRENTLY session_count"
    ),
    "rows whose deletion fires an ALWAYS trigger": sql_action("INSERT INTO watched VALUES (1)"),
}


@pytest.mark.parametrize("case", list(SEEDED_RESETTABLE))
def test_seeded_template_reset(seeded: Scenario, case: str) -> None:
    reused, _ = seeded.run(SEEDED_RESETTABLE[case])
    assert reused


@pytest.mark.parametrize("case", list(SEEDED_FALLBACK))
def test_seeded_template_fallback(seeded: Scenario, case: str) -> None:
    reused, _ = seeded.run(SEEDED_FALLBACK[case])
    assert not reused


# -- choosing the isolation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "tmpfs", "keep", "strategy"),
    [
        ("auto", False, False, "reset"),
        ("auto", True, False, "clone"),
        ("auto", None, False, "reset"),
        ("auto", False, True, "clone"),
        ("reset", False, True, "clone"),
        ("clone", False, False, "clone"),
        ("reset", True, False, "reset"),
    ],
)
def test_the_isolation_is_chosen_from_the_settings(
    requested: str, tmpfs: bool | None, keep: bool, strategy: str
) -> None:
    assert choose_isolation(requested, tmpfs=tmpfs, keep=keep)[0] == strategy


def test_digest_helper_sees_a_change(scenario: Scenario) -> None:
    """The fingerprint is not blind: one row makes it differ from a fresh clone's."""
    name = scenario.pool.acquire()
    try:
        sql_action("INSERT INTO sessions (task) VALUES ('x')")(scenario.server, name)
        assert fingerprint(scenario.server, name) != scenario.pristine
    finally:
        scenario.pool.release(name)


# -- the option, the header and a run as users have it -----------------------------------------------

PLUGIN_RUN = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_rows(n, atlas_db):
    atlas_db.execute("INSERT INTO sessions (task) VALUES ('x')")
    assert atlas_db.execute("SELECT count(*), max(id) FROM sessions").fetchone() == (1, 1)
    atlas_db.commit()

def test_ddl(atlas_db):
    atlas_db.execute("CREATE TABLE leftover (x int)")
    atlas_db.commit()

@pytest.mark.parametrize("n", range(3))
def test_after(n, atlas_db, atlas_dsn):
    assert atlas_db.execute("SELECT to_regclass('leftover')").fetchone() == (None,)
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
"""


@pytest.mark.parametrize(
    ("args", "ini", "line"),
    [
        ([], "", "atlas: isolation: clone: a fresh clone per test (auto: data in memory, *)"),
        (["--atlas-isolation", "reset"], "", "atlas: isolation: reset: reset and reuse when proved exact, *"),
        (
            ["--atlas-isolation", "clone"],
            "",
            "atlas: isolation: clone: a fresh clone per test (--atlas-isolation=clone)",
        ),
        ([], "atlas_isolation = clone", "atlas: isolation: clone: *"),
        (["--atlas-isolation=reset", "--atlas-keep-db"], "", "atlas: isolation: clone: --atlas-keep-db keeps *"),
    ],
)
def test_the_header_shows_the_isolation(
    pytester: pytest.Pytester, own_base: list[str], args: list[str], ini: str, line: str
) -> None:
    pytester.makepyfile(PLUGIN_RUN)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    try:
        result = pytester.runpytest("-p", "no:randomly", *own_base, *args)
        result.stdout.fnmatch_lines([line])
        result.assert_outcomes(passed=10)
    finally:  # a kept server of this test's own must not stay behind, running in memory
        for run_dir in Path(own_base[1]).glob("pytest-atlas-v2-*/run-*"):
            discard_kept(run_dir)


def test_a_reset_run_says_what_it_could_not_reset(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PLUGIN_RUN)
    result = pytester.runpytest("-p", "no:randomly", "--atlas-isolation", "reset")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        ["isolation: * database(s) reset for the next test, 1 replaced by a fresh clone instead (the catalog changed*"]
    )


STREAM_RUN = """
import pytest

LEFT_OPEN = []

@pytest.mark.parametrize("n", range(16))
def test_each_starts_from_the_template(n, atlas_db, atlas_database):
    assert atlas_db.execute("SELECT to_regclass('leftover'), count(*) FROM sessions").fetchone() == (None, 0)
    assert atlas_db.execute("INSERT INTO sessions (task) VALUES ('x') RETURNING id").fetchone() == (1,)
    atlas_db.commit()
    if n % 8 == 3:
        atlas_db.execute("CREATE TABLE leftover (x int)")
        atlas_db.commit()
    if n % 8 == 6:
        # a connection the test never closes, still able to write when the reset would begin
        other = atlas_database.connect(autocommit=True)
        other.execute("INSERT INTO sessions (task) VALUES ('left open')")
        LEFT_OPEN.append(other)
"""


def test_two_runs_of_two_workers_reset_at_once(pytester: pytest.Pytester, own_base: list[str]) -> None:
    """Two runs at once, each with two workers whose pools reset two databases at a time: every test
    starts from the template's state, and what a reset cannot undo (DDL, a connection left open)
    gives the next test a fresh clone."""
    pytester.makepyfile(STREAM_RUN)
    args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2", "--atlas-isolation", "reset", *own_base]
    runs = [pytester.popen([sys.executable, "-m", "pytest", *args], stdin=subprocess.DEVNULL) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        text = out.decode()
        assert run.returncode == 0, text + err.decode()
        assert "16 passed" in text
        assert "database(s) reset for the next test" in text
        assert "the catalog changed" in text
        assert "a connection to the database was left open" in text


def test_a_bad_isolation_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--atlas-isolation", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid value for --atlas-isolation: 'fast': expected one of auto, clone, reset*"])


@pytest.fixture(scope="module")
def prepared_server() -> Iterator[AtlasPostgres]:
    """A server of this module's own that allows prepared transactions (started ones do not)."""
    from pytest_atlas._config import AtlasSettings
    from pytest_atlas.db import plan_server, start_server
    from pytest_atlas.db._cache import default_cache_dir

    server = start_server(plan_server(AtlasSettings(cache_dir=default_cache_dir()), default_sources()))
    try:
        with server.connect(autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET max_prepared_transactions = 4")
        cluster = server._cluster
        assert cluster is not None
        cluster.stop(clean=True)
        cluster.start(cluster.port)
        yield server
    finally:
        server.stop()


def test_a_prepared_transaction_gives_a_fresh_clone(prepared_server: AtlasPostgres) -> None:
    assert prepared_server.template is not None
    made = Scenario(prepared_server, prepared_server.template)
    try:
        first = made.pool.acquire()
        with prepared_server.connect(first, autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO sessions (task) VALUES ('prepared')")
            conn.execute("PREPARE TRANSACTION 'left-behind'")
        made.pool.release(first)
        following = made.pool.acquire()
        assert fingerprint(prepared_server, following) == made.pristine
        made.pool.release(following)
        assert made.pool.resetter is not None
        assert made.pool.resetter.fallbacks == {"a prepared transaction was left in the database": 1}
    finally:
        made.close()
    with prepared_server.connect(autocommit=True) as admin:
        assert admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)
        # the database was dropped, not left behind
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'rst%'").fetchone() == (0,)
    assert not [note for note in made.pool.notes if note.startswith("left")]


@pytest.fixture
def crashing_server() -> Iterator[AtlasPostgres]:
    """A server of this test's own: the test crashes it."""
    from pytest_atlas._config import AtlasSettings
    from pytest_atlas.db import plan_server, start_server
    from pytest_atlas.db._cache import default_cache_dir

    server = start_server(plan_server(AtlasSettings(cache_dir=default_cache_dir()), default_sources()))
    try:
        yield server
    finally:
        server.stop()


def _ended(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server ends ``conn`` within 10 s."""
    for _ in range(200):
        try:
            conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return True
        time.sleep(0.05)
    return False


def test_a_reset_survives_a_crash_right_after_it(crashing_server: AtlasPostgres) -> None:
    """A started server commits asynchronously (synchronous_commit = off): a crash loses the last
    commits. The reset's own commits must not be among them, or the database handed out would be
    gone (its rename lost) or hold the previous test's rows again (its deletes lost)."""
    assert crashing_server.template is not None
    made = Scenario(crashing_server, crashing_server.template)
    try:
        first = made.pool.acquire()
        sql_action(*GRAPH)(crashing_server, first)
        made.pool.release(first)
        following = made.pool.acquire()  # reset a moment ago
        canary = crashing_server.connect(autocommit=True)
        victim = crashing_server.connect(autocommit=True)
        os.kill(victim.info.backend_pid, signal.SIGKILL)  # the server restarts: crash recovery
        victim.close()
        assert _ended(canary), "the server did not restart"  # every backend is ended, then WAL replayed
        canary.close()
        assert fingerprint(crashing_server, following) == made.pristine
        made.pool.release(following)
    finally:
        made.close()
