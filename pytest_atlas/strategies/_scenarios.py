"""Hypothesis strategies over the reward scenarios of :func:`pytest_atlas.domain.reward_history`."""

from __future__ import annotations

from hypothesis import strategies as st

from pytest_atlas._arguments import call_count, call_error
from pytest_atlas.domain import SCENARIOS, RewardHistory, reward_history

__all__ = ["reward_histories"]


def reward_histories(
    *, scenario: str | None = None, sessions: int | tuple[int, int] = (20, 80)
) -> st.SearchStrategy[RewardHistory]:
    """:func:`reward_history` values for a drawn scenario (or the given one), seed and length.

    Shrinks towards the first scenario (``stable``), seed 0 and the fewest sessions.
    """
    if scenario is not None and scenario not in SCENARIOS:
        raise call_error("reward_histories", "scenario", scenario, "one of " + ", ".join(repr(s) for s in SCENARIOS))
    bounds = call_count("reward_histories", "sessions", sessions, lo=10, hi=2000)
    assert bounds is not None
    names = st.just(scenario) if scenario is not None else st.sampled_from(SCENARIOS)
    return st.builds(
        lambda name, count, seed: reward_history(name, sessions=count, seed=seed),
        names,
        st.integers(*bounds),
        st.integers(0, 2**32 - 1),
    )
