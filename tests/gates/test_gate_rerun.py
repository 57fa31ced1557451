"""Gate items and pytest's reruns: ``--lf`` reruns the gates that failed last time (a marker gate
with the test that declares it), ``--sw`` stops at a failing gate and starts from it next time."""

from __future__ import annotations

import random
from typing import Any

import psycopg
import pytest

from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .gates_seed import insert, session_row

#: three gates, in this order: the second fails on sessions of mean 0.5
PYPROJECT = """
[tool.pytest-atlas.gates.no-quarantine]
kind = "review"

[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = {threshold}

[tool.pytest-atlas.gates.low-floor]
kind = "threshold"
threshold = 0.2
"""

HARNESS = """
import pytest


def test_before():
    pass


@pytest.mark.atlas_gate("marker-floor", kind="threshold", threshold={threshold})
def test_harness():
    pass


def test_after():
    pass
"""


def _seed(conn: psycopg.Connection[Any], mean: float = 0.5) -> None:
    rng = random.Random(7)
    insert(conn, [session_row(min(1.0, round(rng.gauss(mean, 0.05), 4)), minute=i) for i in range(60)])
    conn.commit()


def _run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly", "-v", *args)


def _ran(result: pytest.RunResult) -> dict[str, str]:
    """node id -> outcome word of every item the verbose run reported."""
    out = {}
    for line in result.stdout.lines:
        parts = line.split(" ")
        if len(parts) >= 2 and "::" in parts[0] and parts[1] in ("PASSED", "FAILED", "ERROR", "INCONCLUSIVE"):
            out[parts[0]] = parts[1]
    return out


def test_last_failed_reruns_a_failed_configured_gate(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    _seed(atlas_db)
    pytester.makefile(".toml", pyproject=PYPROJECT.format(threshold=0.7))
    first = _run(pytester, atlas_dsn)
    assert first.ret == 1
    assert _ran(first)["pyproject.toml::reward-floor"] == "FAILED"
    again = _run(pytester, atlas_dsn, "--lf")
    assert again.ret == 1
    assert _ran(again) == {"pyproject.toml::reward-floor": "FAILED"}
    again.stdout.fnmatch_lines(["gates: 3 gates: 1 failed, 2 deselected"])


def test_last_failed_reruns_a_failed_marker_gate_with_its_test(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    """A marker gate judges the sessions its test writes: --lf reruns the test too (else the gate
    would be an error: its test did not run), and the gate fails again, a failure (exit status 1)."""
    _seed(atlas_db)
    pytester.makepyfile(test_harness=HARNESS.format(threshold=0.7))
    first = _run(pytester, atlas_dsn)
    assert first.ret == 1
    assert _ran(first)["test_harness.py::atlas_gate[marker-floor]"] == "FAILED"
    again = _run(pytester, atlas_dsn, "--lf")
    assert again.ret == 1, again.stdout.str()
    assert _ran(again) == {
        "test_harness.py::test_harness": "PASSED",
        "test_harness.py::atlas_gate[marker-floor]": "FAILED",
    }


def test_stepwise_stops_at_a_failing_gate_and_starts_from_it(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    _seed(atlas_db)
    pytester.makefile(".toml", pyproject=PYPROJECT.format(threshold=0.7))
    first = _run(pytester, atlas_dsn, "--sw")
    assert first.ret == pytest.ExitCode.INTERRUPTED  # pytest's status when --sw stops at a failure
    assert _ran(first) == {"pyproject.toml::no-quarantine": "PASSED", "pyproject.toml::reward-floor": "FAILED"}
    again = _run(pytester, atlas_dsn, "--sw")
    assert again.ret == pytest.ExitCode.INTERRUPTED
    again.stdout.fnmatch_lines(["stepwise: skipping 1 already passed items*"])
    assert _ran(again) == {"pyproject.toml::reward-floor": "FAILED"}
    # the gate fixed (its threshold lowered): it passes and the run goes on from it
    pytester.makefile(".toml", pyproject=PYPROJECT.format(threshold=0.3))
    fixed = _run(pytester, atlas_dsn, "--sw")
    assert fixed.ret == 0
    assert _ran(fixed) == {"pyproject.toml::reward-floor": "PASSED", "pyproject.toml::low-floor": "PASSED"}


def test_stepwise_starts_from_a_failed_marker_gate_with_its_test(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    _seed(atlas_db)
    pytester.makepyfile(test_harness=HARNESS.format(threshold=0.7))
    first = _run(pytester, atlas_dsn, "--sw", "--atlas-with-tests")
    assert first.ret == pytest.ExitCode.INTERRUPTED
    assert _ran(first) == {
        "test_harness.py::test_before": "PASSED",
        "test_harness.py::test_harness": "PASSED",
        "test_harness.py::atlas_gate[marker-floor]": "FAILED",
    }
    again = _run(pytester, atlas_dsn, "--sw", "--atlas-with-tests")
    assert again.ret == pytest.ExitCode.INTERRUPTED, again.stdout.str()
    assert _ran(again) == {
        "test_harness.py::test_harness": "PASSED",
        "test_harness.py::atlas_gate[marker-floor]": "FAILED",
    }
