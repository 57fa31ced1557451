"""Assertion helpers. Each raises an ``AssertionError`` subclass that carries its result object.

Names are imported on first use (PEP 562): the reward helpers pull in numpy and scipy, the payload
helpers the JSON Schema validators, and neither should load because the other was imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_atlas._lazy import lazy_exports

_EXPORTS: dict[str, str] = {}
# --- payload contracts
_EXPORTS.update(dict.fromkeys(["PayloadAssertionError", "assert_valid_payload"], "pytest_atlas.assertions._payloads"))
# --- rewards (statistics and gates)
_EXPORTS.update(
    dict.fromkeys(
        [
            "ExecutionModesOutOfBounds",
            "ReviewNotClean",
            "RewardAssertionError",
            "RewardBelowThreshold",
            "RewardDrift",
            "RewardRegression",
            "assert_execution_modes",
            "assert_no_drift",
            "assert_no_regression",
            "assert_review_clean",
            "assert_reward_at_least",
        ],
        "pytest_atlas.assertions._rewards",
    )
)

if TYPE_CHECKING:
    from pytest_atlas.assertions._payloads import PayloadAssertionError as PayloadAssertionError
    from pytest_atlas.assertions._payloads import assert_valid_payload as assert_valid_payload
    from pytest_atlas.assertions._rewards import ExecutionModesOutOfBounds as ExecutionModesOutOfBounds
    from pytest_atlas.assertions._rewards import ReviewNotClean as ReviewNotClean
    from pytest_atlas.assertions._rewards import RewardAssertionError as RewardAssertionError
    from pytest_atlas.assertions._rewards import RewardBelowThreshold as RewardBelowThreshold
    from pytest_atlas.assertions._rewards import RewardDrift as RewardDrift
    from pytest_atlas.assertions._rewards import RewardRegression as RewardRegression
    from pytest_atlas.assertions._rewards import assert_execution_modes as assert_execution_modes
    from pytest_atlas.assertions._rewards import assert_no_drift as assert_no_drift
    from pytest_atlas.assertions._rewards import assert_no_regression as assert_no_regression
    from pytest_atlas.assertions._rewards import assert_review_clean as assert_review_clean
    from pytest_atlas.assertions._rewards import assert_reward_at_least as assert_reward_at_least

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
