"""The Markdown tables of the step summary: outcome icons say what blocks."""

from __future__ import annotations

from pytest_atlas._table import markdown_table


def test_only_outcomes_that_block_get_a_red_cross() -> None:
    rows = [["key", "outcome"], ["a", "FAIL"], ["b", "NEW KEY"], ["c", "NEW KEY (allowed)"], ["d", "FAIL (accepted)"]]
    cells = [line.split(" | ")[-1].rstrip(" |") for line in markdown_table(rows, outcome_column=1)[2:]]
    assert cells == ["❌ FAIL", "❌ NEW KEY", "☑️ NEW KEY (allowed)", "☑️ FAIL (accepted)"]
