"""Reward histories written by Atlas itself, mirroring the ``reward_history`` strategy scenarios.

Each preset takes the scores and uncertainties of :func:`pytest_atlas.strategies.reward_history`
for its scenario and runs Atlas once per session with the judges giving those values, on one
learning key: Atlas computes the reward statistics, the drift assessments and the review status
itself. ``expected`` is the strategy's history, so its ``alerts`` say what Atlas should flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_atlas.domain import RewardHistory, reward_history
from pytest_atlas.errors import InvalidArgument

if TYPE_CHECKING:
    from pytest_atlas.runtime._runtime import AtlasRuntime

__all__ = ["PRESETS", "RuntimeHistory", "run_history"]

#: the presets: the reward_history scenarios stable, step drop and slow decline
PRESETS: tuple[str, ...] = ("stable", "step_change", "gradual_decline")


@dataclass(frozen=True)
class RuntimeHistory:
    """A learning key's sessions, written by Atlas, oldest first.

    ``session_ids[i]`` was run with the judges giving ``scores[i]`` and ``uncertainties[i]``;
    ``alerts[i]`` is Atlas's own drift verdict on that session (``metadata.drift.alert``), which
    matches ``expected.alerts[i]`` (what the strategy computes); ``change_at`` is the first
    session after the change (``None`` for ``stable``).
    """

    scenario: str
    learning_key: str
    task: str
    session_ids: tuple[int, ...]
    scores: tuple[float, ...]
    uncertainties: tuple[float, ...]
    alerts: tuple[bool, ...]
    expected: RewardHistory

    @property
    def change_at(self) -> int | None:
        return self.expected.change_at

    @property
    def alert_indices(self) -> tuple[int, ...]:
        """Indices of the sessions Atlas flagged."""
        return tuple(i for i, alert in enumerate(self.alerts) if alert)

    def __repr__(self) -> str:
        return (
            f"RuntimeHistory(scenario={self.scenario!r}, sessions={len(self.session_ids)}, "
            f"change_at={self.change_at}, alerts at {list(self.alert_indices)})"
        )


def run_history(
    runtime: AtlasRuntime,
    scenario: str,
    *,
    sessions: int,
    seed: int,
    learning_key: str | None,
    task: str | None,
    baseline: float,
    shift: float | None,
    options: dict[str, Any],
) -> RuntimeHistory:
    if scenario not in PRESETS:
        raise InvalidArgument(
            f"AtlasRuntime.history(): invalid scenario={scenario!r}: expected one of "
            + ", ".join(repr(p) for p in PRESETS),
            hint="the other reward_history scenarios are available as strategies (pytest_atlas.strategies)",
        )
    forbidden = sorted(set(options) & {"score", "uncertainty", "escalate", "learning_key", "fail"})
    if forbidden:
        raise InvalidArgument(
            f"AtlasRuntime.history(): {', '.join(forbidden)} cannot be set: the preset decides them",
            hint="pass the other run() arguments (mode, learn, metadata, responses, ...)",
        )
    expected = reward_history(
        scenario, sessions=sessions, seed=seed, learning_key=learning_key, baseline=baseline, shift=shift
    )
    name = task or f"Scripted {scenario.replace('_', ' ')} task"
    ids = [
        runtime.run(name, score=score, uncertainty=uncertainty, learning_key=expected.learning_key, **options)
        for score, uncertainty in zip(expected.scores, expected.uncertainties, strict=True)
    ]
    rows = dict(
        runtime._query(
            "SELECT id, coalesce((metadata->'drift'->>'alert')::boolean, false) FROM sessions WHERE id = ANY(%s)",
            [ids],
        )
    )
    return RuntimeHistory(
        scenario=scenario,
        learning_key=expected.learning_key,
        task=name,
        session_ids=tuple(ids),
        scores=expected.scores,
        uncertainties=expected.uncertainties,
        alerts=tuple(bool(rows.get(sid)) for sid in ids),
        expected=expected,
    )
