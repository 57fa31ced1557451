"""The Atlas domain model: Atlas's words, its tables, and builders of data shaped the way Atlas writes it.

This layer sits right above :mod:`pytest_atlas.errors` and below everything that speaks Atlas:

* the **vocabulary** (session and review statuses, execution modes, event types, the quirks of
  real data) -- declared once;
* the **catalogue** of tables and columns (:data:`CATALOGUE`: keys, the columns a session graph
  fills, JSON columns and the JSON Schema of each, defaults);
* the **builders**, one module per phase of a run (sessions, metadata, plans and steps, events,
  rewards, drift and review, learning, discovery, exports, reward scenarios). Each draws its
  choices from a :class:`Source`: :class:`RandomSource` (seeded, used by the factories) or the
  Hypothesis source of :mod:`pytest_atlas.strategies`.

Nothing here imports Hypothesis, psycopg or pytest. Other areas import these names from here,
never from the private modules.
"""

from __future__ import annotations

from pytest_atlas.domain._catalogue import ATLAS_COLUMNS, CATALOGUE, JSON_TABLES, TABLE_COLUMNS, Table
from pytest_atlas.domain._common import EPOCH, Doc, learning_key, moment_after
from pytest_atlas.domain._discovery import build_discovery_metadata, build_discovery_payload
from pytest_atlas.domain._drift import (
    BASELINE_KEYS,
    DRIFT_METRICS,
    MAD_NORMALIZATION,
    assess_drift,
    drift_document,
    reward_baseline,
)
from pytest_atlas.domain._events import single_event
from pytest_atlas.domain._export import EXPORT_METADATA_KEYS, STEP_EXPORT_KEYS, to_export
from pytest_atlas.domain._graph import SessionGraph
from pytest_atlas.domain._learning import build_registry_metadata
from pytest_atlas.domain._options import MAX_EVENTS, MAX_STEPS, GraphOptions, graph_options
from pytest_atlas.domain._review import build_drift
from pytest_atlas.domain._rewards import RewardOutcome, build_reward
from pytest_atlas.domain._scenarios import SCENARIOS, RewardHistory, reward_history
from pytest_atlas.domain._sessions import build_graph
from pytest_atlas.domain._source import RandomSource, Source
from pytest_atlas.domain._steps import build_plan, build_step_metadata, evaluation_for, sketch_steps, step_output
from pytest_atlas.domain._vocabulary import (
    EVENT_TYPES,
    EXECUTION_MODES,
    LEGACY_EXECUTION_MODES,
    QUIRKS,
    RECORDED_EXECUTION_MODES,
    REVIEW_STATUSES,
    SESSION_STATUSES,
)

__all__ = [
    "ATLAS_COLUMNS",
    "BASELINE_KEYS",
    "CATALOGUE",
    "DRIFT_METRICS",
    "EPOCH",
    "EVENT_TYPES",
    "EXECUTION_MODES",
    "EXPORT_METADATA_KEYS",
    "JSON_TABLES",
    "LEGACY_EXECUTION_MODES",
    "MAD_NORMALIZATION",
    "MAX_EVENTS",
    "MAX_STEPS",
    "QUIRKS",
    "RECORDED_EXECUTION_MODES",
    "REVIEW_STATUSES",
    "SCENARIOS",
    "SESSION_STATUSES",
    "STEP_EXPORT_KEYS",
    "TABLE_COLUMNS",
    "Doc",
    "GraphOptions",
    "RandomSource",
    "RewardHistory",
    "RewardOutcome",
    "SessionGraph",
    "Source",
    "Table",
    "assess_drift",
    "build_discovery_metadata",
    "build_discovery_payload",
    "build_drift",
    "build_graph",
    "build_plan",
    "build_registry_metadata",
    "build_reward",
    "build_step_metadata",
    "drift_document",
    "evaluation_for",
    "graph_options",
    "learning_key",
    "moment_after",
    "reward_baseline",
    "reward_history",
    "single_event",
    "sketch_steps",
    "step_output",
    "to_export",
]
