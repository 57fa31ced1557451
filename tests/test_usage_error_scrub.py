"""A usage error never prints a password the run knows: every message the plugin builds from an
exception (a refused option value, a declaration, a path it cannot write) passes through the
scrubber, once every DSN of the run (command line, environment, ini) is known, whatever the order of
the options, and at ``--tb=long -vv --showlocals``. Each case runs in a fresh process (a process
remembers the secrets it saw), with a password of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TRIVIAL = "def test_nothing():\n    pass\n"


def target(secret: str) -> str:
    return f"postgresql://ci:{secret}@127.0.0.1:1/atlas"


#: (command-line arguments, ini lines, environment, pyproject, what the message must say), each
#: with {pw} for the case's password and {dsn} for a DSN holding it
CASES = {
    # the password pasted into another option (a shell mix-up): argparse refuses it
    "after-the-target": (
        ["--atlas-target", "{dsn}", "--atlas-contract-since", "{pw}"],
        "",
        {},
        "",
        "--atlas-contract-since",
    ),
    # ... before the DSN that makes it a secret is parsed
    "before-the-target": (
        ["--atlas-contract-since", "{pw}", "--atlas-target", "{dsn}"],
        "",
        {},
        "",
        "--atlas-contract-since",
    ),
    # the DSN given to an option that takes a path (it shows as postgresql:/..., one slash)
    "dsn-as-a-path": (["--atlas-pg-bin", "{dsn}"], "", {}, "", "--atlas-pg-bin"),
    # refused in pytest_configure: a report folder that cannot be made
    "report-path": (["--atlas-target", "{dsn}", "--atlas-report", "/proc/{pw}/r.json"], "", {}, "", "--atlas-report"),
    # the DSN from the environment, the bad value on the command line
    "env-target": (["--atlas-contract-since", "{pw}"], "", {"ATLAS_TARGET_DSN": "{dsn}"}, "", "--atlas-contract-since"),
    # the DSN on the command line, the bad value in the ini file
    "ini-value": (["--atlas-dsn", "{dsn}"], "atlas_contract_since = {pw}", {}, "", "ini atlas_contract_since"),
    # a gate declaration that quotes the DSN (--atlas-gates: read_pyproject's ConfigError)
    "gate-declaration": (
        ["--atlas-gates", "--atlas-target", "{dsn}"],
        "",
        {},
        '[tool.pytest-atlas.gates.g]\nkind = "review"\nsince = "{dsn}"\n',
        "gate 'g'",
    ),
    # --atlas-cache-info reads the settings itself
    "cache-info": (
        ["--atlas-cache-info", "--atlas-target", "{dsn}", "--atlas-contract-since", "{pw}"],
        "",
        {},
        "",
        "--atlas-contract-since",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_usage_error_shows_no_password(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    args, ini, env, pyproject, said = CASES[case]
    secret = f"Scrub{case.replace('-', '')}Pw9"
    fill = {"pw": secret, "dsn": target(secret)}
    pytester.makepyfile(test_nothing=TRIVIAL)
    if ini:
        pytester.makeini("[pytest]\n" + ini.format(**fill) + "\n")
    if pyproject:
        pytester.makefile(".toml", pyproject=pyproject.replace("{dsn}", fill["dsn"]))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**fill))
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--tb=long", "-vv", "--showlocals", *(arg.format(**fill) for arg in args)
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert said in output, output  # the message still says what was wrong
    assert secret not in output, output
    assert "Traceback" not in output, output


#: (command-line arguments, ini lines, pyproject, what the message must say): each value holds a
#: DSN of another database, {other} (its password {pw} is none the run knows: not the target's,
#: not a configured DSN's, not given to an option that takes a DSN), and the message must still
#: show its user and host ("other:***@elsewhere")
UNKNOWN = {
    # a gate's option that takes a date, given a DSN (pyproject)
    "gate-option": (
        ["--atlas-gates", "--atlas-target", "{dsn}"],
        "",
        '[tool.pytest-atlas.gates.g]\nkind = "review"\nsince = "{other}"\n',
        "gate 'g'",
    ),
    # a DSN as a gate's name (pyproject), quoted three times in the message
    "gate-name": (
        ["--atlas-gates", "--atlas-target", "{dsn}"],
        "",
        '[tool.pytest-atlas.gates."{other}"]\nkind = "threshold"\nthreshold = 0.7\n',
        "is not usable",
    ),
    # an atlas_gate ini line without its "NAME:": the message quotes the URL without its scheme
    "ini-gate-line": (
        ["--atlas-gates", "--atlas-target", "{dsn}"],
        "atlas_gate = kind=threshold threshold={other}",
        "",
        "atlas_gate",
    ),
    # an ini value resolve_settings refuses
    "ini-value": ([], "atlas_contract_since = {other}", "", "atlas_contract_since"),
    # an ini value pytest's own typed reading refuses (a bool)
    "ini-bool": ([], "atlas_tcp = {other}", "", "ini atlas_tcp"),
    # a command-line value in key=value form (no "://": the option's parser does not take it for a DSN)
    "cli-pairs": (
        ["--atlas-contract-since", "host=elsewhere user=other password={pw} dbname=db"],
        "",
        "",
        "--atlas-contract-since",
    ),
}


@pytest.mark.parametrize("case", list(UNKNOWN))
def test_a_usage_error_shows_no_password_of_a_dsn_the_run_does_not_know(pytester: pytest.Pytester, case: str) -> None:
    """A value the user wrote that holds a DSN of some other database (not the run's): its
    password is no secret the run knows, yet the message that quotes the value hides it, and still
    says what was wrong and shows the user and host."""
    args, ini, pyproject, said = UNKNOWN[case]
    secret = f"Unknown{case.replace('-', '')}Pw7"
    fill = {"pw": secret, "dsn": target("KnownTargetPw5"), "other": f"postgresql://other:{secret}@elsewhere/db"}
    pytester.makepyfile(test_nothing=TRIVIAL)
    if ini:
        pytester.makeini("[pytest]\n" + ini.format(**fill) + "\n")
    if pyproject:
        pytester.makefile(".toml", pyproject=pyproject.replace("{other}", fill["other"]))
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--tb=long", "-vv", "--showlocals", *(arg.format(**fill) for arg in args)
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert said in output, output  # the message still says what was wrong
    assert secret.lower() not in output.lower(), output  # (pytest lower-cases a bool it refuses)
    shown = "user=other password=***" if case == "cli-pairs" else "other:***@elsewhere"
    assert shown in output, output  # ... and what it quotes, but the password
    assert "Traceback" not in output, output


def test_a_refused_gate_marker_shows_no_password_of_a_dsn_the_run_does_not_know(pytester: pytest.Pytester) -> None:
    """A gate marker whose value is a DSN of another database is a collection error of its module,
    made by the plugin: its message hides that password too, and still names the gate and option."""
    secret = "UnknownMarkerPw7"
    pytester.makepyfile(
        test_marked=(
            "import pytest\n\n"
            f"@pytest.mark.atlas_gate('m', kind='threshold', threshold='postgresql://other:{secret}@elsewhere/db')\n"
            "def test_marked():\n    pass\n"
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--tb=long", "-vv", "--showlocals", "--atlas-gates", "--atlas-target", target("KnownPw5")
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output  # a collection error: nothing runs
    assert "gate 'm': threshold must be a number" in output, output
    assert "other:***@elsewhere" in output, output
    assert secret.lower() not in output.lower(), output


@pytest.mark.parametrize("run_args", [[], ["--atlas-cache-info"]], ids=["header", "cache-info"])
def test_a_folder_that_holds_a_dsn_of_another_database_shows_no_password(
    pytester: pytest.Pytester, run_args: list[str]
) -> None:
    """A DSN pasted into the ini file's cache folder (a path: it is made as written): the report
    header and ``--atlas-cache-info``, which name that folder, show no password of it, and still
    show its user and host."""
    secret = "UnknownFolderPw7"
    pytester.makepyfile(test_nothing=TRIVIAL)
    pytester.makeini(f"[pytest]\natlas_cache_dir = postgresql://other:{secret}@elsewhere/cache\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--tb=long", "-vv", "--showlocals", *run_args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK, output
    assert "other:***@elsewhere/cache" in output, output
    assert secret not in output, output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["kept", "--remove", "{other}"], "not a kept server folder of yours"),  # a DSN where a folder goes
        (["cache", "info", "--cache-dir", "{other}"], "persistent cache:"),
        (["cache", "{other}"], "invalid choice"),  # argparse's own message, quoting the value
    ],
    ids=["kept-remove", "cache-dir", "argparse"],
)
def test_the_command_line_tool_shows_no_password_of_a_dsn_given_where_it_does_not_belong(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """``python -m pytest_atlas`` prints the folders and values it was given (and argparse quotes
    a value it refuses): a DSN of another database pasted there shows no password."""
    secret = "UnknownToolPw7"
    other = f"postgresql://other:{secret}@elsewhere/db"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_atlas", *(arg.format(other=other) for arg in args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert said in output and "other:***@elsewhere" in output, output
    assert secret not in output, output
