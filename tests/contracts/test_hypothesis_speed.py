"""Validation inside Hypothesis examples: nothing slow is loaded inside an example."""

from __future__ import annotations

import pytest

FIRST_FAILURE = """
import sys

from hypothesis import given, settings
from pytest_atlas import check_payload
from pytest_atlas.strategies import invalid

LOADED = []


@settings(deadline=None)  # the cause is checked below, not the timing
@given(case=invalid("reward-stats"))
def test_first_failing_document(case):
    before = set(sys.modules)
    errors = check_payload(case.document, "reward-stats").errors
    assert errors
    LOADED.extend(sorted(set(sys.modules) - before))


def test_nothing_was_loaded_inside_the_example():
    assert [name for name in LOADED if name.split(".")[0] in {"jsonschema", "referencing", "rpds"}] == []
"""


def test_the_first_failing_document_loads_nothing_inside_a_hypothesis_example(pytester: pytest.Pytester) -> None:
    """docs/contracts.md ("Inside @given") says no deadline=None is needed. Copied into a fresh
    project with the wheel installed, its example failed 4 of 8 runs on this (loaded, shared)
    machine with DeadlineExceeded: 265-424 ms for the first example, 2-17 ms for the next, because
    the first *failing* document imports python-jsonschema and builds its validator inside the
    example (measured 165-209 ms in a fresh process under load). Timing is not asserted here: the
    test checks the cause, that the detail engine is loaded inside the user's example."""
    pytester.makepyfile(FIRST_FAILURE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
