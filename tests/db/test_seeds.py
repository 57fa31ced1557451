"""Seeded templates (``atlas_fixtures(seed=fill)``), used the way users use them: inner runs."""

from __future__ import annotations

import pytest

from pytest_atlas import AtlasPostgres, atlas_fixtures
from pytest_atlas.errors import InvalidArgument

pytest_plugins = ["pytester"]

SEEDED_CONFTEST = """
    import os
    from pathlib import Path

    from pytest_atlas import atlas_fixtures, factories
    from pytest_atlas.factories import BoundFactory

    CALLS = Path(__file__).parent / "fill-calls.txt"

    def fill(conn):
        with CALLS.open("a") as out:
            out.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {os.getpid()}\\n")
        BoundFactory(conn, seed=7, commit=False).sessions(20)
        factories.insert_graphs(conn, factories.sessions(5, learning_key="seeded-graphs"))

    seeded = atlas_fixtures(seed=fill)
    seeded_db = seeded.db
    seeded_dsn = seeded.dsn
    seeded_tx = seeded.tx
    again = atlas_fixtures(seed=fill)
    again_db = again.db
"""


def test_fill_runs_once_per_worker_and_every_clone_starts_from_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SEEDED_CONFTEST)
    pytester.makepyfile(
        """
        import psycopg, pytest

        @pytest.mark.parametrize("n", range(8))
        def test_starts_from_the_seed_and_changes_stay_in_the_test(seeded_db, seeded_dsn, n):
            assert seeded_db.execute("SELECT count(*) FROM sessions").fetchone() == (25,)
            keys = seeded_db.execute("SELECT count(*) FROM sessions WHERE metadata->>'learning_key' = 'seeded-graphs'")
            assert keys.fetchone() == (5,)
            seeded_db.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions LIMIT 3)")
            seeded_db.execute("INSERT INTO sessions (task) VALUES ('mine')")
            seeded_db.commit()
            with psycopg.connect(seeded_dsn) as other:
                assert other.execute("SELECT count(*) FROM sessions").fetchone() == (23,)

        def test_rolled_back_connection_of_the_family_has_the_seed(seeded_tx):
            assert seeded_tx.execute("SELECT count(*) FROM sessions").fetchone() == (25,)

        def test_the_same_fill_in_two_families_shares_one_template(again_db):
            assert again_db.execute("SELECT count(*) FROM sessions").fetchone() == (25,)

        def test_the_plain_family_has_no_seed(atlas_db):
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        """
    )
    pytester.runpytest("-n", "2", "-p", "no:randomly").assert_outcomes(passed=11)
    calls = (pytester.path / "fill-calls.txt").read_text().splitlines()
    workers = [line.split()[0] for line in calls]
    assert sorted(workers) == sorted(set(workers)), calls  # at most once per worker
    assert set(workers) <= {"gw0", "gw1"} and workers, calls


def test_a_seed_is_never_stale_the_next_run_runs_the_changed_fill(pytester: pytest.Pytester) -> None:
    conftest = """
        from pathlib import Path
        from pytest_atlas import atlas_fixtures

        def fill(conn):
            n = int((Path(__file__).parent / "n.txt").read_text())
            conn.execute("INSERT INTO sessions (task) SELECT 't' || i FROM generate_series(1, %s) AS i", (n,))

        seeded_db = atlas_fixtures(seed=fill, seed_key="tasks-from-n.txt").db
    """
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        """
        from pathlib import Path

        def test_count(seeded_db):
            expected = int(Path(__file__).with_name("n.txt").read_text())
            assert seeded_db.execute("SELECT count(*) FROM sessions").fetchone() == (expected,)
        """
    )
    for n in (3, 11):
        (pytester.path / "n.txt").write_text(str(n))
        pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_failing_fill_is_reported_with_its_traceback_once_for_the_family(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pathlib import Path
        from pytest_atlas import atlas_fixtures

        def broken_fill(conn):
            with (Path(__file__).parent / "calls.txt").open("a") as out:
                out.write("x")
            conn.execute("INSERT INTO sessions (no_such_column) VALUES (1)")

        broken_db = atlas_fixtures(seed=broken_fill).db
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_uses_it(broken_db, n):
            pass

        def test_other_families_still_work(atlas_db):
            assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*the seed function conftest.broken_fill failed on the family's template*no_such_column*",
            "*conftest.py*in broken_fill*",
            "*how to fix: fix the seed function*",
        ]
    )
    assert (pytester.path / "calls.txt").read_text() == "x"  # remembered, not run again per test


def test_a_connection_cut_during_the_fill_is_not_remembered(pytester: pytest.Pytester) -> None:
    """A fault of the connection (its backend ended while the fill ran) may pass: the test that met
    it is told, and the next test of the family runs the fill again instead of the same error."""
    pytester.makeconftest(
        """
        from pathlib import Path
        from pytest_atlas import atlas_fixtures

        def cut_once(conn):
            calls = Path(__file__).parent / "calls.txt"
            first = not calls.exists()
            with calls.open("a") as out:
                out.write("x")
            if first:
                conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            conn.execute("INSERT INTO sessions (task) VALUES ('seeded')")

        cut_db = atlas_fixtures(seed=cut_once).db
        """
    )
    pytester.makepyfile(
        """
        def test_first(cut_db):
            pass

        def test_second(cut_db):
            assert cut_db.execute("SELECT task FROM sessions").fetchall() == [("seeded",)]
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the connection to the family's template was cut while the seed function*"])
    assert (pytester.path / "calls.txt").read_text() == "xx"


def test_seed_key_tells_seeds_apart_and_the_plain_fill_identity_keeps_closures_apart(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_atlas import atlas_fixtures

        def fill_with(n):
            def fill(conn):
                conn.execute("INSERT INTO sessions (task) SELECT 't' FROM generate_series(1, %s)", (n,))
            return fill

        two_db = atlas_fixtures(seed=fill_with(2)).db
        five_db = atlas_fixtures(seed=fill_with(5)).db
        keyed_db = atlas_fixtures(seed=fill_with(7), seed_key="seven").db
        """
    )
    pytester.makepyfile(
        """
        def test_counts(two_db, five_db, keyed_db):
            assert two_db.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
            assert five_db.execute("SELECT count(*) FROM sessions").fetchone() == (5,)
            assert keyed_db.execute("SELECT count(*) FROM sessions").fetchone() == (7,)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": 3}, "takes a function fill"),
        ({"seed": lambda conn: None, "seed_key": ""}, "non-empty string"),
        ({"seed_key": "k"}, "without seed="),
        ({"scope": "modul"}, "takes one of 'function', 'class', 'module', 'package', 'session'"),
    ],
)
def test_declarations_are_checked_when_made(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        atlas_fixtures(**kwargs)  # type: ignore[arg-type]


def test_reset_isolation_restores_the_seeded_rows(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_atlas import atlas_fixtures
        from pytest_atlas.factories import BoundFactory

        def fill(conn):
            BoundFactory(conn, seed=3, commit=False).sessions(10)

        seeded_database = atlas_fixtures(seed=fill).database
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def counts(conn):
            return conn.execute(
                "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM guidance_notes WHERE note = 'mine')"
            ).fetchone()

        @pytest.mark.parametrize("n", range(6))
        def test_each_test_starts_from_the_seed(seeded_database, n):
            with seeded_database.connect() as conn:
                assert counts(conn) == (10, 0)
                if n % 2:
                    conn.execute("DELETE FROM sessions WHERE id = (SELECT min(id) FROM sessions)")
                sid = conn.execute("SELECT max(id) FROM sessions").fetchone()[0]
                conn.execute("INSERT INTO guidance_notes (session_id, step_id, sequence, note) VALUES (%s, 1, 99, 'mine')", (sid,))
                conn.commit()
        """
    )
    pytester.runpytest("-p", "no:randomly", "--atlas-isolation=reset").assert_outcomes(passed=6)


def test_seeded_family_on_an_existing_server_leaves_nothing_behind(
    pytester: pytest.Pytester, atlas_postgres: AtlasPostgres
) -> None:
    def databases() -> set[str]:
        with atlas_postgres.connect() as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}

    before = databases()
    pytester.makeconftest(SEEDED_CONFTEST)
    pytester.makepyfile(
        """
        def test_seeded(seeded_db, seeded_tx):
            assert seeded_db.execute("SELECT count(*) FROM sessions").fetchone() == (25,)
            assert seeded_tx.execute("SELECT count(*) FROM sessions").fetchone() == (25,)
        """
    )
    pytester.runpytest("-p", "no:randomly", "--atlas-dsn", atlas_postgres.dsn()).assert_outcomes(passed=1)
    assert databases() == before  # the seeded template, its clones and the shared database are dropped
