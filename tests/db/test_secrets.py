"""No secret in any output: the DSNs handed to tests carry no password, and the settings that hold
one print it redacted, at every traceback level, with --showlocals, in assertion diffs, JUnit XML,
--atlas-keep-db lines (which work when pasted), reprs, and child processes' command lines."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pytest_atlas._config import resolve_settings
from pytest_atlas._dsn import Dsn
from tests.db.conftest import (
    PasswordServer,
    as_owner_of,
    discard_kept,
    drop_run_databases,
    foreign_process,
    release_inner,
    rewrite_pid_file,
    run_databases,
    running,
    start_inner,
    stop_inner,
    wait_gone,
)

FAILING = """
import pytest
from pytest_atlas.fixtures._state import run_state, settings_of


def test_compares_the_dsn(atlas_postgres):
    dsn = atlas_postgres.dsn("pytest_atlas_x")
    assert dsn == "postgresql://someone-else@db/x"


def test_compares_the_objects(atlas_postgres, pytestconfig):
    settings = settings_of(pytestconfig)
    state = run_state(pytestconfig)
    assert (atlas_postgres, settings, state, settings.dsn, state.plan()) is None


def test_raises_with_the_dsn(atlas_postgres, pytestconfig):
    configured = settings_of(pytestconfig).dsn
    raise RuntimeError(f"the driver failed for {atlas_postgres.dsn()} (configured: {configured})")
"""

#: the same with the per-test fixtures (a template is built: this runs once, with everything on)
FAILING_WITH_DATABASES = (
    FAILING.replace("(atlas_postgres)", "(atlas_postgres, atlas_dsn, atlas_database)")
    + """

def test_compares_atlas_dsn(atlas_dsn, atlas_database):
    assert atlas_dsn == atlas_database.name


def test_keeps_a_row(atlas_db):
    atlas_db.execute("INSERT INTO sessions (task) VALUES ('kept row')")
    atlas_db.commit()
"""
)


def test_the_dsn_setting_prints_redacted() -> None:
    settings = resolve_settings({"dsn": "postgresql://app:hunter2@db:5432/x?sslmode=require"}, {}, {})
    dsn = settings.dsn
    assert isinstance(dsn, Dsn)
    for shown in (str(dsn), repr(dsn), f"{dsn}", f"{dsn!r}", repr(settings), str([dsn])):
        assert "hunter2" not in shown and "***" in shown, shown
    assert dsn.reveal() == "postgresql://app:hunter2@db:5432/x?sslmode=require"
    assert Dsn("host=db password='two words' user=app").redacted == "host=db password=*** user=app"


@pytest.mark.parametrize(
    ("dsn", "word"),
    [
        ("postgresql://ci:Pass%word1@127.0.0.1:5432/atlas", "Pass%word1"),  # not a percent-escape: unparsable
        ("postgresql://ci:Pass%cdword@127.0.0.1:5432/atlas", "Pass%cdword"),  # not UTF-8 once decoded
        ("postgresql://ci:it's me@127.0.0.1/atlas", "it's me"),  # a space: unparsable
        ("postgresql://ci:s%40cr%23t@127.0.0.1/atlas", "s@cr#t"),  # decoded form
        ("postgresql://ci@127.0.0.1/atlas?password=qs ecret", "qs ecret"),
        ("host=127.0.0.1 dbname=atlas user=ci password=first\\ second", "second"),
        ("host=127.0.0.1 user=ci password='it''s' junk", "it"),
    ],
)
def test_a_password_libpq_would_quote_in_its_message_never_prints(dsn: str, word: str) -> None:
    """Whatever the password looks like (escapes, spaces, text libpq cannot parse), neither the
    Dsn's text nor the message of a connection string that cannot be used shows it: libpq quotes the
    offending token in its messages, which may be the password itself."""
    from pytest_atlas._dsn import check_dsn
    from pytest_atlas.errors import ConfigError

    shown = [str(Dsn(dsn)), repr(Dsn(dsn))]
    try:
        check_dsn(dsn, "--atlas-target")
    except ConfigError as exc:
        shown.append(str(exc))
    for text in shown:
        assert word not in text, text
    assert any("***" in text or "cannot parse" in text for text in shown)


@pytest.mark.parametrize(
    "args",
    [
        ["--tb=auto", "-l"],
        ["--tb=short", "-l"],
        ["--tb=line"],
        ["--tb=native", "-l"],
        ["--tb=no", "-rA"],
        ["--tb=long", "-l", "-vv", "-rA", "--atlas-keep-db", "--junitxml=report.xml", "-o", "junit_logging=all"],
    ],
    ids=["auto-l", "short-l", "line", "native-l", "no-rA", "long-l-vv-keep-junit"],
)
def test_no_password_in_any_output(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    args: list[str],
) -> None:
    monkeypatch.setenv("ATLAS_TEST_DSN", password_server.url())
    keep = "--atlas-keep-db" in args
    pytester.makepyfile(FAILING_WITH_DATABASES if keep else FAILING)
    result = pytester.runpytest("-p", "no:randomly", *own_base, *args)  # (own_base: the passfile's folder)
    result.assert_outcomes(failed=4, passed=1) if keep else result.assert_outcomes(failed=3)
    text = result.stdout.str() + result.stderr.str()
    assert not password_server.leaks(text)
    if "-l" in args and "--tb=native" not in args:
        assert "configured" in text and "settings" in text  # the locals really are shown
    if not keep:
        return
    junit = (pytester.path / "report.xml").read_text()
    assert "atlas_database" in junit and not password_server.leaks(junit)
    # the printed lines work when pasted: psql through the run's passfile, then the clean-up
    lines = connect_commands(text)
    try:
        found = sorted(pasted(line, "SELECT count(*) || coalesce(min(task), '') FROM sessions") for line in lines)
        assert len(found) >= 3 and found == ["0"] * (len(found) - 1) + ["1kept row"]
    finally:  # what the run kept on purpose (its token names them), and nothing else
        [token] = set(re.findall(r"pytest_atlas_([0-9a-f]{8})_", text))
        drop_run_databases(password_server, token)
    [remove] = [line.split(": ", 1)[1] for line in text.splitlines() if "remove the passfile's folder" in line]
    subprocess.run(remove, shell=True, check=True)
    assert not Path(shlex.split(remove)[-1]).exists()


def connect_commands(text: str) -> list[str]:
    """The connect commands of the --atlas-keep-db table (its last column)."""
    return [line[line.index("psql '") :].strip() for line in text.splitlines() if "psql '" in line]


def pasted(line: str, query: str) -> str:
    """Run a printed ``psql ...`` line the way a person pastes it into a shell, adding a query."""
    done = subprocess.run(
        f"{line} -w -X -At -c {shlex.quote(query)}", shell=True, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def secrets_in_processes(secret: str) -> list[str]:
    """Every process whose command line or environment shows ``secret``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                if secret.encode() in (entry / part).read_bytes():
                    found.append(f"{entry.name} {part}")
            except OSError:
                continue
    return found


SERVER_ENVIRONMENT = """
def test_reads_the_server_environment(atlas_db):
    backend = atlas_db.execute("SELECT pg_backend_pid()").fetchone()[0]
    with open(f"/proc/{backend}/stat") as handle:  # the postmaster (a backend's title overwrites its own)
        pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{pid}/environ", "rb") as handle:
        names = sorted(item.split(b"=", 1)[0].decode() for item in handle.read().split(b"\\0") if item)
    print("SERVER_ENV", " ".join(names))
"""


def test_the_server_gets_none_of_the_run_s_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, password_server: PasswordServer
) -> None:
    """The server runs as its own account (as root: postgres or nobody, shared with other programs),
    and every process of that account can read its environment (/proc/PID/environ; SQL through
    COPY ... TO PROGRAM too): pytest's environment (CI tokens, the target's DSN) stays out of it."""
    monkeypatch.setenv("CI_DEPLOY_TOKEN", "ghp-not-for-the-server")
    monkeypatch.setenv("ATLAS_TARGET_DSN", password_server.url())
    pytester.makepyfile(SERVER_ENVIRONMENT)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [line] = [line.split("SERVER_ENV ", 1)[1] for line in result.stdout.lines if "SERVER_ENV " in line]
    names = set(line.split(".")[0].split())  # (the progress dot may follow on the same line)
    assert names <= {"PATH", "LC_ALL", "LANG", "HOME", "USER", "LOGNAME", "TZ", "TMPDIR", "LD_LIBRARY_PATH"}, names
    assert {"LC_ALL", "PATH"} <= names


def test_keep_db_over_tcp_prints_lines_that_work_and_no_password(
    pytester: pytest.Pytester, tmp_path: Path, own_base: list[str]
) -> None:
    proc, probe = start_inner(pytester, tmp_path, "--atlas-tcp", "--atlas-keep-db", *own_base)
    run_dir = Path(probe["run_dir"])
    try:
        password = Path(probe["passfile"]).read_text().strip().rsplit(":", 1)[1]
        try:
            assert password and password not in probe["dsn"]
            assert secrets_in_processes(password) == [], "the run's password is in a command line or environment"
        finally:
            out = release_inner(proc, tmp_path)  # the run ends normally; the kept server stays
        assert password not in out
        lines = [line.strip() for line in out.splitlines()]
        [connect] = connect_commands("\n".join(lines))
        stop = _kept_line(lines, run_dir)
        assert pasted(connect, "SELECT count(*) FROM sessions") == "0"
        assert "127.0.0.1" in connect and "passfile=" in connect
        pids = [int(Path(probe["data_dir"], "postmaster.pid").read_text().split()[0])]
        subprocess.run(stop, shell=True, check=True)
        assert wait_gone(pids) == []
        assert not run_dir.exists()
    finally:
        discard_kept(run_dir)


def test_keep_db_lines_without_tcp_work_when_pasted(pytester: pytest.Pytester, own_base: list[str]) -> None:
    pytester.makepyfile(
        "def test_keep(atlas_db):\n"
        "    atlas_db.execute(\"INSERT INTO sessions (task) VALUES ('inspect me')\")\n"
        "    atlas_db.commit()\n"
    )
    result = pytester.runpytest_subprocess("--atlas-keep-db", "-p", "no:cacheprovider", *own_base)
    result.assert_outcomes(passed=1)
    [run_dir] = list(Path(own_base[1]).glob("pytest-atlas-v2-*/run-*"))
    try:
        lines = [line.strip() for line in result.stdout.lines]
        [connect] = connect_commands("\n".join(lines))
        stop = _kept_line(lines, run_dir)
        assert pasted(connect, "SELECT task FROM sessions") == "inspect me"
        pids = [int((run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])]
        subprocess.run(stop, shell=True, check=True)
        assert wait_gone(pids) == []
        assert not run_dir.exists()
    finally:
        discard_kept(run_dir)


def _kept_line(lines: list[str], run_dir: Path) -> str:
    """The printed command that removes just this kept server, with the ``python`` of this run."""
    [line] = [line.split(" with: ", 1)[1] for line in lines if " with: " in line and str(run_dir) in line]
    return line.replace("python -m pytest_atlas", f"{shlex.quote(sys.executable)} -m pytest_atlas", 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server runs as another account only then")
@pytest.mark.parametrize("plant", ["a root process's pid", "a link to a root-only file"])
def test_the_printed_remove_line_trusts_nothing_the_server_account_wrote(
    pytester: pytest.Pytester, own_base: list[str], tmp_path: Path, plant: str
) -> None:
    """The server's account (shared with other programs when it is 'nobody') owns the data folder,
    so it can rewrite postmaster.pid: root pasting the printed line must not kill a process of
    root's it names, nor print a file it links to."""
    pytester.makepyfile("def test_keep(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    result = pytester.runpytest_subprocess("--atlas-keep-db", "-p", "no:cacheprovider", *own_base)
    result.assert_outcomes(passed=1)
    [run_dir] = list(Path(own_base[1]).glob("pytest-atlas-v2-*/run-*"))
    pid_file = run_dir / "pgdata" / "postmaster.pid"
    server = int(pid_file.read_text().split()[0])
    secret = tmp_path / "root-only"
    secret.write_text("root-only-secret-text\n")
    os.chmod(secret, 0o600)
    victim = foreign_process()  # a process of root's that is not our child
    try:
        if plant == "a link to a root-only file":
            account = as_owner_of(pid_file.parent)
            planted = subprocess.run([*account, "ln", "-sf", str(secret), str(pid_file)], check=False)
            assert planted.returncode == 0
        else:
            rewrite_pid_file(pid_file.parent, victim)
        line = _kept_line([line.strip() for line in result.stdout.lines], run_dir)
        # (the old line, once it killed the victim, waited for it for ever: a zombie answers kill -0)
        done = subprocess.run(line, shell=True, capture_output=True, text=True, check=False, timeout=30)
        assert "root-only-secret-text" not in done.stdout + done.stderr
        assert running(victim), "root pasted the line and killed a process the pid file named"
        # and the server itself is stopped all the same: it is found by what the plugin knows
        assert wait_gone([server]) == [], "the kept server was left running (its folder gone)"
        assert f"removed {run_dir} (stopped its server)" in done.stdout, done.stdout + done.stderr
        assert not run_dir.exists()
    finally:
        for pid in (victim, server):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_gone([server])
        shutil.rmtree(run_dir, ignore_errors=True)


def test_a_password_dsn_reaches_tests_without_its_password(
    pytester: pytest.Pytester, tmp_path: Path, password_server: PasswordServer
) -> None:
    proc, probe = start_inner(pytester, tmp_path, env={"ATLAS_TEST_DSN": password_server.url()})
    try:
        assert not password_server.leaks(probe["dsn"]) and "passfile=" in probe["dsn"]
        passfile = Path(probe["passfile"])
        assert passfile.stat().st_mode & 0o777 == 0o600 and passfile.stat().st_uid == os.geteuid()
        with psycopg.connect(probe["dsn"]) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (probe["database"],)
        # the run ends normally, and drops what it made on the shared server
        out = release_inner(proc, tmp_path)
        assert "1 passed" in out and not password_server.leaks(out), out
        assert run_databases(password_server, probe["token"]) == []
    finally:
        if proc.poll() is None:  # (an assertion above failed: the run is killed, and cannot clean up)
            stop_inner(proc)
            drop_run_databases(password_server, probe["token"])


_USES_THE_DSN = """
import subprocess

import psycopg


def test_connects(atlas_dsn):
    with psycopg.connect(atlas_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_program_started_by_a_test_connects(atlas_dsn):
    out = subprocess.run(["psql", atlas_dsn, "-Atc", "SELECT 7"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"


def test_database(atlas_db):
    assert atlas_db.execute("SELECT 1").fetchone() == (1,)
"""


@pytest.mark.parametrize("mode", ["existing server with a password", "started server over TCP"])
def test_the_passfile_of_the_dsns_wins_over_a_stray_pgpassword(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    mode: str,
) -> None:
    """libpq prefers $PGPASSWORD to the passfile the handed-out DSNs name: a CI job's $PGPASSWORD
    for another role must not make every test (and every program a test starts) log in wrongly."""
    args = ["-p", "no:randomly", *own_base]
    if mode.startswith("existing"):
        monkeypatch.setenv("ATLAS_TEST_DSN", password_server.url())
    else:
        args.append("--atlas-tcp")
    monkeypatch.setenv("PGPASSWORD", "not-the-password-of-this-server")
    pytester.makepyfile(_USES_THE_DSN)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*$PGPASSWORD was unset for this run*"])
    assert "not-the-password-of-this-server" not in result.stdout.str()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_target_still_logs_in_with_pgpassword_after_the_server_started(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    workers: str,
) -> None:
    """$PGPASSWORD is unset when the test server starts (see above), but a target URL without a
    password that relies on it (a CI job's secret for the database being checked) still logs in:
    the plugin's own connections to the target keep libpq's order (URL, then $PGPASSWORD, then the
    passfile)."""
    monkeypatch.setenv("PGPASSWORD", password_server.password)
    target = f"postgresql://postgres@127.0.0.1:{password_server.port}/postgres"
    pytester.makepyfile("def test_uses_the_server(atlas_db):\n    atlas_db.execute('SELECT 1')\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        *own_base,
        "--atlas-tcp",
        "--atlas-contract",
        "--atlas-with-tests",
        "--atlas-target",
        target,
        "-rA",
    )
    out = result.stdout.str()
    assert "$PGPASSWORD was unset for this run" in out
    assert "test_uses_the_server PASSED" in out or "1 passed" in out
    assert "password authentication failed" not in out and "no password supplied" not in out, out
    assert "table sessions does not exist in this database" in out, out  # logged in, read the catalog
    assert not password_server.leaks(out)


_DSN_IN_USER_CODE = """
import os

import pytest_atlas
from pytest_atlas.gates import GateSpec, evaluate


def test_check_unreachable():
    pytest_atlas.check_database(os.environ["ATLAS_SECRET_TARGET"])


def test_check_malformed():
    pytest_atlas.check_database(os.environ["ATLAS_SECRET_TARGET"] + "?bogus=1")


def test_check_malformed_keywords():
    pytest_atlas.check_database("host=127.0.0.1 port=1 password=" + os.environ["ATLAS_SECRET_WORD"] + " junk")


def test_check_bad_timeout():
    pytest_atlas.check_database(os.environ["ATLAS_SECRET_TARGET"] + "?connect_timeout=abc")


def test_reward_assertion():
    pytest_atlas.assert_reward_at_least(os.environ["ATLAS_SECRET_TARGET"], 0.5)


def test_regression_assertion_baseline():
    pytest_atlas.assert_no_regression([0.5, 0.6, 0.7], os.environ["ATLAS_SECRET_TARGET"])


def test_review_assertion():
    pytest_atlas.assert_review_clean(os.environ["ATLAS_SECRET_TARGET"])


def test_runtime():
    from pytest_atlas.runtime import AtlasRuntime

    AtlasRuntime(os.environ["ATLAS_SECRET_TARGET"], agent="no_such_module_here:run")


def test_gate():
    evaluate(GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5}), os.environ["ATLAS_SECRET_TARGET"])


def test_range_scan():
    from pytest_atlas.contracts import IdRange, resolve_targets, run_ranges

    (column,) = resolve_targets(["sessions.metadata"], None)
    run_ranges(os.environ["ATLAS_SECRET_TARGET"], column, [IdRange("id", None, None, 1, 1)], None)
"""


@pytest.mark.parametrize("args", [["-l", "--tb=long"], ["-l", "--tb=long", "--full-trace"], ["--tb=native"]])
def test_a_dsn_passed_to_the_public_api_never_shows_its_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Functions that take a DSN string from the user's code (check_database, the reward
    assertions, evaluate, AtlasRuntime) keep it redacted in their frames' locals (--showlocals, --full-trace) and
    turn a connection string libpq cannot parse into a clear error, not a psycopg traceback whose
    frames hold the text."""
    word = "Sup3rSecretW0rd"
    monkeypatch.setenv("ATLAS_SECRET_WORD", word)
    monkeypatch.setenv("ATLAS_SECRET_TARGET", f"postgresql://postgres:{word}@127.0.0.1:1/postgres")
    pytester.makepyfile(_DSN_IN_USER_CODE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:xdist", *args)
    result.assert_outcomes(failed=10)
    text = result.stdout.str() + result.stderr.str()
    assert word not in text
    assert "ProgrammingError" not in text and "TypeError" not in text
    result.stdout.fnmatch_lines(
        [
            "*cannot check the contracts: cannot reach PostgreSQL at postgresql://postgres:***@127.0.0.1:1/postgres*",
            "*cannot check the contracts: postgresql://postgres:***@127.0.0.1:1/postgres?bogus=1 is not a valid "
            'PostgreSQL connection string (invalid URI query parameter: "bogus")*',
            "*cannot check the contracts: (a key=value connection string libpq cannot parse) is not a valid*",
            "*cannot check the contracts: *connect_timeout=abc*connect_timeout*",
        ],
        consecutive=False,
    )
    assert text.count("cannot connect to the gate database: cannot reach PostgreSQL at postgresql://postgres:***@") >= 3


def test_pgpassword_is_never_sent_to_the_test_server_by_the_public_api(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, own_base: list[str]
) -> None:
    """The $PGPASSWORD the test server's start unset is meant for a target without a password; the
    DSNs this run hands out name their passfile, and check_database / the gates on them must log in
    with it (not offer the CI job's secret to the test server, and fail)."""
    monkeypatch.setenv("PGPASSWORD", "CiSecret-for-the-target-7788")
    pytester.makepyfile(
        "import pytest_atlas\n\n"
        "def test_check_the_test_database(atlas_dsn):\n"
        "    pytest_atlas.check_database(atlas_dsn)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", *own_base, "--atlas-tcp")
    result.assert_outcomes(passed=1)
    assert "CiSecret-for-the-target-7788" not in result.stdout.str()


@pytest.mark.parametrize("where", ["--atlas-target", "ATLAS_TEST_DSN"])
def test_a_dsn_option_value_psycopg_refuses_is_a_clear_error_without_the_password(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, own_base: list[str], where: str
) -> None:
    """libpq parses `connect_timeout=abc` but psycopg refuses it when connecting: that is a clear
    usage error naming the option, before any test runs (it was exit 7 for a check and a failed
    setup for a test), never a psycopg traceback whose frames hold the password. (The public API's
    path for such a DSN is checked above.)"""
    dsn = "postgresql://ci:W0rdOfTheCI@127.0.0.1:1/atlas?connect_timeout=abc"
    pytester.makepyfile("def test_db(atlas_db):\n    pass\n")
    if where == "ATLAS_TEST_DSN":
        monkeypatch.setenv("ATLAS_TEST_DSN", dsn)
        args = ["-l", "--tb=long"]
    else:
        args = ["--atlas-contract", "--atlas-target", dsn, "-l", "--tb=long"]
    result = pytester.runpytest_subprocess("-p", "no:randomly", *own_base, *args)
    text = result.stdout.str() + result.stderr.str()
    assert "W0rdOfTheCI" not in text
    assert "ProgrammingError" not in text and "INTERNALERROR" not in text, text
    assert "connect_timeout 'abc' is not a number of seconds" in text
    assert result.ret == pytest.ExitCode.USAGE_ERROR


_USER_CODE_QUOTES_THE_SECRET = """
import os
import warnings

import psycopg
from psycopg.conninfo import conninfo_to_dict


def _configured():
    dsn = os.environ["ATLAS_TEST_DSN"]
    return dsn, conninfo_to_dict(dsn)["password"]


def test_raises_with_the_configured_dsn(atlas_db):
    dsn, password = _configured()
    print("connecting with", dsn, "as", password)
    warnings.warn(f"slow server at {dsn}")
    raise RuntimeError(f"could not use {dsn} (password {password})")


def test_a_chained_driver_error(atlas_dsn):
    dsn, password = _configured()
    try:
        psycopg.connect(dsn.rsplit("/", 1)[0] + "/no_such_database_here")
    except psycopg.OperationalError as exc:
        raise ValueError(f"password {password} did not help") from exc


def test_the_run_s_own_password_in_tcp_mode(atlas_postgres):
    # (in TCP mode the run's server has a password of its own: read from its passfile)
    tcp = "ATLAS_TEST_DSN_FOR_THE_TEST" in os.environ
    secret = open(atlas_postgres.passfile).read().strip().rsplit(":", 1)[1] if tcp else ""
    assert secret == "", f"the run's password is {secret}"
"""


@pytest.mark.parametrize("mode", ["existing server", "started server over TCP"])
def test_a_failing_test_that_quotes_a_secret_of_the_run_shows_none(
    pytester: pytest.Pytester,
    password_server: PasswordServer,
    monkeypatch: pytest.MonkeyPatch,
    own_base: list[str],
    mode: str,
) -> None:
    """A test of the user's that fails with the DSN the run was given (or the password the run made
    for its TCP server) in its message, its locals, its chained exception, its captured output or
    a warning: no report shows the secret (terminal at --tb=long with -l and -vv, -rA, JUnit XML,
    the plugin's JSON report)."""
    monkeypatch.setenv("ATLAS_TEST_DSN", password_server.url())
    args = ["-p", "no:randomly", *own_base, "--tb=long", "-l", "-vv", "-rA", "--junitxml=junit.xml"]
    args += ["--atlas-report=report.json", "-o", "junit_logging=all"]
    if mode.startswith("started"):
        monkeypatch.delenv("ATLAS_TEST_DSN")
        monkeypatch.setenv("ATLAS_TEST_DSN_FOR_THE_TEST", password_server.url())
        args.append("--atlas-tcp")
    pytester.makepyfile(
        _USER_CODE_QUOTES_THE_SECRET.replace(
            'os.environ["ATLAS_TEST_DSN"]', 'os.environ["ATLAS_TEST_DSN_FOR_THE_TEST"]'
        )
        if mode.startswith("started")
        else _USER_CODE_QUOTES_THE_SECRET
    )
    result = pytester.runpytest_subprocess(*args)
    text = result.stdout.str() + result.stderr.str()
    written = "\n".join(
        path.read_text(errors="replace") for path in pytester.path.iterdir() if path.suffix in (".xml", ".json")
    )
    assert "RuntimeError" in text and "ValueError" in text, text  # the failures are reported
    assert "did not help" in text and "slow server at" in text and "connecting with" in text, text
    assert "testcase" in written and "did not help" in written
    if mode.startswith("existing"):
        result.assert_outcomes(failed=2, passed=1)
        assert not password_server.leaks(text), text
        assert not password_server.leaks(written), written
    else:  # the DSN the test used is its own (not the run's): only the run's own password is the plugin's
        result.assert_outcomes(failed=3)
        lines = [line for line in text.splitlines() if "AssertionError: the run's password is" in line]
        assert lines and all(line.rstrip().endswith("***") for line in lines), lines
        assert "the run's password is ***" in written and "the run's password is ***" in text
