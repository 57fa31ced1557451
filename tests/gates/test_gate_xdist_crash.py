"""A marker gate whose harness crashes, under pytest-xdist, with the contract checks in the same
run: the run finishes (no INTERNALERROR), the gate is an error item, and the JSON report lists it;
counts equal outcomes."""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from .gates_seed import insert, session_row

HARNESS = """
import os

import pytest


@pytest.mark.atlas_gate("after-a-crash", kind="threshold", threshold=0.5)
def test_harness_crashes():
    {crash}


@pytest.mark.atlas_gate("after-a-pass", kind="threshold", threshold=0.5)
def test_harness_passes():
    pass
"""


def _seed(conn: psycopg.Connection[Any]) -> None:
    rng = random.Random(3)
    insert(conn, [session_row(min(1.0, round(rng.gauss(0.85, 0.05), 4)), minute=i) for i in range(60)])
    conn.commit()


@pytest.mark.parametrize("crash", ['raise RuntimeError("the harness crashed")', "os._exit(3)"])
def test_a_crashing_harness_under_xdist_with_contracts_is_an_error_in_the_report(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, crash: str
) -> None:
    _seed(atlas_db)
    pytester.makepyfile(test_harness=HARNESS.format(crash=crash))
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--atlas-gates",
        "--atlas-contract",
        f"--atlas-target={atlas_dsn}",
        f"--atlas-report={report}",
        "-p",
        "no:randomly",
        "-n",
        "2",
        "-rfE",
    )
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out, out
    assert result.ret == 1, out  # the harness test failed (or its worker crashed)
    data = json.loads(report.read_text())
    gates = {entry["name"]: entry for entry in data["results"]["gate"]}
    assert set(gates) == {"after-a-crash", "after-a-pass"}, out
    assert gates["after-a-crash"]["outcome"] == "error", gates["after-a-crash"]
    assert gates["after-a-pass"]["outcome"] == "pass"
    assert len(data["results"]["contract"]) == 17
    # counts equal outcomes: the harness once (failed, or its worker crashed once, never run again),
    # its gate an error; 17 contract checks, the other harness and its gate passed
    assert {k: v for k, v in result.parseoutcomes().items() if k != "warnings"} == {
        "failed": 1,
        "errors": 1,
        "passed": 19,
    }, out
    result.stdout.fnmatch_lines(["gates: 2 gates: 1 passed, 1 error"])
    assert data["exit_status"] == 1
    assert data["summary"] == {"pass": 18, "fail": 0, "inconclusive": 0, "error": 1, "not-run": 0, "deselected": 0}


KILLED = """
import os
import signal

import pytest


@pytest.mark.atlas_gate("after-a-kill", kind="threshold", threshold=0.7)
def test_harness_is_killed():
    os.kill(os.getpid(), signal.SIGKILL)


def test_after_the_kill():
    pass
"""

OTHER = """
import pytest


@pytest.mark.atlas_gate("elsewhere", kind="threshold", threshold=0.7)
def test_elsewhere():
    pass
"""

CONFIGURED = """
[tool.pytest-atlas.gates.floor]
kind = "threshold"
threshold = 0.7

[tool.pytest-atlas.gates.floor2]
kind = "threshold"
threshold = 0.5
allow_inconclusive = true
"""


def test_a_killed_worker_whose_module_has_one_item_left_does_not_hang_the_run(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    # The killed worker held two scopes (its module and the configured gates); its replacement
    # got the module back with one item left (the marker gate), which an xdist worker does not
    # run until it is sent a second item or told to stop: the run waited for ever.
    _seed(atlas_db)
    pytester.makepyprojecttoml(CONFIGURED)
    pytester.makepyfile(test_h=KILLED, test_i=OTHER)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--atlas-gates",
        f"--atlas-target={atlas_dsn}",
        f"--atlas-report={report}",
        "-p",
        "no:randomly",
        "-n",
        "2",
        timeout=120,
    )
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out, out
    assert result.ret == 1, out
    data = json.loads(report.read_text())
    outcomes = {entry["name"]: entry["outcome"] for entry in data["results"]["gate"]}
    assert outcomes == {
        "after-a-kill": "error",
        "elsewhere": "pass",
        "floor": "pass",
        "floor2": "pass",
    }, out
    # the killed test once (its worker crashed), its gate an error; the other marked test and three
    # gates passed (the unmarked test is an ordinary test, left out)
    assert {k: v for k, v in result.parseoutcomes().items() if k != "warnings"} == {
        "failed": 1,
        "errors": 1,
        "passed": 4,
    }, out
