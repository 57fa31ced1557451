"""A usage error never prints a password the run knows: every message the plugin builds from an
exception (a refused option value, a declaration, a path it cannot write) passes through the
scrubber, once every DSN of the run (command line, environment, ini) is known, whatever the order of
the options, and at ``--tb=long -vv --showlocals``. Each case runs in a fresh process (a process
remembers the secrets it saw), with a password of its own."""

from __future__ import annotations

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
