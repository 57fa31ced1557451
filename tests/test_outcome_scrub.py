"""A test's outcome shows no secret of the run: an xfail or skip reason, a value given to
``record_testsuite_property`` or ``record_xml_attribute``, a parametrize id and a password quoted in
a spelling of its own (percent-escapes in either case, or none) lose the passwords of
``--atlas-dsn``, ``--atlas-target`` and ``$PGPASSWORD`` in the terminal (``-rA -vv``) and in JUnit
XML, with and without pytest-xdist. No database is needed: nothing listens at the DSNs' port."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_atlas._dsn import Dsn, scrub, secrets_of

DSN = "postgresql://reader:Dsn_Pa55word_77@127.0.0.1:1/atlas"
TARGET = "postgresql://ci:Target_Pa55_99@127.0.0.1:1/atlas"
PGPASSWORD = "Ci_Pgpassw0rd_88"
SECRETS = ("Dsn_Pa55word_77", "Target_Pa55_99", PGPASSWORD)

XDIST = pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[pytest.RunResult, str, str]:
    """A run with the three secrets configured, every report switch on; (result, output, JUnit XML)."""
    monkeypatch.setenv("PGPASSWORD", PGPASSWORD)
    junit = pytester.path / "junit.xml"
    junit.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-rA", "-vv", f"--junitxml={junit}", "--atlas-dsn", DSN, "--atlas-target", TARGET, *args
    )
    text = result.stdout.str() + result.stderr.str()
    written = junit.read_text(encoding="utf-8") if junit.exists() else ""
    for secret in SECRETS:
        assert secret not in text, text
        assert secret not in written, written
    return result, text, written


_REASONS = """
import os

import pytest

DSN_PW = "Dsn_Pa55word_77"
TARGET_PW = "Target_Pa55_99"
PG_PW = os.environ["PGPASSWORD"]


def test_xfail_call():
    pytest.xfail(f"broken with {DSN_PW}")


@pytest.mark.xfail(reason=f"marked for {PG_PW}")
def test_xfail_mark():
    assert False


@pytest.mark.xfail(reason=f"passes with {TARGET_PW}")
def test_xpass():
    pass


@pytest.mark.xfail(reason=f"strict with {DSN_PW}", strict=True)
def test_xpass_strict():
    pass


def test_skip_call():
    pytest.skip(f"skipped for {DSN_PW}")


@pytest.mark.skipif(True, reason=f"skipif for {PG_PW}")
def test_skipif():
    pass
"""


@XDIST
def test_xfail_and_skip_reasons_show_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """``pytest.xfail``, ``xfail(reason=...)`` (XFAIL and XPASS), ``pytest.skip``, ``skipif`` and a
    module skipped while it is collected."""
    pytester.makepyfile(
        test_reasons=_REASONS,
        test_module_skip="import pytest\n\npytest.skip('module skipped for Target_Pa55_99', allow_module_level=True)\n",
    )
    result, text, written = run(pytester, monkeypatch, *xdist)
    result.assert_outcomes(xfailed=2, xpassed=1, failed=1, skipped=3)
    for line in (
        "XFAIL test_reasons.py::test_xfail_call - broken with ***",
        "XFAIL test_reasons.py::test_xfail_mark - marked for ***",
        "XPASS test_reasons.py::test_xpass - passes with ***",
        "FAILED test_reasons.py::test_xpass_strict - [XPASS(strict)] strict with ***",
        "skipped for ***",
        "skipif for ***",
        "module skipped for ***",
    ):
        assert line in text, text
    if not xdist:  # (xdist's verbose lines give no reason)
        assert "XFAIL (broken with ***)" in text and "XPASS (passes with ***)" in text, text
    for message in ('message="broken with ***"', 'message="marked for ***"', 'message="skipped for ***"'):
        assert message in written, written
    assert "module skipped for ***" in written, written


_PROPERTIES = """
def test_properties(record_testsuite_property, record_xml_attribute, record_property):
    record_testsuite_property("suite_secret", "suite Dsn_Pa55word_77")
    record_xml_attribute("attr_secret", "attr Target_Pa55_99")
    record_property("case_secret", "case Ci_Pgpassw0rd_88")
"""


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_suite_properties_and_xml_attributes_show_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    """``record_testsuite_property`` values are kept by JUnit XML's writer until the run ends, and
    ``record_xml_attribute`` values (written with ``junit_family = xunit1``) until the test's end;
    neither passes through a report. (Under pytest-xdist both do nothing in a worker.)"""
    pytester.makepyfile(test_properties=_PROPERTIES)
    result, _, written = run(pytester, monkeypatch, "-o", f"junit_family={family}", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    assert '<property name="suite_secret" value="suite ***" />' in written, written
    assert '<property name="case_secret" value="case ***" />' in written, written
    if family == "xunit1":
        assert 'attr_secret="attr ***"' in written, written


_PARAMETRIZED = """
import os

import pytest

PG_PW = os.environ["PGPASSWORD"]


@pytest.mark.parametrize("value", ["id-Dsn_Pa55word_77", PG_PW, "Target_Pa55_99", "plain"])
def test_value_ids(value):
    assert value == "plain"


@pytest.mark.parametrize("n", [1, 2], ids=[f"explicit-{PG_PW}", "two"])
def test_explicit_ids(n):
    assert n == 2


@pytest.mark.parametrize("n", [pytest.param(1, id="param Dsn_Pa55word_77"), 2])
def test_param_ids(n):
    assert n == 2


class TestInAClass:
    @pytest.mark.parametrize("n", [1], ids=["in-Target_Pa55_99"])
    def test_method(self, n):
        assert n == 2
"""

#: a reporter that writes every report as pytest serializes it (as pytest-reportlog does)
_REPORT_LOG = """
import json

import pytest


def pytest_configure(config):
    global CONFIG
    CONFIG = config


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    with open("reports.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(CONFIG.hook.pytest_report_to_serializable(config=CONFIG, report=report), default=str) + "\\n")
"""

#: the ids as shown: two ids that are secrets alone get pytest's numbering for duplicate ids
_SHOWN_FAILED = [
    "test_ids.py::test_value_ids[id-***]",
    "test_ids.py::test_value_ids[***0]",
    "test_ids.py::test_value_ids[***1]",
    "test_ids.py::test_explicit_ids[explicit-***]",
    "test_ids.py::test_param_ids[param ***]",
    "test_ids.py::TestInAClass::test_method[in-***]",
]


@XDIST
def test_parametrize_ids_show_no_secret_and_last_failed_reruns_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """A parametrize id (from a value, ``ids=``, ``pytest.param(id=...)``) holding a secret is shown
    without it wherever the test's id is: the progress lines, failure headlines, ``-rA``, JUnit
    XML's names, ``--collect-only``; every worker names it alike, and ``--lf`` reruns exactly the
    tests that failed."""
    pytester.makepyfile(test_ids=_PARAMETRIZED)
    pytester.makeconftest(_REPORT_LOG)
    result, text, written = run(pytester, monkeypatch, *xdist)
    result.assert_outcomes(passed=3, failed=6)
    logged = (pytester.path / "reports.jsonl").read_text(encoding="utf-8")
    assert '"test_ids.py::test_value_ids[id-***]"' in logged, logged
    assert not [secret for secret in SECRETS if secret in logged], logged
    for nodeid in _SHOWN_FAILED:
        assert f"FAILED {nodeid} - " in text, text
    assert "_ test_value_ids[id-***] _" in text and "_ TestInAClass.test_method[in-***] _" in text, text
    assert 'name="test_value_ids[id-***]"' in written and 'name="test_value_ids[***1]"' in written, written
    assert 'name="test_param_ids[param ***]"' in written, written

    rerun, text, _ = run(pytester, monkeypatch, "--lf", *xdist)
    rerun.assert_outcomes(failed=6)
    assert "rerun previous 6 failures" in text or xdist, text
    assert sorted(re.findall(r"^FAILED (\S+(?: \S+\])?) - ", text, re.MULTILINE)) == sorted(_SHOWN_FAILED), text

    collected, text, _ = run(pytester, monkeypatch, "--collect-only", "-p", "no:cacheprovider")
    assert collected.ret == pytest.ExitCode.OK, text
    assert "<Function test_value_ids[***0]>" in text and "<Function test_param_ids[param ***]>" in text, text


_QUOTES_OTHERWISE = """
import os


def test_quotes_the_dsn_s_password():
    raise RuntimeError("cannot log in as reader:Wr1tten%2fPw_9 or Wr1tten%2FPw%5f9 or Wr1tten/Pw%5F9")


def test_quotes_pgpassword_as_a_url_spells_it():
    raise RuntimeError("cannot log in with " + os.environ["PGPASSWORD"].replace("/", "%2f"))
"""


@XDIST
def test_a_password_in_another_spelling_shows_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """A DSN that spells its password with a lower-case escape (``%2f``) and an escape no character
    needs (``%5F`` for ``_``), and a test that quotes it in another spelling (one escape kept, one
    not; another case); ``$PGPASSWORD`` quoted as a URL would spell it."""
    pytester.makepyfile(test_quotes=_QUOTES_OTHERWISE)
    monkeypatch.setenv("PGPASSWORD", "Pg/Passw0rd_66")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-rA",
        "--tb=long",
        "--junitxml=junit.xml",
        "--atlas-dsn",
        "postgresql://reader:Wr1tten%2fPw%5F9@127.0.0.1:1/atlas",
        *xdist,
    )
    text = result.stdout.str() + result.stderr.str()
    written = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    result.assert_outcomes(failed=2)
    for shown in ("cannot log in as reader:*** or *** or ***", "cannot log in with ***"):
        assert shown in text and shown in written, text
    for part in ("Wr1tten", "Pw%5", "Pw_9", "Passw0rd"):
        assert part not in text and part not in written, text


_LOGS = """
import logging
import os

import pytest

log = logging.getLogger("app")


@pytest.fixture
def logged_around():
    log.warning("setting up for Target_Pa55_99")
    yield
    log.warning("tearing down for %s", os.environ["PGPASSWORD"])


def test_logs_the_secrets(logged_around, caplog):
    log.warning("connecting with Dsn_Pa55word_77")
    try:
        raise RuntimeError("refused for Target_Pa55_99")
    except RuntimeError:
        log.exception("the connection failed")
    assert "Dsn_Pa55word_77" in caplog.records[0].getMessage()  # (the test's own records keep it)
    assert False
"""


@XDIST
def test_live_logs_and_the_log_file_show_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Live logs (``log_cli``) and ``--log-file`` are written as each record is logged, not from a
    report: their lines lose the run's secrets too (messages, arguments, a logged traceback), in
    every phase; the records a test's ``caplog`` holds are left as they were."""
    pytester.makepyfile(test_logs=_LOGS)
    log_file = pytester.path / "run.log"
    result, text, _ = run(
        pytester, monkeypatch, "-o", "log_cli=true", "--log-cli-level=INFO", f"--log-file={log_file}", *xdist
    )
    result.assert_outcomes(failed=1)
    assert "assert False" in text, text  # (it failed where it should: caplog kept the secret)
    written = log_file.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in written, written
    for shown in ("connecting with ***", "setting up for ***", "tearing down for ***", "RuntimeError: refused for ***"):
        if not xdist:  # (xdist's workers show no live logs; each writes the log file)
            assert shown in text, text
        assert shown in written, written


_STOPPED = """
import os

import pytest


def test_stops_the_run():
    pytest.exit(f"stopping: {os.environ['PGPASSWORD']} and Target_Pa55_99")


def test_interrupts_the_run():
    raise KeyboardInterrupt(f"interrupted: {os.environ['PGPASSWORD']} and Dsn_Pa55word_77")


class Frozen(KeyboardInterrupt):
    @property
    def args(self):
        return (f"interrupted: {os.environ['PGPASSWORD']} and Dsn_Pa55word_77",)

    def __str__(self):
        return self.args[0]


def test_interrupts_with_fixed_arguments():
    raise Frozen()
"""


@pytest.mark.parametrize("full_trace", [[], ["--full-trace"]], ids=["short", "full trace"])
@pytest.mark.parametrize("how", ["exit", "interrupt", "fixed"])
def test_a_run_stopped_by_a_test_shows_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, full_trace: list[str]
) -> None:
    """A test that ends the run (``pytest.exit(reason)``, ``KeyboardInterrupt``) with a secret in
    its message: the banner pytest prints for it (and ``--full-trace``'s traceback) shows none, the
    message otherwise as the test wrote it."""
    pytester.makepyfile(test_stopped=_STOPPED)
    name = {"exit": "test_stops_the_run", "interrupt": "test_interrupts_the_run", "fixed": "with_fixed"}[how]
    result, text, _ = run(pytester, monkeypatch, "-k", name, *full_trace)
    assert result.ret == pytest.ExitCode.INTERRUPTED, text
    shown = "stopping: *** and ***" if how == "exit" else "interrupted: *** and ***"
    assert shown in text, text


_STOPPING_HOOKS = """
import os

import pytest


def pytest_{hook}({argument}):
    pytest.exit(f"stopped in {hook}: {{os.environ['PGPASSWORD']}} and Dsn_Pa55word_77", returncode=5)
"""


@pytest.mark.parametrize(
    ("hook", "argument"),
    [("sessionstart", "session"), ("sessionfinish", "session"), ("terminal_summary", "terminalreporter")],
)
def test_a_conftest_hook_that_stops_the_run_shows_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, hook: str, argument: str
) -> None:
    """``pytest.exit(reason)`` in a conftest's session start, session finish or terminal summary,
    which pytest prints itself (``Exit: <reason>``), not through the interruption's hook: the reason
    shows no secret, and the run's exit status is the one asked for."""
    pytester.makeconftest(_STOPPING_HOOKS.format(hook=hook, argument=argument))
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result, text, _ = run(pytester, monkeypatch)
    assert result.ret == 5, text
    assert f"stopped in {hook}: *** and ***" in text, text


_BROKEN_CONFTEST = """
import os

raise RuntimeError(f"conftest broke: {os.environ['PGPASSWORD']} (Dsn_Pa55word_77, {os.environ['ATLAS_TARGET_DSN']})")
"""


@XDIST
def test_a_conftest_that_fails_to_load_shows_no_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """A conftest pytest loads before the run (the rootdir's, an argument's) that raises with a secret
    in its message: the error pytest prints names the conftest and the error, without the secret,
    and the run is a usage error as before; a conftest that fails without a secret is shown by
    pytest unchanged."""
    pytester.makeconftest(_BROKEN_CONFTEST)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    monkeypatch.setenv("ATLAS_TARGET_DSN", "postgresql://env:Env_Target_Pw_42@127.0.0.1:1/atlas")
    result, text, _ = run(pytester, monkeypatch, *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "Env_Target_Pw_42" not in text, text
    assert "conftest.py" in text and "RuntimeError: conftest broke: *** (***, postgresql://env:***@" in text, text

    printing = "import os\nprint('conftest sees', os.environ['PGPASSWORD'])\n" + _BROKEN_CONFTEST
    pytester.makeconftest(printing)  # (what it printed is shown before the error: scrubbed too)
    printed, text, _ = run(pytester, monkeypatch, *xdist)
    assert printed.ret == pytest.ExitCode.USAGE_ERROR and "conftest sees ***" in text, text
    helped, text, _ = run(pytester, monkeypatch, "--help", *xdist)  # (--help works, as pytest lets it)
    assert helped.ret == pytest.ExitCode.OK and "--atlas-dsn" in text, text

    monkeypatch.delenv("ATLAS_TARGET_DSN")
    pytester.makeconftest("raise RuntimeError('conftest broke plainly')\n")
    plain, text, _ = run(pytester, monkeypatch, *xdist)
    assert plain.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "ImportError while loading conftest" in text and "RuntimeError: conftest broke plainly" in text, text


def test_the_run_s_secret_is_found_in_any_spelling() -> None:
    """Each character as itself or as a percent-escape of its UTF-8 bytes, in either case."""
    Dsn("postgresql://u:Sp3lt%2fpw%5F%c3%a9x@h/db")  # the settings hold it: the run knows its password
    for spelling in (
        "Sp3lt/pw_éx",
        "Sp3lt%2Fpw_%C3%A9x",
        "Sp3lt%2fpw%5F%c3%a9x",
        "%53p3lt%2F%70w_é%78",
        "Sp3lt/pw%5f%C3%a9x",
    ):
        assert scrub(f"failed for {spelling}: refused") == "failed for ***: refused", spelling
    assert scrub("Sp3lt/pw_éxy Sp3lt%2Fpw") == "Sp3lt/pw_éxy Sp3lt%2Fpw"  # (a longer word, a part: left)


def _spelt(password: str, draw: st.DrawFn) -> str:
    """``password`` with each character as itself or as %XX escapes (each hex digit in either case)."""
    out = []
    for char in password:
        if draw(st.booleans()):
            out.append(char)
            continue
        for byte in char.encode("utf-8"):
            out.append("%" + "".join(draw(st.sampled_from([d.lower(), d.upper()])) for d in f"{byte:02X}"))
    return "".join(out)


_PASSWORD = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), min_size=4, max_size=16)


@given(password=_PASSWORD, data=st.data())
def test_any_spelling_of_a_password_is_found(password: str, data: st.DataObject) -> None:
    """The password of a DSN, written there in any spelling, is found in text in any spelling."""
    from pytest_atlas._dsn import secret_pattern

    written = data.draw(st.sampled_from([password, _spelt(password, data.draw)]))
    spelling = _spelt(password, data.draw)
    pattern = secret_pattern(secrets_of(f"postgresql://u:{written}@h/db"))
    assert pattern is not None
    assert pattern.sub("***", f"failed for {spelling} -") == "failed for *** -", (written, spelling)
