"""Report rendering and the result-property protocol (pure)."""

from __future__ import annotations

import json

import pytest

from pytest_atlas._properties import parse_result_property, result_property
from pytest_atlas.gates import GateResult, KeyResult
from pytest_atlas.reporting import build_report, gate_table, render_failure, render_markdown
from pytest_atlas.stats import Outcome

LONG_KEY = "3f9a2c51d0e4b7a8" + "0" * 48


def result() -> GateResult:
    rows = (
        KeyResult(
            LONG_KEY,
            120,
            "diff",
            -0.081,
            "[-0.110, -0.052]",
            "drop <= 0",
            Outcome.FAIL,
            "mean dropped by 0.081",
            worst=(12, 40, 7),
            missing=3,
            p_value=0.0001,
            p_adjusted=0.0002,
        ),
        KeyResult(
            "search",
            18,
            "diff",
            0.01,
            "[-0.04, 0.06]",
            "drop <= 0",
            Outcome.INCONCLUSIVE,
            "can only detect a drop of 0.080",
        ),
    )
    return GateResult("no-regression", "regression", rows, notes=("baseline: file",))


def test_table_has_every_column_and_shortens_long_keys() -> None:
    text = gate_table([result()])
    header, rule, first, second = text.splitlines()
    assert header.split("  ")[0] == "gate" and "worst sessions" in header and set(rule) <= {"-", " "}
    assert "3f9a2c51d0e4…" in first and LONG_KEY not in first
    assert "120 (+3 missing)" in first and "diff -0.081" in first and "#12, #40, #7" in first
    assert "FAIL" in first and "INCONCLUSIVE" in second and "diff +0.010" in second


def test_failure_text_has_summary_table_and_reasons() -> None:
    text = render_failure(result())
    assert text.startswith("regression gate 'no-regression': fail: 2 keys (1 fail, 1 inconclusive)")
    assert "  3f9a2c51d0e4…: mean dropped by 0.081" in text and "note: baseline: file" in text
    empty = GateResult("floor", "threshold", message="the gate's selection matched no sessions: {}")
    assert empty.outcome is Outcome.FAIL and "matched no sessions" in render_failure(empty)
    broken = GateResult("floor", "threshold", error="cannot connect")
    assert broken.outcome is Outcome.ERROR and render_failure(broken).endswith("cannot connect")


def test_accepted_rows_count_as_passes() -> None:
    accepted = GateResult("g", "regression", tuple(row.accept("until 2026-01-01: t") for row in result().rows[:1]))
    assert accepted.outcome is Outcome.PASS and not accepted.blocking
    assert "FAIL (accepted)" in gate_table([accepted])


def test_markdown_escapes_pipes_and_marks_outcomes() -> None:
    text = render_markdown([result()])
    assert text.startswith("### pytest-atlas\n\n**gates**: 1 gate: 1 failed\n\n| gate | learning key |")
    assert "❌ FAIL" in text and "⚠️ INCONCLUSIVE" in text and "- **no-regression** `search`: can only detect" in text


def test_results_round_trip_through_json() -> None:
    original = result()
    copy = GateResult.from_dict(json.loads(json.dumps(original.to_dict())))
    assert copy.to_dict() == original.to_dict()


def test_result_properties_and_the_report_document() -> None:
    name, value = result_property("contract", {"name": "sessions.metadata", "outcome": "fail", "violations": 3})
    payload = parse_result_property(name, value)
    assert payload == {"name": "sessions.metadata", "outcome": "fail", "violations": 3, "kind": "contract"}
    assert parse_result_property("other", value) is None and parse_result_property(name, "{broken") is None
    with pytest.raises(ValueError, match="needs a name and an outcome"):
        result_property("contract", {"name": "x", "outcome": "maybe"})
    gate = {**result().to_dict(), "kind": "gate"}
    report = build_report([payload, gate], exit_status=1)
    assert report["summary"] == {"pass": 0, "fail": 2, "inconclusive": 0, "error": 0, "not-run": 0, "deselected": 0}
    assert [r["name"] for r in report["results"]["contract"]] == ["sessions.metadata"]
    assert report["results"]["gate"][0]["rows"][0]["worst_sessions"] == [12, 40, 7]
