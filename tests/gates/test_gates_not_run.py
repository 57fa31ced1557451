"""Every declared gate is in every report, run or not: ``-x``, ``--maxfail``, pytest-xdist and a
deselection leave no gate out of the JSON and HTML reports, the step summary or the count line,
and a run in which a gate did not run is never reported as all gates passing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .test_gate_plugin import seed_good

GATES = """
[tool.pytest-atlas.gates.a-floor]
kind = "threshold"
threshold = 0.99

[tool.pytest-atlas.gates.b-review]
kind = "review"

[tool.pytest-atlas.gates.c-floor]
kind = "threshold"
threshold = 0.5
"""


def run(
    pytester: pytest.Pytester, dsn: str, tmp_path: Path, *args: str, **options: Any
) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = tmp_path / "report.json"
    result = pytester.runpytest(
        "--atlas-gates", f"--atlas-target={dsn}", f"--atlas-report={report}", "-p", "no:randomly", *args, **options
    )
    return result, json.loads(report.read_text())


def declare(pytester: pytest.Pytester, conn: psycopg.Connection[Any], harness: str | None = None) -> None:
    """80 good sessions, the three configured gates and, with ``harness``, a test module."""
    seed_good(conn)
    pytester.makefile(".toml", pyproject=GATES)
    if harness is not None:
        pytester.makepyfile(test_harness=harness)


def outcomes(document: dict[str, Any]) -> dict[str, str]:
    return {gate["name"]: gate["outcome"] for gate in document["results"]["gate"]}


def count_line(result: pytest.RunResult) -> str:
    return next(line for line in result.stdout.lines if line.startswith("gates: "))


def test_gates_after_a_stop_are_reported_as_not_run(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """``-x``: the first gate fails and the run stops. The report held that one gate: its counts
    (1 fail) did not equal the 3 declared gates."""
    declare(pytester, atlas_db)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    html = tmp_path / "report.html"
    result, document = run(pytester, atlas_dsn, tmp_path, "-x", f"--atlas-report-html={html}")
    assert result.ret == 1
    assert outcomes(document) == {"a-floor": "fail", "b-review": "not-run", "c-floor": "not-run"}
    assert document["summary"] == {"pass": 0, "fail": 1, "inconclusive": 0, "error": 0, "not-run": 2, "deselected": 0}
    not_run = [gate for gate in document["results"]["gate"] if gate["outcome"] == "not-run"]
    assert {gate["summary"] for gate in not_run} == {"not run: the run stopped before it (-x)"}
    assert all(gate["blocking"] and gate["gate_kind"] in ("review", "threshold") for gate in not_run)
    assert count_line(result) == "gates: 3 gates: 1 failed, 2 not run"
    result.stdout.fnmatch_lines(
        ["b-review*-*NOT RUN*", "c-floor*-*NOT RUN*", "b-review: not run: the run stopped before it (-x)"]
    )
    markdown = summary.read_text()
    assert "**gates**: 3 gates: 1 failed, 2 not run" in markdown
    assert "- **c-floor**: not run: the run stopped before it (-x)" in markdown
    page = html.read_text()
    assert "3 gate(s): 1 fail, 2 not-run" in page and page.count('class="gate"') == 3


def test_marker_gates_after_maxfail_are_reported_as_not_run(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    declare(
        pytester,
        atlas_db,
        """
import pytest

@pytest.mark.atlas_gate("m-first", kind="threshold", threshold=0.5)
def test_first():
    assert False, "the harness crashed"

@pytest.mark.atlas_gate("m-second", kind="review")
def test_second():
    pass
""",
    )
    result, document = run(pytester, atlas_dsn, tmp_path, "--maxfail=2")
    # the failed harness run, then its gate (an error: it would judge older sessions): stop
    assert outcomes(document) == {
        "m-first": "error",
        "m-second": "not-run",
        "a-floor": "not-run",
        "b-review": "not-run",
        "c-floor": "not-run",
    }
    assert {g["summary"] for g in document["results"]["gate"] if g["outcome"] == "not-run"} == {
        "not run: the run stopped before it (--maxfail=2)"
    }
    assert count_line(result) == "gates: 5 gates: 1 error, 4 not run"
    assert result.ret == 1


def test_gates_after_an_interrupt_are_reported_as_not_run(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    declare(
        pytester,
        atlas_db,
        """
import pytest

@pytest.mark.atlas_gate("m-first", kind="review")
def test_first():
    raise KeyboardInterrupt  # as Ctrl-C does
""",
    )
    result, document = run(pytester, atlas_dsn, tmp_path, no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert set(outcomes(document).values()) == {"not-run"} and len(outcomes(document)) == 4
    assert {g["summary"] for g in document["results"]["gate"]} == {"not run: the run was interrupted before it"}


def test_deselected_gates_are_reported_as_deselected(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    """A gate the user deselected is neither silently missing nor a pass: ``deselected``, not
    blocking (the user chose it), and the count line is not all passed."""
    declare(pytester, atlas_db)
    for xdist in ([], ["-n", "2"]):
        result, document = run(
            pytester, atlas_dsn, tmp_path, "--deselect", "pyproject.toml::a-floor", "-k", "not c-floor", *xdist
        )
        assert outcomes(document) == {"a-floor": "deselected", "b-review": "pass", "c-floor": "deselected"}, xdist
        assert document["summary"]["deselected"] == 2 and document["summary"]["pass"] == 1
        assert count_line(result) == "gates: 3 gates: 1 passed, 2 deselected"
        result.stdout.fnmatch_lines(["a-floor: deselected: deselected by the run's selection (-k, -m, --deselect)"])
        assert result.ret == 0


def test_collect_only_lists_the_gates_and_keeps_the_exit_status(
    pytester: pytest.Pytester, atlas_dsn: str, tmp_path: Path
) -> None:
    pytester.makefile(".toml", pyproject=GATES)
    result, document = run(pytester, atlas_dsn, tmp_path, "--collect-only")
    assert result.ret == 0
    assert set(outcomes(document).values()) == {"not-run"} and len(outcomes(document)) == 3


_MODULE = """
import time
import pytest

@pytest.mark.atlas_gate("gate-{index}", kind="review")
def test_harness():
    {body}
"""


def test_under_xdist_every_gate_is_reported_after_a_stop(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path
) -> None:
    """``-n 2 -x``: the controller stops handing out modules after the first failure; the gates of
    the modules no worker took (and the configured ones) are ``not-run``, and the counts add up."""
    seed_good(atlas_db)
    pytester.makefile(".toml", pyproject=GATES.replace("0.99", "0.5"))
    pytester.makepyfile(
        **{
            f"test_m{index}": _MODULE.format(
                index=index, body='assert False, "the harness crashed"' if index == 0 else "time.sleep(1)"
            )
            for index in range(8)
        }
    )
    result, document = run(pytester, atlas_dsn, tmp_path, "-n", "2", "-x", "--atlas-with-tests")
    found = outcomes(document)
    assert sorted(found) == sorted([f"gate-{i}" for i in range(8)] + ["a-floor", "b-review", "c-floor"])
    assert found["gate-0"] in ("error", "not-run")  # the worker's own -x may stop before it
    assert "not-run" in found.values(), found
    summary = document["summary"]
    assert sum(summary.values()) == 11 and summary["not-run"] == list(found.values()).count("not-run")
    assert re.fullmatch(r"gates: 11 gates: .*\d+ not run", count_line(result)), count_line(result)
    assert result.ret != 0
