"""Atlas's runtime under configurations the other runtime tests leave at their defaults (adaptive
teaching off, no first-run certification, default tags, learning off or frozen, pruning that fires,
few-shot examples, no retries, no intermediate steps, a forced mode, drift off, other export
statuses): every row every table gets validates against its schema, and the contract check passes."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_atlas.runtime import AtlasRuntime

from .corpus import TOOLS, _synthesis
from .test_schemas import valid_rows

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "adaptive-off": {"adaptive_teaching": {"enabled": False}},
    "no-certification": {"adaptive_teaching": {"certify_first_run": False, "default_tags": ["ops", "eu"]}},
    "learning-off": {"learning": {"enabled": False}},
    "learning-frozen": {
        "learning": {"update_enabled": False, "apply_to_prompts": False, "session_note_enabled": False}
    },
    "pruning": {
        "agent": {"tools": TOOLS},
        "learning": {
            "pruning_config": {
                "min_sessions": 1,
                "min_cue_hit_rate": 1.0,
                "min_reward_delta": 1.0,
                "min_transfer_sessions": 1,
            },
            "usage_tracking": {"capture_examples": True},
            "inject_few_shot_examples": True,
            "playbook_injection_mode": "suffix",
            "provisional_acceptance": False,
            "gates": {"enforce_generality": True},
        },
    },
    "no-retries": {"orchestration": {"max_retries": 0, "emit_intermediate_steps": False}},
    "forced-coach": {"orchestration": {"forced_mode": "coach"}},
    "drift-off": {
        "runtime_safety": {
            "drift": {"enabled": False},
            "review": {"require_approval": True, "default_export_statuses": ["approved", "pending"]},
        }
    },
}


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_what_atlas_writes_under_a_configuration_is_valid(atlas_dsn: str, name: str) -> None:
    runtime = AtlasRuntime(atlas_dsn, config=CONFIGURATIONS[name])
    try:
        for score in (0.8, 0.82, 0.79, 0.81, 0.8, 0.2):
            runtime.run("Count the rows of orders", score=score, responses={"synthesizer": _synthesis()})
        runtime.run("Count the rows of orders", mode="coach", guidance="Use the tool.")
        runtime.run("Count the rows of orders", mode="paired", guidance="Cite the count.", uncertainty=0.6)
        runtime.run("Count the rows of orders", fail=True)
        provisional = _synthesis(expected_effect="Fixes ticket-123 from 2025-01-02.")
        runtime.run("Count the rows of orders", responses={"synthesizer": provisional})
    finally:
        runtime.close()
    rows = valid_rows(atlas_dsn)
    assert len(rows["sessions"]) == 10
