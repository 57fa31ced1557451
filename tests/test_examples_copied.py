"""The examples run when copied alone into a project of a user's (no ini of this repository)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_reward_gates_example_runs_when_copied_into_a_project(pytester: pytest.Pytester) -> None:
    """examples/test_reward_gates.py takes the ``pytester`` fixture, which only this repository's
    ``addopts = ["-p", "pytester"]`` provides: copied into a user's project (wheel installed, no such
    ini) its two pipeline tests error with "fixture 'pytester' not found". The example should enable
    what it needs itself (``pytest_plugins = ["pytester"]``) or say so."""
    example = Path(__file__).parents[1] / "examples" / "test_reward_gates.py"
    pytester.makepyfile(**{example.stem: example.read_text()})
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-k", "pipeline")
    assert "fixture 'pytester' not found" not in result.stdout.str()
    result.assert_outcomes(passed=2)
