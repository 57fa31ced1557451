"""Hypothesis strategies for Atlas data: payloads, table rows, whole sessions, invalid documents.

Every strategy is valid by construction (each document passes its JSON Schema in ``jsonschemas/``)
and knows the domain: values agree across tables the way Atlas writes them. Arguments are
validated when the strategy is created and raise :class:`pytest_atlas.errors.InvalidArgument`.
No strategy ever produces NaN or Infinity (PostgreSQL's jsonb rejects them).

Import them from here::

    from pytest_atlas.strategies import session_graphs, session_metadata, invalid
"""

from __future__ import annotations

from pytest_atlas.domain import SCENARIOS, RewardHistory, SessionGraph, reward_history
from pytest_atlas.strategies._graphs import export_traces, session_graphs
from pytest_atlas.strategies._invalid import MUTATIONS, Invalid, Mutation, invalid
from pytest_atlas.strategies._payloads import (
    discovery_metadata,
    discovery_payloads,
    drift_assessments,
    learning_registry_metadata,
    plans,
    reward_audits,
    reward_stats,
    session_metadata,
    session_rewards,
    step_evaluations,
    step_metadata,
    trajectory_events,
)
from pytest_atlas.strategies._rows import (
    discovery_run_rows,
    guidance_note_rows,
    learning_registry_rows,
    plan_rows,
    session_rows,
    step_attempt_rows,
    step_result_rows,
    trajectory_event_rows,
)
from pytest_atlas.strategies._scenarios import reward_histories

__all__ = [
    "MUTATIONS",
    "SCENARIOS",
    "Invalid",
    "Mutation",
    "RewardHistory",
    "SessionGraph",
    "discovery_metadata",
    "discovery_payloads",
    "discovery_run_rows",
    "drift_assessments",
    "export_traces",
    "guidance_note_rows",
    "invalid",
    "learning_registry_metadata",
    "learning_registry_rows",
    "plan_rows",
    "plans",
    "reward_audits",
    "reward_histories",
    "reward_history",
    "reward_stats",
    "session_graphs",
    "session_metadata",
    "session_rewards",
    "session_rows",
    "step_attempt_rows",
    "step_evaluations",
    "step_metadata",
    "step_result_rows",
    "trajectory_event_rows",
    "trajectory_events",
]
