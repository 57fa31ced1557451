"""Each error path that quotes text of the user's or of a driver keeps the run's secrets out of what
it says: a seed function's traceback, a schema file's failed statement, the payload of a check item
that hit an internal error, Atlas's refusal of a configuration, a failed Atlas run. Each runs with a
password-bearing --atlas-dsn / --atlas-target at --tb=long with --showlocals and -vv, and with the
plugin's report scrubbing both on and off (``-p no:pytest_atlas.plugin._scrub``): the place that
makes the message must redact it itself, the scrubbing is a second line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.db.conftest import PasswordServer

ALL_OUTPUT = ["-p", "no:randomly", "--tb=long", "--showlocals", "-vv", "-rA", "--junitxml=junit.xml"]
SCRUBBING = {"scrubbed": [], "not scrubbed": ["-p", "no:pytest_atlas.plugin._scrub"]}

_PASSWORD = """
import os

from psycopg.conninfo import conninfo_to_dict

PASSWORD = conninfo_to_dict(os.environ["ATLAS_SECRET_DSN"])["password"]
"""


def _written(root: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in root.iterdir() if path.suffix in (".xml", ".json", ".html")
    )


def _run(pytester: pytest.Pytester, *args: str) -> tuple[str, str]:
    result = pytester.runpytest_subprocess(*ALL_OUTPUT, *args)
    return result.stdout.str() + result.stderr.str(), _written(pytester.path)


@pytest.mark.parametrize("scrubbing", SCRUBBING.values(), ids=SCRUBBING.keys())
def test_a_seed_function_s_traceback_shows_no_secret(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    scrubbing: list[str],
) -> None:
    monkeypatch.setenv("ATLAS_TEST_DSN", password_server.url())
    monkeypatch.setenv("ATLAS_SECRET_DSN", password_server.url())
    pytester.makeconftest(
        _PASSWORD
        + "from pytest_atlas import atlas_fixtures\n\n"
        + "def fill(conn):\n"
        + "    dsn = os.environ['ATLAS_SECRET_DSN']\n"
        + "    try:\n"
        + "        raise KeyError(f'no rows for {dsn}')\n"
        + "    except KeyError as exc:\n"
        + "        raise RuntimeError(f'seeding failed with password {PASSWORD}') from exc\n\n"
        + "seeded = atlas_fixtures(seed=fill)\nseeded_db = seeded.db\n"
    )
    pytester.makepyfile("def test_one(seeded_db):\n    pass\n\ndef test_two(seeded_db):\n    pass\n")
    text, written = _run(pytester, "=".join(own_base), *scrubbing)
    assert "the seed function conftest.fill failed" in text and "seeding failed with password ***" in text, text
    assert "no rows for" in text  # the chained exception is shown, redacted
    assert not password_server.leaks(text), text
    assert not password_server.leaks(written)


@pytest.mark.parametrize("scrubbing", SCRUBBING.values(), ids=SCRUBBING.keys())
def test_a_schema_statement_that_fails_shows_no_password(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    scrubbing: list[str],
) -> None:
    """A migration that sets a role's password, or names a connection string, and fails: the
    statement quoted in the error shows neither that password nor the run's."""
    monkeypatch.setenv("ATLAS_TEST_DSN", password_server.url())
    (pytester.path / "0001_roles.sql").write_text(
        "CREATE ROLE reader LOGIN PASSWORD 'R0le-Pa55word-9';\n"
        f"CREATE ROLE app LOGIN PASSWORD '{password_server.password}' NO_SUCH_OPTION;\n"
    )
    pytester.makeconftest(
        "from pytest_atlas import atlas_fixtures\n\n"
        "migrated = atlas_fixtures(extra_sql=['0001_roles.sql'])\nmigrated_db = migrated.db\n"
    )
    pytester.makepyfile("def test_one(migrated_db):\n    pass\n")
    text, written = _run(pytester, "=".join(own_base), *scrubbing)
    assert "0001_roles.sql:2" in text and "PASSWORD '***'" in text, text
    assert not password_server.leaks(text), text
    assert "R0le-Pa55word-9" not in text  # a password the statements set is gone too (not a secret the run knew)
    assert not password_server.leaks(written) and "R0le-Pa55word-9" not in written


@pytest.mark.parametrize("scrubbing", SCRUBBING.values(), ids=SCRUBBING.keys())
def test_a_check_item_s_internal_error_shows_no_secret(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    scrubbing: list[str],
) -> None:
    """A bug in a check (here: the gate evaluation raising a plain exception that quotes the target's
    password, as a driver's message may) is an error whose payload, in every report, shows no secret."""
    monkeypatch.setenv("ATLAS_SECRET_DSN", password_server.url())
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.5\n')
    pytester.makeconftest(
        _PASSWORD
        + "import pytest_atlas.gates\n\n"
        + "def _buggy(*args, **kwargs):\n"
        + "    raise RuntimeError(f'a bug, with password {PASSWORD}')\n\n"
        + "pytest_atlas.gates.evaluate = _buggy\n"
    )
    text, written = _run(
        pytester,
        "--atlas-gates",
        "--atlas-target",
        password_server.url(),
        "--atlas-report=report.json",
        "--atlas-report-html=report.html",
        *scrubbing,
    )
    reports = (pytester.path / "report.json").read_text() + (pytester.path / "report.html").read_text()
    assert "internal error: RuntimeError: a bug, with password ***" in reports, reports
    assert not password_server.leaks(reports), reports
    if scrubbing == SCRUBBING["scrubbed"]:  # the traceback of the bug itself: only the scrubbing hides it
        assert "a bug, with password ***" in text and not password_server.leaks(text + written), text
