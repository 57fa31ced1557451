"""Bring-Your-Own reward evaluators (adaptive_teaching.reward.type: python) for the runtime tests:
what a user's evaluator may hand Atlas, which Atlas stores as given."""

from __future__ import annotations

from typing import Any


class _Evaluator:
    def __init__(self, statistics: dict[str, Any], audit: list[dict[str, Any]]) -> None:
        self.statistics = statistics
        self.audit = audit

    async def aevaluate_session(self, trajectory: Any) -> Any:
        from atlas.evaluation.evaluator import RewardEvaluation
        from atlas.runtime.schema import AtlasRewardBreakdown

        score = self.statistics.get("score", self.statistics.get("score_mean", 0.5))
        reward = AtlasRewardBreakdown(score=float(score), rationale="rule-based")
        return RewardEvaluation(reward=reward, statistics=dict(self.statistics), audit=list(self.audit))


def score_only(config: Any = None, reward_config: Any = None) -> _Evaluator:
    return _Evaluator({"score": 0.9}, [])


def score_mean_only(config: Any = None, reward_config: Any = None) -> _Evaluator:
    return _Evaluator({"score_mean": 0.7, "uncertainty_mean": 0.2}, [{"stage": "rules", "score": 0.7}])


def no_statistics(config: Any = None, reward_config: Any = None) -> _Evaluator:
    return _Evaluator({}, [])


def counted_rules(config: Any = None, reward_config: Any = None) -> _Evaluator:
    """Statistics and audit entries that carry keys RIM's also have (sample_count; model), among
    keys of its own: still a custom evaluator's."""
    return _Evaluator(
        {"score": 0.8, "sample_count": 4, "rules_passed": 4, "rules": ["cites", "short"]},
        [{"stage": "rules", "model": "rules-v2", "passed": 4}],
    )
