"""Reward gates over an Atlas database: selections, SQL-side aggregation, evaluation, baselines.

Everything here reads only; nothing is ever written to the database being gated. Each kind of gate
is one module of :mod:`pytest_atlas.gates._kinds` (its options, query and verdict), registered in
the one table :data:`KINDS`.

Names are imported on first use (PEP 562): evaluation pulls in numpy and scipy, while the result
types (:class:`GateResult`, :class:`KeyResult`) and :class:`GateSpec` stay light, so that the
plugin's reporter can rebuild results without loading the statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_atlas._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["EXPIRED_HINT", "Acceptance", "accept"], "pytest_atlas.gates._allow_list"),
    **dict.fromkeys(["read_baseline", "read_field_baselines", "write_baseline"], "pytest_atlas.gates._baseline"),
    **dict.fromkeys(
        ["FieldOptions", "PathCensus", "fetch_census", "field_census", "field_rows"], "pytest_atlas.gates._fields"
    ),
    **dict.fromkeys(["Declarations", "parse_ini_line", "read_pyproject"], "pytest_atlas.gates._declare"),
    **dict.fromkeys(["evaluate", "gate_result"], "pytest_atlas.gates._evaluate"),
    "unread_names": "pytest_atlas.gates._named",
    **dict.fromkeys(["Context", "Evaluation", "GateKind"], "pytest_atlas.gates._kind"),
    "KINDS": "pytest_atlas.gates._kinds",
    **dict.fromkeys(
        ["DriftInput", "drift_rows", "fetch_drift_inputs", "read_drift"], "pytest_atlas.gates._kinds.drift"
    ),
    **dict.fromkeys(["fetch_modes", "mode_rows"], "pytest_atlas.gates._kinds.execution_modes"),
    "regression_rows": "pytest_atlas.gates._kinds.regression",
    **dict.fromkeys(["fetch_review", "review_rows"], "pytest_atlas.gates._kinds.review"),
    "threshold_rows": "pytest_atlas.gates._kinds.threshold",
    **dict.fromkeys(["NEW_KEY", "GateResult", "KeyResult"], "pytest_atlas.gates._result"),
    "Selection": "pytest_atlas.gates._selection",
    **dict.fromkeys(["Series", "check_series", "fetch_series"], "pytest_atlas.gates._series"),
    "GateSpec": "pytest_atlas.gates._spec",
    **dict.fromkeys(["ALL_KEYS", "connection"], "pytest_atlas.gates._sql"),
}

if TYPE_CHECKING:
    from pytest_atlas.gates._allow_list import EXPIRED_HINT as EXPIRED_HINT
    from pytest_atlas.gates._allow_list import Acceptance as Acceptance
    from pytest_atlas.gates._allow_list import accept as accept
    from pytest_atlas.gates._baseline import read_baseline as read_baseline
    from pytest_atlas.gates._baseline import read_field_baselines as read_field_baselines
    from pytest_atlas.gates._baseline import write_baseline as write_baseline
    from pytest_atlas.gates._declare import Declarations as Declarations
    from pytest_atlas.gates._declare import parse_ini_line as parse_ini_line
    from pytest_atlas.gates._declare import read_pyproject as read_pyproject
    from pytest_atlas.gates._evaluate import evaluate as evaluate
    from pytest_atlas.gates._evaluate import gate_result as gate_result
    from pytest_atlas.gates._fields import FieldOptions as FieldOptions
    from pytest_atlas.gates._fields import PathCensus as PathCensus
    from pytest_atlas.gates._fields import fetch_census as fetch_census
    from pytest_atlas.gates._fields import field_census as field_census
    from pytest_atlas.gates._fields import field_rows as field_rows
    from pytest_atlas.gates._kind import Context as Context
    from pytest_atlas.gates._kind import Evaluation as Evaluation
    from pytest_atlas.gates._kind import GateKind as GateKind
    from pytest_atlas.gates._kinds import KINDS as KINDS
    from pytest_atlas.gates._kinds.drift import DriftInput as DriftInput
    from pytest_atlas.gates._kinds.drift import drift_rows as drift_rows
    from pytest_atlas.gates._kinds.drift import fetch_drift_inputs as fetch_drift_inputs
    from pytest_atlas.gates._kinds.drift import read_drift as read_drift
    from pytest_atlas.gates._kinds.execution_modes import fetch_modes as fetch_modes
    from pytest_atlas.gates._kinds.execution_modes import mode_rows as mode_rows
    from pytest_atlas.gates._kinds.regression import regression_rows as regression_rows
    from pytest_atlas.gates._kinds.review import fetch_review as fetch_review
    from pytest_atlas.gates._kinds.review import review_rows as review_rows
    from pytest_atlas.gates._kinds.threshold import threshold_rows as threshold_rows
    from pytest_atlas.gates._named import unread_names as unread_names
    from pytest_atlas.gates._result import NEW_KEY as NEW_KEY
    from pytest_atlas.gates._result import GateResult as GateResult
    from pytest_atlas.gates._result import KeyResult as KeyResult
    from pytest_atlas.gates._selection import Selection as Selection
    from pytest_atlas.gates._series import Series as Series
    from pytest_atlas.gates._series import check_series as check_series
    from pytest_atlas.gates._series import fetch_series as fetch_series
    from pytest_atlas.gates._spec import GateSpec as GateSpec
    from pytest_atlas.gates._sql import ALL_KEYS as ALL_KEYS
    from pytest_atlas.gates._sql import connection as connection

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
