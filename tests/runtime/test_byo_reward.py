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

from .corpus import corpus_rows
from .test_schemas import valid_rows

#: evaluator -> (the score the gates read, whether its statistics are RIM-shaped)
EVALUATORS = {
    "score_only": (0.9, False),
    "score_mean_only": (0.7, False),
    "no_statistics": (None, False),
    "counted_rules": (0.8, False),
}

#: reward statistics as the RIM evaluator writes them (every key it writes, and the persistence timestamp)
RIM_STATS: dict[str, Any] = {
    "score": 0.8,
    "score_mean": 0.8,
    "score_stddev": 0.0,
    "sample_count": 3,
    "uncertainty_mean": 0.1,
    "uncertainty_stddev": 0.0,
    "best_uncertainty": 0.1,
    "timestamp": "2025-01-02T03:04:05+00:00",
}


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
    for audit in (row["reward_audit"] for row in rows["sessions"] if row["reward_audit"]):
        found = check_payload(audit, "reward-audit")
        assert {w.quirk for w in found.warnings} == {"custom-reward-evaluator"} and not found.errors

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
    broken_rim = {key: value for key, value in RIM_STATS.items() if key != "score"}  # RIM's, without its score
    assert [e.keyword for e in check_payload(broken_rim, "reward-stats").errors] == ["required"]
    custom_stats: dict[str, Any] = {"score_mean": "0.7", "timestamp": "2025-01-02T03:04:05+00:00"}
    assert [e.keyword for e in check_payload(custom_stats, "reward-stats").errors] == ["type"]


def test_what_the_rim_evaluator_writes_is_held_to_rims_shape(atlas_dsn: str) -> None:
    """Every reward statistic and audit entry Atlas's own evaluator writes (along every path of the
    runtime) is recognised as RIM's: no custom-evaluator warning, and so held to the closed shape."""
    rows = corpus_rows(atlas_dsn)["sessions"]
    documents = [("reward-stats", row["reward_stats"]) for row in rows if row["reward_stats"] is not None]
    documents += [("reward-audit", row["reward_audit"]) for row in rows if row["reward_audit"] is not None]
    assert len(documents) > 20
    for schema, document in documents:
        found = check_payload(document, schema)
        assert not found.errors, found.errors
        assert "custom-reward-evaluator" not in {w.quirk for w in found.warnings}, (schema, document)


def test_rim_shaped_documents_stay_strict() -> None:
    """A document with RIM's keys is RIM's: a key of another type or one RIM does not write is an error,
    not a custom evaluator's warning."""
    rim = RIM_STATS
    assert check_payload(rim, "reward-stats").warnings == ()
    assert [e.keyword for e in check_payload({**rim, "sample_count": "3"}, "reward-stats").errors] == ["type"]
    assert [e.keyword for e in check_payload({**rim, "extra": 1}, "reward-stats").errors] == ["additionalProperties"]
    aliased = {key: value for key, value in rim.items() if key != "best_uncertainty"} | {"min_uncertainty": 0.1}
    assert [w.quirk for w in check_payload(aliased, "reward-stats").warnings] == ["alias-key"]
    # with sample_count among keys of its own: a custom evaluator's (a warning), its keys' types still checked
    custom = {"score": 0.8, "sample_count": 4, "rules_passed": 4}
    assert [w.quirk for w in check_payload(custom, "reward-stats").warnings] == ["custom-reward-evaluator"]
    assert check_payload(custom, "reward-stats").errors == ()
    assert [e.keyword for e in check_payload({**custom, "sample_count": "4"}, "reward-stats").errors] == ["type"]
    entry = {"stage": "tier1", "model": "m", "temperature": 0.2, "messages": [{"role": "user", "content": "x"}] * 2}
    assert [e.keyword for e in check_payload([{**entry, "error": 1}], "reward-audit").errors] == ["type"]
    own = [{"stage": "rules", "model": "rules-v2", "passed": 4}]
    assert [w.quirk for w in check_payload(own, "reward-audit").warnings] == ["custom-reward-evaluator"]
    assert check_payload(own, "reward-audit").errors == ()
