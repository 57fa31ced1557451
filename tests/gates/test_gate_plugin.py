"""Gates as collected items, as users run them: pytester inner runs against a seeded database."""

from __future__ import annotations

import json
import random
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

# numpy refuses to be imported twice in one process: load the gate machinery here, outside the
# sys.modules snapshots that pytester takes around each in-process inner run
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .gates_seed import insert, session_row

PYPROJECT = """
[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = 0.7

[tool.pytest-atlas.gates.no-quarantine]
kind = "review"
"""


def seed_good(conn: psycopg.Connection[Any], n: int = 80, mean: float = 0.85, key: str = "k1") -> list[int]:
    rng = random.Random(n)
    ids = insert(conn, [session_row(min(1.0, round(rng.gauss(mean, 0.08), 4)), key=key, minute=i) for i in range(n)])
    conn.commit()
    return ids


def test_declared_gates_become_items_that_pass(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed_good(atlas_db)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*pyproject.toml::reward-floor PASSED*",
            "*pyproject.toml::no-quarantine PASSED*",
            "*atlas gates*",
            "gate*learning key*n*statistic*bound / interval*threshold*outcome*worst sessions*",
            "reward-floor*k1*80*mean 0.8*>= 0.7*PASS*",
        ]
    )
    assert result.ret == 0


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly", *args)


def test_a_failing_gate_fails_with_its_table(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    ids = seed_good(atlas_db, mean=0.5)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    result = run(pytester, atlas_dsn)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*threshold gate 'reward-floor': fail: 1 key (1 fail)*",
            "*reward-floor*k1*80*mean 0.49*>= 0.7*FAIL*#*",
            "*k1: mean 0.49* is below the threshold 0.7 beyond noise*",
        ]
    )
    out = result.stdout.str()
    assert sum(f"#{i}," in out or f"#{i}\n" in out for i in ids) >= 5  # five worst session ids are named


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    """The summary line's counts without warnings, which other installed plugins may add."""
    return {k: v for k, v in result.parseoutcomes().items() if k != "warnings"}


def test_inconclusive_has_its_own_outcome_and_exit_status(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    insert(atlas_db, [session_row(s, minute=i) for i, s in enumerate([0.72, 0.69, 0.74, 0.71])])
    atlas_db.commit()
    pytester.makefile(".toml", pyproject=PYPROJECT)
    result = run(pytester, atlas_dsn)
    result.stdout.fnmatch_lines(
        ["*INCONCLUSIVE*", "gates: 2 gates: 1 passed, 1 inconclusive", "*exit status 6: inconclusive check(s)*"]
    )
    assert _outcomes(result) == {"passed": 1, "inconclusive": 1}
    assert result.ret == 6
    pytester.makefile(
        ".toml", pyproject=PYPROJECT.replace("threshold = 0.7", "threshold = 0.7\nallow_inconclusive = true")
    )
    allowed = run(pytester, atlas_dsn)
    assert _outcomes(allowed) == {"passed": 1, "inconclusive": 1}
    assert allowed.ret == 0


def test_unreachable_database_is_an_error_not_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    result = run(pytester, "postgresql://gate:hunter2@127.0.0.1:1/atlas?connect_timeout=2")
    result.assert_outcomes(errors=2)
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        [
            "*cannot reach PostgreSQL at postgresql://gate:***@127.0.0.1:1/atlas?connect_timeout=2: *Connection refused*",
            "  how to fix: is the server running and listening there? check the host and port in --atlas-target*",
            "gates: 2 gates: 2 errors",
            "*exit status 7: check(s) could not be evaluated*",
        ]
    )
    assert "hunter2" not in result.stdout.str()


def test_a_gate_matching_no_sessions_fails_saying_so(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed_good(atlas_db)
    pytester.makefile(".toml", pyproject=PYPROJECT.replace("threshold = 0.7", 'threshold = 0.7\nlearning_key = "nope"'))
    result = run(pytester, atlas_dsn)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*reward-floor: FAIL: the gate's selection matched no sessions*nope*"])


REGRESSION = """
[tool.pytest-atlas.gates.no-regression]
kind = "regression"
min_effect = 0.1
"""


def test_save_a_baseline_then_compare_with_it(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    seed_good(atlas_db, n=150, mean=0.8)
    pytester.makefile(".toml", pyproject=REGRESSION)
    baseline = tmp_path / "baseline.json"
    saved = run(pytester, atlas_dsn, f"--atlas-save-baseline={baseline}")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines([f"*baseline written to {baseline}*"])
    document = json.loads(baseline.read_text())
    assert document["format"] == "pytest-atlas-baseline" and document["gates"]["no-regression"]["k1"]["n"] == 150
    same = run(pytester, atlas_dsn, f"--atlas-baseline={baseline}")
    same.assert_outcomes(passed=1)
    atlas_db.execute("DELETE FROM sessions")
    seed_good(atlas_db, n=150, mean=0.7)
    dropped = run(pytester, atlas_dsn, f"--atlas-baseline={baseline}")
    dropped.assert_outcomes(failed=1)
    dropped.stdout.fnmatch_lines(["*no-regression*k1*150*diff -0.1*FAIL*", "*mean dropped by 0.*beyond noise*"])


def test_regression_without_baseline_and_with_a_malformed_one(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    seed_good(atlas_db)
    pytester.makefile(".toml", pyproject=REGRESSION)
    missing = run(pytester, atlas_dsn)
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(
        ["*regression gate 'no-regression' has no baseline*", "*how to fix: pass --atlas-baseline PATH*"]
    )
    assert missing.ret == 7
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "pytest-atlas-baseline", "version": 1, "gates": [')
    bad = run(pytester, atlas_dsn, f"--atlas-baseline={broken}")
    bad.assert_outcomes(errors=1)
    bad.stdout.fnmatch_lines([f"*baseline file {broken}: not valid JSON (line 1*"])
    other = tmp_path / "other.json"
    other.write_text(
        '{"format": "pytest-atlas-baseline", "version": 2, "created": "2025-06-01T00:00:00+00:00", "gates": {}}'
    )
    run(pytester, atlas_dsn, f"--atlas-baseline={other}").stdout.fnmatch_lines(["*has no gate named 'no-regression'*"])


def test_accepted_regressions_and_their_expiry(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    """Expiry is judged against the real date (the day boundary itself: test_gate_declare)."""
    seed_good(atlas_db, mean=0.5)
    today = datetime.now(timezone.utc).date()

    def accept_until(until: date) -> None:
        pytester.makefile(
            ".toml",
            pyproject=PYPROJECT
            + f"""
[[tool.pytest-atlas.accept]]
gate = "reward-floor"
learning_key = "k1"
until = {until.isoformat()}
reason = "ticket 42: planner rewrite"
""",
        )

    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    accept_until(tomorrow)
    accepted = run(pytester, atlas_dsn)
    accepted.assert_outcomes(passed=2)
    accepted.stdout.fnmatch_lines(
        ["*reward-floor*FAIL (accepted)*", f"*[[]accepted: until {tomorrow.isoformat()}: ticket 42*"]
    )
    assert accepted.ret == 0
    accept_until(yesterday)
    expired = run(pytester, atlas_dsn)
    expired.assert_outcomes(passed=1, failed=1)
    expired.stdout.fnmatch_lines(
        [f"*accepted regression expired on {yesterday.isoformat()}: gate reward-floor, learning key k1*"]
    )


def test_gates_in_ini_lines_and_markers(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    seed_good(atlas_db)
    pytester.makeini("""
[pytest]
atlas_gate =
    floor-ini: kind=threshold threshold=0.6 status=["succeeded"]
""")
    pytester.makepyfile(
        test_harness="""
import pytest

@pytest.mark.atlas_gate("coach-share", kind="execution_modes", modes={"coach": 0.1})
def test_harness_ran():
    pass
"""
    )
    result = run(pytester, atlas_dsn, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_harness.py::test_harness_ran PASSED*",
            "*test_harness.py::atlas_gate?coach-share? PASSED*",
            "*tox.ini::floor-ini PASSED*",
        ]
    )


def test_a_marker_gate_whose_test_did_not_pass_is_an_error_not_a_pass(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    """The marked test runs the harness that writes the gate's sessions: when it fails, errors, is
    skipped or xfails, the sessions in the database are not the ones it should have written (old
    ones, or none), so its gate must not pass on them. (Each of these gates passed on the old rows.)"""
    seed_good(atlas_db)
    pytester.makepyfile(
        test_harness="""
import pytest

GATE = {"kind": "threshold", "threshold": 0.5}


@pytest.mark.atlas_gate("after-a-failure", **GATE)
def test_harness_fails():
    assert False, "the harness crashed"


@pytest.fixture
def broken():
    raise RuntimeError("no harness")


@pytest.mark.atlas_gate("after-an-error", **GATE)
def test_harness_errors(broken):
    pass


@pytest.mark.skip(reason="no harness today")
@pytest.mark.atlas_gate("after-a-skip", **GATE)
def test_harness_skipped():
    pass


@pytest.mark.xfail(reason="known crash")
@pytest.mark.atlas_gate("after-an-xfail", **GATE)
def test_harness_xfails():
    assert False


@pytest.mark.atlas_gate("after-a-pass", **GATE)
def test_harness_passes():
    pass
"""
    )
    result = run(pytester, atlas_dsn, "-v", "--atlas-report=report.json")
    result.assert_outcomes(passed=2, failed=1, errors=5, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_harness.py::atlas_gate?after-a-failure? ERROR*",
            "*test_harness.py::atlas_gate?after-a-pass? PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "gate 'after-a-skip' could not be evaluated:",
            "the test that declares it, test_harness.py::test_harness_skipped, was skipped: the sessions it "
            "should have written may be missing, and the gate would judge older ones",
            "  how to fix: *",
        ]
    )
    result.stdout.fnmatch_lines(["gates: 5 gates: 1 passed, 4 errors"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["summary"] == {"pass": 1, "fail": 0, "inconclusive": 0, "error": 4, "not-run": 0, "deselected": 0}
    assert result.ret == 1  # a test failed


def test_report_json_junit_and_step_summary(
    pytester: pytest.Pytester,
    atlas_db: psycopg.Connection[Any],
    atlas_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_good(atlas_db, mean=0.5)
    step_summary = tmp_path / "summary.md"
    step_summary.write_text("earlier content\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    pytester.makefile(".toml", pyproject=PYPROJECT)
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run(pytester, atlas_dsn, f"--atlas-report={report}", f"--junitxml={junit}")
    assert result.ret == 1
    document = json.loads(report.read_text())
    assert document["format"] == "pytest-atlas-report" and document["exit_status"] == 1
    assert document["summary"] == {"pass": 1, "fail": 1, "inconclusive": 0, "error": 0, "not-run": 0, "deselected": 0}
    floor = next(g for g in document["results"]["gate"] if g["name"] == "reward-floor")
    assert floor["outcome"] == "fail" and floor["rows"][0]["n"] == 80 and floor["rows"][0]["p_value"] < 0.05
    assert "hunter" not in report.read_text() and document["target"].startswith("postgresql://")
    xml = junit.read_text()
    assert '<property name="atlas_gate" value="reward-floor"' in xml
    assert '<property name="atlas_outcome" value="fail"' in xml
    markdown = step_summary.read_text()
    assert markdown.startswith("earlier content\n### pytest-atlas: `postgresql://")
    assert "**gates**: 2 gates: 1 passed, 1 failed" in markdown
    assert "| reward-floor | k1 | 80 |" in markdown and "❌ FAIL" in markdown


RECORD_PAYLOADS = """
import json, pathlib

def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == "atlas_result" and report.when == "setup":
            with pathlib.Path("payloads.jsonl").open("a") as out:
                out.write(value + "\\n")
"""


def test_charts_are_read_only_when_a_report_draws_them(
    pytester: pytest.Pytester,
    atlas_db: psycopg.Connection[Any],
    atlas_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a chart's points (the newest scores of every key) cost the gate's scan: a run that writes no
    # report drawing them does not read them, and the verdict is the same
    seed_good(atlas_db, mean=0.5)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makeconftest(RECORD_PAYLOADS)
    payloads = pytester.path / "payloads.jsonl"

    def floor(*args: str) -> dict[str, Any]:
        payloads.unlink(missing_ok=True)
        assert run(pytester, atlas_dsn, *args).ret == 1
        found = [json.loads(line) for line in payloads.read_text().splitlines()]
        return next(p for p in found if p["name"] == "reward-floor")

    bare = floor()
    assert bare["chart"] == {}
    junit = floor(f"--junitxml={pytester.path / 'junit.xml'}")
    report = floor(f"--atlas-report={pytester.path / 'report.json'}")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step = floor()
    for drawn in (junit, report, step):
        points = drawn["chart"]["rewards"]["k1"]["points"]
        assert len(points) == 80 and drawn["chart"]["rewards"]["k1"]["threshold"] == 0.7
        assert drawn["rows"] == bare["rows"]
    assert [p["name"] for p in json.loads((pytester.path / "report.json").read_text())["results"]["gate"]] == [
        "no-quarantine",
        "reward-floor",
    ]
    assert "```mermaid" in summary.read_text()


_HARNESS_UNDER_XDIST = """
import pytest

GATE = {"kind": "threshold", "threshold": 0.5}


@pytest.mark.parametrize("i", range(6))
def test_other(i):
    pass


@pytest.mark.atlas_gate("after-a-failure", **GATE)
def test_harness_fails():
    assert False, "the harness crashed"


@pytest.mark.atlas_gate("after-a-pass", **GATE)
def test_harness_passes():
    pass


@pytest.mark.parametrize("j", range(6))
def test_more(j):
    pass
"""


@pytest.mark.parametrize("dist", [[], ["--dist", "load"], ["--dist", "loadscope"], ["--dist", "loadfile"]])
def test_under_xdist_a_marker_gate_knows_how_its_test_went(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, dist: list[str]
) -> None:
    """Under pytest-xdist (a plain ``-n`` is load scheduling, which --atlas-gates turns into
    loadscope; loadscope, loadfile) a marker gate runs on the worker that ran the test declaring it,
    after it: the gate of a failed harness run is an
    error, never a pass on the sessions already there (it passed whenever another worker took it)."""
    seed_good(atlas_db)
    pytester.makepyfile(test_harness=_HARNESS_UNDER_XDIST)
    for _ in range(3):  # the workers take items in another order each time
        result = run(pytester, atlas_dsn, "-n", "2", "--atlas-with-tests", "-v", *dist)
        result.assert_outcomes(passed=14, failed=1, errors=1)
        out = result.stdout.str()
        assert re.search(r"\[gw\d\] .* ERROR test_harness.py::atlas_gate\[after-a-failure\]", out), out
        assert re.search(r"\[gw\d\] .* PASSED test_harness.py::atlas_gate\[after-a-pass\]", out), out


def test_a_marker_gate_whose_test_did_not_run_is_an_error(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    """Deselected (``-k``), or run by another worker (``--dist loadfile`` and the other schedulings
    that may split them): the gate cannot know how its harness run went, so it is not evaluated."""
    seed_good(atlas_db)
    pytester.makepyfile(test_harness=_HARNESS_UNDER_XDIST)
    result = run(pytester, atlas_dsn, "--atlas-with-tests", "-k", "after-a-pass", "-rE")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the test that declares it, test_harness.py::test_harness_passes, did not run in this process*"]
    )


def test_a_gate_name_declared_twice_is_an_error_that_says_how_to_fix_it(
    pytester: pytest.Pytester, atlas_dsn: str
) -> None:
    pytester.makepyfile(
        test_harness="""
import pytest

@pytest.mark.parametrize("model", ["a", "b"])
@pytest.mark.atlas_gate("floor", kind="threshold", threshold=0.5)
def test_harness(model):
    pass
"""
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error of its module
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_harness.py*",
            "*gate name 'floor' is declared twice (test_harness.py::test_harness?b?; first in test_harness.py::test_harness?a?)*",
            "*a marker on a parametrized test declares its gate once per parameter: give each parameter its "
            "own gate (pytest.param(..., marks=pytest.mark.atlas_gate(...))), or declare the gate once in "
            "pyproject.toml*",
        ]
    )


def test_gates_under_xdist(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    seed_good(atlas_db, mean=0.5)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.makepyfile(test_other="def test_one():\n    pass\n")
    report = tmp_path / "report.json"
    result = run(pytester, atlas_dsn, "-n", "2", f"--atlas-report={report}", "--atlas-with-tests")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*atlas gates*", "*no-quarantine*k1*PASS*", "*reward-floor*k1*80*FAIL*"])
    document = json.loads(report.read_text())
    assert sorted(g["name"] for g in document["results"]["gate"]) == ["no-quarantine", "reward-floor"]


def test_usage_errors(pytester: pytest.Pytester, atlas_dsn: str) -> None:
    result = pytester.runpytest("--atlas-gates", "-p", "no:randomly")
    result.stderr.fnmatch_lines(
        [
            "*--atlas-gates needs the database to check: pass --atlas-target DSN, set $ATLAS_TARGET_DSN, or set the ini key atlas_target*"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshhold = 0.7\n')
    typo = run(pytester, atlas_dsn)
    typo.stderr.fnmatch_lines(["*gate 'floor' (threshold): unknown option 'threshhold'*"])
    assert typo.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makefile(".toml", pyproject="[tool.pytest]\n")
    nothing = run(pytester, atlas_dsn)
    nothing.stderr.fnmatch_lines(["*--atlas-gates was given but no gate is declared*"])
    assert nothing.ret == pytest.ExitCode.USAGE_ERROR


def test_report_collects_assertion_failures_and_other_areas_results(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeconftest("""
import pytest
from pytest_atlas._properties import result_property

@pytest.fixture
def contract_result(request):
    request.node.user_properties.append(result_property("contract", {"name": "sessions.reward", "outcome": "pass"}))
""")
    pytester.makepyfile(
        test_rewards="""
from pytest_atlas import assert_reward_at_least

def test_floor():
    assert_reward_at_least([0.2, 0.3, 0.25, 0.3, 0.2], 0.7)

def test_contract(contract_result):
    pass
"""
    )
    report = tmp_path / "report.json"
    result = pytester.runpytest("-p", "no:randomly", f"--atlas-report={report}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RewardBelowThreshold: threshold gate 'reward-at-least': fail*"])
    document = json.loads(report.read_text())
    (assertion,) = document["results"]["assertion"]
    assert assertion["name"] == "test_rewards.py::test_floor: reward-at-least" and assertion["outcome"] == "fail"
    assert document["results"]["contract"] == [{"kind": "contract", "name": "sessions.reward", "outcome": "pass"}]
    assert result.ret == 1


def test_a_gate_error_quoting_a_dsn_of_another_database_shows_no_password(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    """A baseline path that holds a DSN of some other database (pasted into the ini file's
    atlas_baseline): the gate's error, a message of the plugin's, names the file without that
    password (the run does not know it: it is no DSN of the run's), at every traceback level and
    in the written reports, and still shows its user and host."""
    seed_good(atlas_db)
    secret = "UnknownBaselinePw7"
    pytester.makefile(".toml", pyproject=REGRESSION)
    pytester.makeini(f"[pytest]\natlas_baseline = postgresql://other:{secret}@elsewhere/db\n")
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run(
        pytester,
        atlas_dsn,
        "--tb=long",
        "-vv",
        "--showlocals",
        "-rA",
        f"--atlas-report={report}",
        f"--junitxml={junit}",
    )
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(errors=1)
    assert "baseline file" in output and "other:***@elsewhere" in output, output
    assert secret not in output, output
    assert secret not in report.read_text() and secret not in junit.read_text()
