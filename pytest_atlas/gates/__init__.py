"""Reward gates over an Atlas database: selections, SQL-side aggregation, evaluation, baselines.

Everything here reads only; nothing is ever written to the database being gated.
"""

from __future__ import annotations

from pytest_atlas.gates._baseline import read_baseline, write_baseline
from pytest_atlas.gates._evaluate import (
    drift_rows,
    evaluate,
    mode_rows,
    regression_rows,
    review_rows,
    threshold_rows,
)
from pytest_atlas.gates._query import (
    ALL_KEYS,
    DriftInput,
    Series,
    connection,
    fetch_drift_inputs,
    fetch_modes,
    fetch_review,
    fetch_series,
)
from pytest_atlas.gates._result import GateResult, KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._spec import KINDS, GateSpec

__all__ = [
    "ALL_KEYS",
    "KINDS",
    "DriftInput",
    "GateResult",
    "GateSpec",
    "KeyResult",
    "Selection",
    "Series",
    "connection",
    "drift_rows",
    "evaluate",
    "fetch_drift_inputs",
    "fetch_modes",
    "fetch_review",
    "fetch_series",
    "mode_rows",
    "read_baseline",
    "regression_rows",
    "review_rows",
    "threshold_rows",
    "write_baseline",
]
