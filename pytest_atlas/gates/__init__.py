"""Reward gates over an Atlas database: selections, SQL-side aggregation, evaluation, baselines.

Everything here reads only; nothing is ever written to the database being gated.

Names are imported on first use (PEP 562): evaluation pulls in numpy and scipy, while the result
types (:class:`GateResult`, :class:`KeyResult`) and :class:`GateSpec` stay light, so that the
plugin's reporter can rebuild results without loading the statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_atlas._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["read_baseline", "write_baseline"], "pytest_atlas.gates._baseline"),
    **dict.fromkeys(
        ["drift_rows", "evaluate", "mode_rows", "regression_rows", "review_rows", "threshold_rows"],
        "pytest_atlas.gates._evaluate",
    ),
    **dict.fromkeys(
        [
            "ALL_KEYS",
            "DriftInput",
            "Series",
            "connection",
            "fetch_drift_inputs",
            "fetch_modes",
            "fetch_review",
            "fetch_series",
        ],
        "pytest_atlas.gates._query",
    ),
    **dict.fromkeys(["GateResult", "KeyResult"], "pytest_atlas.gates._result"),
    "Selection": "pytest_atlas.gates._selection",
    **dict.fromkeys(["KINDS", "GateSpec"], "pytest_atlas.gates._spec"),
}

if TYPE_CHECKING:
    from pytest_atlas.gates._baseline import read_baseline as read_baseline
    from pytest_atlas.gates._baseline import write_baseline as write_baseline
    from pytest_atlas.gates._evaluate import drift_rows as drift_rows
    from pytest_atlas.gates._evaluate import evaluate as evaluate
    from pytest_atlas.gates._evaluate import mode_rows as mode_rows
    from pytest_atlas.gates._evaluate import regression_rows as regression_rows
    from pytest_atlas.gates._evaluate import review_rows as review_rows
    from pytest_atlas.gates._evaluate import threshold_rows as threshold_rows
    from pytest_atlas.gates._query import ALL_KEYS as ALL_KEYS
    from pytest_atlas.gates._query import DriftInput as DriftInput
    from pytest_atlas.gates._query import Series as Series
    from pytest_atlas.gates._query import connection as connection
    from pytest_atlas.gates._query import fetch_drift_inputs as fetch_drift_inputs
    from pytest_atlas.gates._query import fetch_modes as fetch_modes
    from pytest_atlas.gates._query import fetch_review as fetch_review
    from pytest_atlas.gates._query import fetch_series as fetch_series
    from pytest_atlas.gates._result import GateResult as GateResult
    from pytest_atlas.gates._result import KeyResult as KeyResult
    from pytest_atlas.gates._selection import Selection as Selection
    from pytest_atlas.gates._spec import KINDS as KINDS
    from pytest_atlas.gates._spec import GateSpec as GateSpec

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
