"""Fixture scopes (``atlas_fixtures(scope=...)``): shared within one scope instance, fresh across."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
    from pytest_atlas import atlas_fixtures

    per_module = atlas_fixtures(scope="module")
    module_db = per_module.db
    module_database = per_module.database
    module_tx = per_module.tx
    module_async_db = per_module.async_db

    per_class = atlas_fixtures(scope="class")
    class_db = per_class.db

    per_session = atlas_fixtures(scope="session")
    session_db = per_session.db

    def fill(conn):
        conn.execute("INSERT INTO sessions (task) VALUES ('seeded')")

    seeded_module_db = atlas_fixtures(scope="module", seed=fill).db
"""

MODULE = """
    import pytest

    def count(conn):
        return conn.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def test_first_writes(module_db, module_database):
        assert count(module_db) == 0
        module_db.execute("INSERT INTO sessions (task) VALUES ('{name}')")
        module_db.commit()

    def test_second_sees_the_first(module_db, module_database):
        assert module_db.execute("SELECT task FROM sessions").fetchall() == [("{name}",)]

    def test_function_scoped_fixtures_of_the_family_use_the_same_database(module_database, module_tx):
        assert module_tx.execute("SELECT current_database()").fetchone()[0] != module_database.name  # tx: shared run db
        assert count(module_tx) == 0

    @pytest.mark.asyncio
    async def test_async_connection_is_on_the_module_database(module_async_db, module_database):
        row = await (await module_async_db.execute("SELECT current_database()")).fetchone()
        assert row[0] == module_database.name

    def test_seeded_and_scoped(seeded_module_db):
        assert count(seeded_module_db) == 1
        seeded_module_db.execute("INSERT INTO sessions (task) VALUES ('more')")
        seeded_module_db.commit()

    def test_seeded_and_scoped_shares_too(seeded_module_db):
        assert count(seeded_module_db) == 2
"""


def test_module_scope_shares_within_a_module_and_is_fresh_in_the_next(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a=MODULE.format(name="a"), test_b=MODULE.format(name="b"))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=12)


def test_class_scope_and_session_scope(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_classes="""
        def count(conn):
            return conn.execute("SELECT count(*) FROM sessions").fetchone()[0]

        class TestOne:
            def test_write(self, class_db, session_db):
                assert count(class_db) == 0
                class_db.execute("INSERT INTO sessions (task) VALUES ('one')")
                class_db.commit()
                session_db.execute("INSERT INTO sessions (task) VALUES ('s')")
                session_db.commit()

            def test_shared_in_the_class(self, class_db):
                assert count(class_db) == 1

        class TestTwo:
            def test_fresh_for_the_next_class(self, class_db):
                assert count(class_db) == 0

        def test_outside_a_class_each_test_gets_its_own(class_db):
            assert count(class_db) == 0
            class_db.execute("INSERT INTO sessions (task) VALUES ('x')")
            class_db.commit()

        def test_outside_a_class_again(class_db):
            assert count(class_db) == 0
        """,
        test_zz_session="""
        def test_session_scope_is_shared_across_modules(session_db):
            assert session_db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
        """,
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=6)


def test_scoped_database_is_released_when_its_scope_ends(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_a="""
        NAMES = []

        def test_remember(module_database):
            NAMES.append(module_database.name)
        """,
        test_b="""
        import test_a

        def test_the_first_module_database_is_gone(atlas_postgres, module_database):
            import time
            (old,) = test_a.NAMES
            assert old != module_database.name
            with atlas_postgres.connect(autocommit=True) as admin:
                for _ in range(200):  # drops run in the background
                    if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (old,)).fetchone() is None:
                        return
                    time.sleep(0.05)
            raise AssertionError(f"{old} still exists")
        """,
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
