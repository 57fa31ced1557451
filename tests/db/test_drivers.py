"""Driver fixtures: SQLAlchemy engines (sync and async) and the async connection under
pytest-asyncio and anyio, each through a real query on the test's database."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_sqlalchemy_engines_query_the_tests_database(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from sqlalchemy import text

        def test_sync_engine(atlas_db, atlas_engine, atlas_database):
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('via psycopg')")
            atlas_db.commit()
            with atlas_engine.begin() as conn:
                assert conn.execute(text("SELECT current_database()")).scalar() == atlas_database.name
                assert conn.execute(text("SELECT task FROM sessions")).scalars().all() == ["via psycopg"]
                conn.execute(text("INSERT INTO sessions (task) VALUES ('via sqlalchemy')"))
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (2,)

        @pytest.mark.asyncio
        async def test_async_engine_under_pytest_asyncio(atlas_async_engine, atlas_database):
            async with atlas_async_engine.begin() as conn:
                await conn.execute(text("INSERT INTO sessions (task) VALUES ('async')"))
                assert (await conn.execute(text("SELECT current_database()"))).scalar() == atlas_database.name
            async with atlas_async_engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar() == 1

        @pytest.mark.anyio
        async def test_async_engine_under_anyio(atlas_async_engine):
            async with atlas_async_engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar() == 0

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_async_connection_under_anyio_and_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        async def test_under_anyio(atlas_async_db, atlas_database):
            cur = await atlas_async_db.execute("SELECT current_database()")
            assert (await cur.fetchone())[0] == atlas_database.name
            await atlas_async_db.execute("INSERT INTO sessions (task) VALUES ('anyio')")
            await atlas_async_db.commit()
            cur = await atlas_async_db.execute("SELECT count(*) FROM sessions")
            assert (await cur.fetchone())[0] == 1

        @pytest.mark.asyncio
        async def test_under_pytest_asyncio(atlas_async_db, atlas_db):
            atlas_db.execute("INSERT INTO sessions (task) VALUES ('sync')")
            atlas_db.commit()
            cur = await atlas_async_db.execute("SELECT task FROM sessions")
            assert await cur.fetchall() == [("sync",)]
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-W", "error::pytest.PytestDeprecationWarning")
    result.assert_outcomes(passed=2)


ANYIO_ONLY = """
    import pytest

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    def test_pytest_asyncio_is_really_absent():
        with pytest.raises(ImportError):
            import pytest_asyncio  # noqa: F401

    @pytest.mark.anyio
    async def test_under_anyio_alone(atlas_async_db, atlas_database):
        cur = await atlas_async_db.execute("SELECT current_database(), count(*) FROM sessions")
        assert await cur.fetchone() == (atlas_database.name, 0)

    def test_a_sync_test_is_told_what_to_do(atlas_async_db):
        pass
"""


def test_async_connection_under_anyio_without_pytest_asyncio_installed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = pytester.path / "no_asyncio" / "pytest_asyncio"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pytest-asyncio is not installed here')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker.parent))
    monkeypatch.setenv("PYTEST_ADDOPTS", "")
    pytester.makepyfile(ANYIO_ONLY)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:asyncio", "-p", "no:xdist")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*needs an async test plugin*pytest.mark.asyncio*pytest.mark.anyio*"])


def test_async_connection_without_an_async_plugin_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_sync(atlas_async_db):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs an async test plugin*pytest.mark.asyncio*pytest.mark.anyio*"])


def test_after_a_test_told_what_to_do_the_next_async_tests_still_run(pytester: pytest.Pytester) -> None:
    """The "needs an async test plugin" failure leaves the fixture as pytest expects it: the tests
    after it that may use it (under anyio) get their connection, not a bare AssertionError from
    pytest's fixture bookkeeping."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.parametrize("round", [1, 2])
        def test_sync_uses_async(atlas_async_db, round):
            pass

        @pytest.mark.anyio
        @pytest.mark.parametrize("round", [1, 2])
        async def test_anyio(atlas_async_db, round):
            cur = await atlas_async_db.execute("SELECT %s", (round,))
            assert (await cur.fetchone()) == (round,)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, errors=2)
    assert "AssertionError" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*needs an async test plugin*"])
