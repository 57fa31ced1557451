"""A DSN's password never prints, whatever shape the DSN has: a scheme libpq does not know
(SQLAlchemy's ``postgresql+psycopg://``, a typo), a password with an unencoded "/", "@", "?" or "#",
an empty user, IPv6 and several hosts, a password in the query or in quoted key=value pairs. Each
shape goes through the redaction itself, the settings check, the option, ini and environment paths
of a real run (with every traceback and report switch on) and ``python -m pytest_atlas kept --dsn``;
no output and no written file holds any part of the secret, and a value that is no usable DSN is a
usage error that says what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from pytest_atlas._dsn import Dsn, check_dsn, redact, redact_text, secrets_of
from pytest_atlas.errors import ConfigError

#: the gates of the inner runs that check --atlas-target (they fail: nothing listens on port 1)
GATES = """
[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = 0.5
"""


class Shape(NamedTuple):
    dsn: str
    secrets: tuple[str, ...]  # no output may hold any of these
    error: str | None  # what the usage error says, or None for a DSN libpq reads
    redacted: str  # Dsn(dsn).redacted


SHAPES = {
    "sqlalchemy-scheme": Shape(
        "postgresql+psycopg://reader:S3cretPW_xyz@127.0.0.1:1/atlas",
        ("S3cretPW_xyz",),
        "postgresql+psycopg:// is SQLAlchemy's form of a URL",
        "postgresql+psycopg://reader:***@127.0.0.1:1/atlas",
    ),
    "typo-scheme": Shape(
        "postgresq://reader:S3cretPW_xyz@127.0.0.1:1/atlas",
        ("S3cretPW_xyz",),
        "postgresq:// is not a PostgreSQL URL scheme",
        "postgresq://reader:***@127.0.0.1:1/atlas",
    ),
    "upper-case-scheme": Shape(
        "POSTGRESQL://reader:Upp3rPW_xyz@127.0.0.1:1/atlas",
        ("Upp3rPW_xyz",),
        "POSTGRESQL:// is not a scheme libpq knows",
        "POSTGRESQL://reader:***@127.0.0.1:1/atlas",
    ),
    "slash-in-password": Shape(
        "postgresql://reader:S3cret/PW_xyz@127.0.0.1:1/atlas",
        ("S3cret", "PW_xyz"),
        "percent-encode",
        "postgresql://reader:***@127.0.0.1:1/atlas",
    ),
    "at-in-password": Shape(
        "postgresql://reader:S3cret@PW_xyz@127.0.0.1:1/atlas",
        ("S3cret", "PW_xyz"),
        "percent-encode",
        "postgresql://reader:***@127.0.0.1:1/atlas",
    ),
    "no-scheme": Shape(
        "reader:NoSch3me_pw@127.0.0.1/atlas",
        ("NoSch3me_pw",),
        "not a valid PostgreSQL connection string",
        "(a connection string libpq cannot parse)",
    ),
    "kv-unquoted-space": Shape(
        "host=127.0.0.1 port=1 password=Unq_w0rd m0re_w0rd",
        ("Unq_w0rd", "m0re_w0rd"),
        "not a valid PostgreSQL connection string",
        "(a key=value connection string libpq cannot parse)",
    ),
    "percent-encoded": Shape(
        "postgres://u:p%40ssW0rd_9@127.0.0.1:1/db",
        ("p%40ssW0rd_9", "p@ssW0rd_9", "ssW0rd_9"),
        None,
        "postgres://u:***@127.0.0.1:1/db",
    ),
    "query-and-hash-in-password": Shape(
        "postgresql://u:Qm?ark#Hash_pw9@127.0.0.1:1/db",
        ("Qm?ark", "ark#", "Hash_pw9"),
        None,
        "postgresql://u:***@127.0.0.1:1/db",
    ),
    "empty-user": Shape(
        "postgresql://:EmptyUs3r_pw@127.0.0.1:1/db", ("EmptyUs3r_pw",), None, "postgresql://:***@127.0.0.1:1/db"
    ),
    "ipv6": Shape("postgresql://u:V6_s3cret_pw@[::1]:1/db", ("V6_s3cret_pw",), None, "postgresql://u:***@[::1]:1/db"),
    "multi-host": Shape(
        "postgresql://u:Mult1_s3cret@127.0.0.1:1,127.0.0.2:1/db",
        ("Mult1_s3cret",),
        None,
        "postgresql://u:***@127.0.0.1:1,127.0.0.2:1/db",
    ),
    "query-password": Shape(
        "postgresql://u@127.0.0.1:1/db?password=Qu3ry_s3cret",
        ("Qu3ry_s3cret",),
        None,
        "postgresql://u@127.0.0.1:1/db?password=***",
    ),
    "kv-quoted": Shape(
        "host=127.0.0.1 port=1 password='Kvw0rd s3cr\\'etw0rd'",
        ("Kvw0rd", "etw0rd"),
        None,
        "host=127.0.0.1 port=1 password=***",
    ),
}


def leaks(text: str, shape: Shape) -> list[str]:
    return [secret for secret in shape.secrets if secret in text]


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_redaction_hides_every_part_of_the_password(shape: Shape) -> None:
    for shown in (redact(shape.dsn), str(Dsn(shape.dsn)), repr(Dsn(shape.dsn)), f"{Dsn(shape.dsn)}"):
        assert not leaks(shown, shape), shown
    assert redact(shape.dsn) == shape.redacted
    # in free text (a message that quotes the DSN) too, with or without its known secrets
    assert not leaks(redact_text(f"cannot reach {shape.dsn}: refused"), shape) or "://" not in shape.dsn
    assert not leaks(redact_text(f"cannot reach {shape.dsn}: refused", *secrets_of(shape.dsn)), shape)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_a_dsn_that_is_no_usable_dsn_is_a_clear_error_without_the_password(shape: Shape) -> None:
    if shape.error is None:
        check_dsn(shape.dsn, "--atlas-target")
        return
    with pytest.raises(ConfigError) as raised:
        check_dsn(shape.dsn, "--atlas-target")
    message = str(raised.value)
    assert not leaks(message, shape) and not leaks(repr(raised.value.value), shape), message
    assert shape.error in message and f"'{shape.redacted}'" in message and "how to fix:" in message, message


def test_sqlalchemy_s_form_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigError, match=r"pass postgresql://\.\.\. \(without '\+psycopg'\)"):
        check_dsn("postgresql+psycopg://reader:pw@db/atlas", "--atlas-target")
    with pytest.raises(ConfigError, match="'@' as %40, '/' as %2F"):
        check_dsn("postgresql://reader:a@b@db/atlas", "--atlas-target")


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # through the last "@"
        ("postgresql:///db?password=p@ss", "postgresql://***"),  # which "@" is the userinfo's: hide all
        ("postgresql://u:pw@h/db?%70assword=zz", "postgresql://u:***@h/db?%70assword=***"),  # libpq decodes keys
        ("mysql://u:pw@h/db", "mysql://u:***@h/db"),  # any scheme
        ("postgresql://a/b@h/db", "postgresql://***@h/db"),  # no ":" but a "/" before the "@"
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("just some text", "(a connection string libpq cannot parse)"),
    ],
)
def test_redaction_is_conservative(dsn: str, expected: str) -> None:
    assert redact(dsn) == expected


def _written(root: Path) -> str:
    """Every file under ``root`` the run wrote (not the pyproject.toml that holds the DSN), as text."""
    texts = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != "pyproject.toml":
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


ALL_OUTPUT = ["-vv", "--tb=long", "--showlocals", "--full-trace", "-rA", "--junitxml=junit.xml"]


@pytest.mark.parametrize("how", ["--atlas-target", "$ATLAS_TARGET_DSN", "--atlas-dsn", "$ATLAS_TEST_DSN", "ini"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_no_part_of_the_password_in_any_output_or_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, shape: Shape, how: str
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("ATLAS_TEST_DSN", raising=False)
    monkeypatch.delenv("ATLAS_TARGET_DSN", raising=False)
    gates = how in ("--atlas-target", "$ATLAS_TARGET_DSN")
    ini = "[tool.pytest.ini_options]\natlas_dsn = '''" + shape.dsn + "'''\n" if how == "ini" else ""
    pytester.makefile(".toml", pyproject=(GATES if gates else "") + ini)
    pytester.makepyfile("def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    args = [*ALL_OUTPUT, "-p", "no:randomly", "-p", "no:cacheprovider"]
    if gates:
        args += ["--atlas-gates", "--atlas-report=report.json", "--atlas-report-html=report.html"]
    if how.startswith("--"):
        args += [how, shape.dsn]
    elif how.startswith("$"):
        monkeypatch.setenv(how[1:], shape.dsn)
    result = pytester.runpytest(*args)
    text = result.stdout.str() + result.stderr.str()
    assert not leaks(text, shape), text
    written = _written(pytester.path)
    assert not leaks(written, shape)
    if shape.error is not None:
        assert result.ret == pytest.ExitCode.USAGE_ERROR, text
        assert shape.error in text and shape.redacted in text, text
    else:
        assert result.ret != pytest.ExitCode.OK, text  # nothing listens there
        assert "<testcase" in written  # the JUnit XML (and the reports, for gates) were written
        assert shape.redacted in text or "***" in text, text


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_kept_dsn_shows_no_part_of_the_password(shape: Shape, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_atlas", "kept", "--dsn", shape.dsn],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        timeout=120,
    )
    text = done.stdout + done.stderr
    assert not leaks(text, shape), text
    assert done.returncode != 0, text
    if shape.error is not None:
        assert done.returncode == 2 and shape.error in text, text


#: the URL shapes that were echoed, and one libpq reads (the API's frames and messages for each)
_API_SHAPES = ["sqlalchemy-scheme", "typo-scheme", "slash-in-password", "at-in-password", "query-and-hash-in-password"]

_PUBLIC_API = """
import os

import pytest_atlas
from pytest_atlas.gates import GateSpec, evaluate


def test_check():
    pytest_atlas.check_database(os.environ["ATLAS_SECRET_TARGET"])


def test_reward_assertion():
    pytest_atlas.assert_reward_at_least(os.environ["ATLAS_SECRET_TARGET"], 0.5)


def test_gate():
    evaluate(GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5}), os.environ["ATLAS_SECRET_TARGET"])
"""


@pytest.mark.parametrize("shape", [SHAPES[key] for key in _API_SHAPES], ids=_API_SHAPES)
def test_a_dsn_given_to_the_public_api_shows_no_part_of_the_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, shape: Shape
) -> None:
    monkeypatch.setenv("ATLAS_SECRET_TARGET", shape.dsn)
    pytester.makepyfile(_PUBLIC_API)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:xdist", "-l", "--tb=long", "--full-trace", "-vv", "--junitxml=junit.xml"
    )
    result.assert_outcomes(failed=3)
    text = result.stdout.str() + result.stderr.str()
    assert not leaks(text, shape), text
    assert not leaks(_written(pytester.path), shape)
    if shape.error is not None:
        assert text.count(shape.error) >= 3, text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("cannot reach postgresql://us/er:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach postgresql://us?er:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach postgresql://us#er:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach postgresql://us er:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach postgresql://us'er:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach postgresql://a@b:s3cretW0rd@host/db: refused", "s3cretW0rd"),
        ("cannot reach 'postgresql://us/er:s3cretW0rd@host/db'", "s3cretW0rd"),
        ("first line\nthen postgresql://us/er:s3cretW0rd@host/db\nlast line", "s3cretW0rd"),
        ("cannot reach postgresql://u@h/db?%70assword=s3cretW0rd&sslmode=require", "s3cretW0rd"),
        ("CREATE ROLE app LOGIN PASSWORD 's3cretW0rd'", "s3cretW0rd"),
        ("ALTER ROLE app PASSWORD E's3cret''W0rd'", "W0rd"),
    ],
)
def test_free_text_hides_the_password_whatever_the_user_part_holds(text: str, secret: str) -> None:
    """A message quoting a URL whose user part holds "/", "?", "#", a space, a quote or an "@" (so
    that no parser can tell where the user ends), a password in the query under an encoded key, or
    an SQL PASSWORD literal: the secret is gone, the text around it stays."""
    shown = redact_text(text)
    assert secret not in shown and "***" in shown, shown
    assert shown.split()[0] == text.split()[0]


@pytest.mark.parametrize(
    "text",
    [
        "cannot reach postgresql://u@h/db: refused",  # no password: nothing hidden
        "cannot reach postgresql://u:***@h/db: refused",  # already redacted: unchanged
        "cannot reach postgresql://***@h/db: refused",
        "password authentication failed for user 'app'",
    ],
)
def test_free_text_without_a_password_is_left_as_it_is(text: str) -> None:
    assert redact_text(text) == text


_QUOTES_THE_RUN_S_SECRETS = """
import os
import warnings

from psycopg.conninfo import conninfo_to_dict

DSN_PASSWORD = conninfo_to_dict(os.environ["ATLAS_SECRET_DSN"])["password"]
PGPASSWORD = os.environ["PGPASSWORD"]


def test_fails_with_pgpassword():
    print("captured:", PGPASSWORD)
    raise RuntimeError(f"the CI secret is {PGPASSWORD}")


def test_warns_and_fails_with_the_dsn_s_password():
    warnings.warn(f"password {DSN_PASSWORD} is weak")
    assert DSN_PASSWORD == "something else"
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_failing_test_or_module_that_quotes_a_secret_of_the_run_shows_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """No database needed: the secrets the run was configured with ($PGPASSWORD, the password of
    --atlas-dsn) are scrubbed from failures, captured output, warnings, a module that cannot be
    collected, and the JUnit XML, in each process of an xdist run too."""
    dsn = "postgresql://reader:Dsn_Pa55word_77@127.0.0.1:1/atlas"
    monkeypatch.setenv("ATLAS_SECRET_DSN", dsn)
    monkeypatch.setenv("PGPASSWORD", "Ci_Pgpassw0rd_88")
    pytester.makepyfile(
        test_quotes=_QUOTES_THE_RUN_S_SECRETS,
        test_broken="import os\nraise ImportError('cannot import with ' + os.environ['PGPASSWORD'])\n",
    )
    args = ["-p", "no:randomly", "--continue-on-collection-errors", "--atlas-dsn", dsn, *xdist]
    result = pytester.runpytest_subprocess(*ALL_OUTPUT, *args)
    text = result.stdout.str() + result.stderr.str()
    written = _written(pytester.path)
    assert "the CI secret is ***" in text and "password *** is weak" in text and "captured: ***" in text, text
    assert "cannot import with ***" in text, text
    assert "the CI secret is ***" in written and "cannot import with ***" in written, written
    for secret in ("Dsn_Pa55word_77", "Ci_Pgpassw0rd_88"):
        assert secret not in text and secret not in written, text


def test_an_internal_error_that_quotes_a_secret_of_the_run_shows_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conftest hook of the user's that crashes pytest itself (INTERNALERROR) with the password of
    --atlas-dsn in its exception and its locals."""
    dsn = "postgresql://reader:Dsn_Pa55word_77@127.0.0.1:1/atlas"
    monkeypatch.setenv("ATLAS_SECRET_DSN", dsn)
    pytester.makeconftest(
        "import os\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    dsn = os.environ['ATLAS_SECRET_DSN']\n"
        '    raise RuntimeError(f\'the hook broke on {dsn.split(":")[2].split("@")[0]}\')\n'
    )
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--showlocals", "--tb=long", "--atlas-dsn", dsn)
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR, text
    assert "INTERNALERROR" in text and "the hook broke on ***" in text, text
    assert "Dsn_Pa55word_77" not in text, text


def test_a_known_secret_that_is_a_common_word_leaves_longer_words_alone() -> None:
    """CI services often use the password ``postgres``: it is scrubbed where it stands alone (and in
    the DSN's URL form), not out of ``postgresql://`` or ``pytest_postgres_db``."""
    from pytest_atlas._dsn import scrub

    Dsn("postgresql://ci:postgres@db:5432/atlas")  # the settings hold it: the run knows the password
    shown = scrub("postgresql://ci:postgres@db:5432/atlas failed; password postgres; db pytest_postgres_db")
    assert shown == "postgresql://ci:***@db:5432/atlas failed; password ***; db pytest_postgres_db", shown
