"""The database fixtures, used the way users use them: inner pytest runs through pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_each_test_gets_its_own_fresh_database(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_insert_and_commit(atlas_db, n):
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('t')")
            atlas_db.commit()
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_dsn_names_the_same_database_and_other_connections_see_commits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import psycopg

        def test_same_database(atlas_db, atlas_dsn, atlas_database):
            assert atlas_dsn.startswith("postgresql://")
            assert atlas_database.dsn == atlas_dsn
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('from fixture')")
            atlas_db.commit()
            with psycopg.connect(atlas_dsn) as other:
                assert other.execute("SELECT task FROM sessions").fetchall() == [("from fixture",)]
                assert other.execute("SELECT current_database()").fetchone()[0] == atlas_database.name

        def test_code_under_test_with_its_own_driver(atlas_dsn):
            import asyncpg

            async def main():
                conn = await asyncpg.connect(atlas_dsn)
                await conn.execute("INSERT INTO sessions (task) VALUES ('asyncpg')")
                value = await conn.fetchval("SELECT count(*) FROM sessions")
                await conn.close()
                return value

            assert asyncio.run(main()) == 1

        def test_left_open_connections_do_not_block_cleanup(atlas_dsn):
            global LEAKED
            LEAKED = psycopg.connect(atlas_dsn)  # never closed by the test
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_atlas_tx_is_rolled_back_and_forbids_commit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psycopg, pytest

        def test_a(atlas_tx):
            atlas_tx.execute("INSERT INTO sessions (task) VALUES ('a')")
            atlas_tx.execute("SET statement_timeout = 1234")
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (1,)

        def test_b_sees_nothing_of_a(atlas_tx):
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            assert atlas_tx.execute("SHOW statement_timeout").fetchone() == ("0",)

        def test_commit_raises(atlas_tx):
            with pytest.raises(psycopg.ProgrammingError, match="commit"):
                atlas_tx.commit()

        def test_failed_statement_does_not_poison_the_next_test(atlas_tx):
            with pytest.raises(psycopg.errors.UndefinedTable):
                atlas_tx.execute("SELECT * FROM no_such_table")

        def test_after_failure(atlas_tx):
            assert atlas_tx.execute("SELECT 1").fetchone() == (1,)

        def test_closing_it_is_survivable(atlas_tx):
            atlas_tx.close()

        def test_after_close(atlas_tx):
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=7)


def test_async_fixture_under_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_async(atlas_async_db, atlas_dsn):
            cur = await atlas_async_db.execute("INSERT INTO sessions (task) VALUES ('x') RETURNING id")
            assert (await cur.fetchone())[0] >= 1
            await atlas_async_db.commit()
            cur = await atlas_async_db.execute("SELECT current_database()")
            assert atlas_dsn.split("?")[0].endswith("/" + (await cur.fetchone())[0])
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_each_hypothesis_example_is_rolled_back(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import HealthCheck, given, settings, strategies as st
        from pytest_atlas import rollback

        SEEN = []

        @settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(tasks=st.lists(st.text(min_size=1, max_size=5).filter(lambda s: "\\x00" not in s), max_size=4))
        def test_property(atlas_tx, tasks):
            with rollback(atlas_tx):
                assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
                for task in tasks:
                    atlas_tx.execute("INSERT INTO sessions (task) VALUES (%s)", (task,))
                assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (len(tasks),)
                SEEN.append(len(tasks))

        @settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(n=st.integers(0, 3))
        def test_property_on_atlas_db(atlas_db, n):
            with rollback(atlas_db):
                for _ in range(n):
                    atlas_db.execute("INSERT INTO sessions (task) VALUES ('x')")
                assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (n,)

        def test_examples_ran():
            assert len(SEEN) > 5 and max(SEEN) > 0
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_fixture_factory_declares_variants(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sql", migration="CREATE TABLE IF NOT EXISTS harness_runs (id serial PRIMARY KEY, note text);")
    pytester.makefile(".sql", legacy="CREATE TABLE legacy_only (x int);")
    pytester.makeconftest(
        """
        from pytest_atlas import atlas_fixtures

        migrated = atlas_fixtures(extra_sql=["migration.sql"])
        migrated_db = migrated.db
        migrated_dsn = migrated.dsn
        migrated_tx = migrated.tx

        legacy_db = atlas_fixtures(schema="legacy.sql").db
        """
    )
    pytester.makepyfile(
        """
        import psycopg

        def test_migrated(migrated_db, migrated_dsn):
            migrated_db.execute("INSERT INTO harness_runs (note) VALUES ('x')")
            migrated_db.execute("INSERT INTO sessions (task) VALUES ('atlas tables are there too')")
            migrated_db.commit()
            with psycopg.connect(migrated_dsn) as other:
                assert other.execute("SELECT count(*) FROM harness_runs").fetchone() == (1,)

        def test_migrated_tx(migrated_tx):
            assert migrated_tx.execute("SELECT count(*) FROM harness_runs").fetchone() == (0,)

        def test_legacy_has_only_its_schema(legacy_db):
            assert legacy_db.execute("SELECT to_regclass('sessions')").fetchone() == (None,)
            assert legacy_db.execute("SELECT to_regclass('legacy_only')").fetchone() is not None

        def test_default_family_is_untouched(atlas_db):
            assert atlas_db.execute("SELECT to_regclass('harness_runs')").fetchone() == (None,)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_extra_sql_from_ini_is_applied_after_the_schema(pytester: pytest.Pytester) -> None:
    pytester.mkdir("sql")
    pytester.path.joinpath("sql", "001.sql").write_text("ALTER TABLE sessions ADD COLUMN harness TEXT;")
    pytester.path.joinpath("sql", "002.sql").write_text("UPDATE sessions SET harness = 'x';")
    pytester.makeini("[pytest]\natlas_extra_sql =\n    sql/001.sql\n    sql/002.sql\n")
    pytester.makepyfile(
        """
        def test_column(atlas_db, atlas_tx):
            for conn in (atlas_db, atlas_tx):
                cols = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions'")]
                assert "harness" in cols
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_server_fixture_describes_the_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psycopg

        def test_server(atlas_postgres):
            # a private unix socket: host is its folder, and nothing listens on TCP
            assert atlas_postgres.host.endswith("/sock") and atlas_postgres.port == 5432
            assert atlas_postgres.tcp is False and atlas_postgres.passfile is None
            with atlas_postgres.connect() as conn:
                assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
            assert atlas_postgres.user == "postgres"
            assert atlas_postgres.version_num >= 130000
            assert atlas_postgres.version == "%d.%d" % divmod(atlas_postgres.version_num, 10000)
            assert "started from" in atlas_postgres.source
            with psycopg.connect(atlas_postgres.dsn()) as conn:
                num = conn.execute("SHOW server_version_num").fetchone()[0]
            assert int(num) == atlas_postgres.version_num
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                with atlas_postgres.connect() as conn:
                    assert conn.execute("SHOW " + name).fetchone() == ("off",)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_atlas_tx_after_a_commit_sent_as_sql(pytester: pytest.Pytester) -> None:
    """SQL COMMIT got past commit()'s guard: the rows reached every later atlas_tx test. Prepared
    statements and session advisory locks outlived the rollback."""
    pytester.makepyfile(
        """
        def test_a_commits(atlas_tx):
            atlas_tx.execute("INSERT INTO sessions (task) VALUES ('committed')")
            atlas_tx.execute("COMMIT")
            atlas_tx.execute("INSERT INTO sessions (task) VALUES ('after')")

        def test_b_sees_the_template(atlas_tx):
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)

        def test_c_prepares_and_locks(atlas_tx):
            atlas_tx.execute("PREPARE q AS SELECT 1")
            atlas_tx.execute("SELECT pg_advisory_lock(7)")
            atlas_tx.execute("LISTEN somewhere")

        def test_d_has_none_of_it(atlas_tx):
            atlas_tx.execute("PREPARE q AS SELECT 2")
            assert atlas_tx.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ).fetchone() == (0,)
            assert atlas_tx.execute("SELECT count(*) FROM pg_listening_channels()").fetchone() == (0,)

        def test_e_rolls_back_to_nothing_after_a_failure(atlas_tx):
            import psycopg, pytest
            with pytest.raises(psycopg.errors.UndefinedTable):
                atlas_tx.execute("SELECT * FROM no_such_table")

        def test_f_after_it(atlas_tx):
            assert atlas_tx.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-rE")
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_commits*",
            "*the test ended atlas_tx's transaction with SQL (COMMIT, ROLLBACK or END)*",
        ]
    )
