"""Atlas with a Bring-Your-Own reward evaluator (adaptive_teaching.reward.type: python): Atlas stores
the evaluator's statistics and audit as given (plus its persistence timestamp). What it writes
validates, with a warning where the statistics or audit entries are not the RIM evaluator's; the
gates read the score the way Atlas's drift detector does (score, else score_mean) and recompute
the drift documents Atlas stored."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas import Selection, assert_reward_at_least, check_payload
from pytest_atlas.domain import drift_document, reward_baseline
from pytest_atlas.gates._kinds.drift import fetch_drift_inputs
from pytest_atlas.runtime import AtlasRuntime

from .test_schemas import valid_rows

#: evaluator -> (the score the gates read, whether its statistics are RIM-shaped)
EVALUATORS = {"score_only": (0.9, False), "score_mean_only": (0.7, False), "no_statistics": (None, False)}


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_what_atlas_writes_with_a_custom_evaluator(atlas_dsn: str, evaluator: str) -> None:
    reward = {"type": "python", "import_path": "tests.runtime.byo_rewards", "attribute": evaluator}
    runtime = AtlasRuntime(atlas_dsn, config={"adaptive_teaching": {"reward": reward}})
    try:
        for _ in range(6):
            runtime.run("Grade by rules")
    finally:
        runtime.close()
    rows = valid_rows(atlas_dsn)
    stats = [row["reward_stats"] for row in rows["sessions"]]
    assert all(isinstance(entry, dict) and "timestamp" in entry for entry in stats)  # Atlas adds it
    quirks = {warning.quirk for entry in stats for warning in check_payload(entry, "reward-stats").warnings}
    assert quirks == {"custom-reward-evaluator"}

    score, _ = EVALUATORS[evaluator]
    if score is not None:
        # six equal scores have no spread: their mean is only bounded from [0, 1] (0.9 * 0.05**(1/6)
        # = 0.546 for 0.9, 0.425 for 0.7), so the gate is held to half the score
        result = assert_reward_at_least(atlas_dsn, score / 2)
        assert result.rows[0].n == 6
        assert result.rows[0].value == pytest.approx(score)
        assert result.rows[0].reason.startswith(f"all 6 scores are {score:.4f}: no spread")
    # Atlas's drift documents, recomputed from the table
    inputs = fetch_drift_inputs(psycopg.connect(atlas_dsn, autocommit=True), Selection(), last=1000)
    stored = {row["id"]: row["metadata"]["drift"] for row in rows["sessions"]}
    assert {item.session_id for item in inputs} == set(stored)
    for item in inputs:
        recomputed = drift_document(
            item.reward_stats,
            reward_baseline(list(item.history)),
            threshold=3.0,
            window=50,
            min_baseline=5,
            learning_key=item.learning_key or None,
        )
        assert recomputed == stored[item.session_id]


def test_custom_audit_entries_are_warnings_rim_entries_stay_strict() -> None:
    custom = [{"stage": "rules", "score": 0.7}]
    assert [w.quirk for w in check_payload(custom, "reward-audit").warnings] == ["custom-reward-evaluator"]
    assert check_payload(custom, "reward-audit").errors == ()
    rim_like = [{"stage": "rules", "model": "gpt", "messages": [], "error": "boom"}]  # a RIM entry, wrong stage
    assert [e.keyword for e in check_payload(rim_like, "reward-audit").errors] == ["enum"]
    broken_rim = {"score_stddev": 0.0, "sample_count": 3, "uncertainty_mean": 0.1}  # RIM without its score
    assert [e.keyword for e in check_payload(broken_rim, "reward-stats").errors] == ["required"]
    custom_stats: dict[str, Any] = {"score_mean": "0.7", "timestamp": "2025-01-02T03:04:05+00:00"}
    assert [e.keyword for e in check_payload(custom_stats, "reward-stats").errors] == ["type"]
