"""pytest-atlas: test, generate and gate Atlas SDK agent data in PostgreSQL.

This module is the public facade: it only re-exports names defined in the private and area
modules, and it never imports the pytest plugin module. Import from here::

    from pytest_atlas import validate, check_database, assert_no_regression

The pytest plugin imports this package on every pytest start, so the areas are imported on first
use of one of their names (PEP 562), not here: ``import pytest_atlas`` stays fast and pulls in
neither scipy nor jsonschema until they are needed.

Areas (one block each, kept in this order). Each block names its exports twice: in ``_EXPORTS``
(name -> defining module, used at run time) and in the ``TYPE_CHECKING`` imports (``import x as x``,
for type checkers); tests/test_public_api.py checks that the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_atlas._lazy import lazy_exports

# --- errors (light: imported eagerly) ----------------------------------------------------------
from pytest_atlas.errors import (
    AtlasError,
    ConfigError,
    InvalidArgument,
    ProvisioningError,
    SchemaLoadError,
    SeedError,
)

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {}

# --- database server and fixtures (foundation) -------------------------------------------------
_EXPORTS.update(dict.fromkeys(["AtlasPostgres", "rollback"], "pytest_atlas.db"))
_EXPORTS.update(dict.fromkeys(["AtlasDatabase", "AtlasFixtures", "atlas_fixtures"], "pytest_atlas.fixtures"))

# --- payload contracts (validation, contracts, payload assertions) ------------------------------
_EXPORTS.update(
    dict.fromkeys(
        [
            "SCHEMA_NAMES",
            "PayloadCheck",
            "UnknownField",
            "Violation",
            "check_payload",
            "is_valid",
            "iter_errors",
            "load_schema",
            "schema_uri",
            "validate",
        ],
        "pytest_atlas.validation",
    )
)
_EXPORTS.update(
    dict.fromkeys(
        [
            "ATLAS_COLUMNS",
            "ColumnReport",
            "ContractReport",
            "FieldCensus",
            "RelationReport",
            "ViolationGroup",
            "check_database",
        ],
        "pytest_atlas.contracts",
    )
)
_EXPORTS.update(dict.fromkeys(["PayloadAssertionError", "assert_valid_payload"], "pytest_atlas.assertions"))
_EXPORTS.update(dict.fromkeys(["PayloadError"], "pytest_atlas.errors"))

# --- data generation (strategies live in pytest_atlas.strategies; factories, export loader) -----
_EXPORTS.update(
    dict.fromkeys(
        [
            "BoundFactory",
            "Factory",
            "SessionGraph",
            "insert_graph",
            "insert_graphs",
            "insert_rows",
            "load_export",
            "read_export",
            "sequence",
        ],
        "pytest_atlas.factories",
    )
)
_EXPORTS.update(dict.fromkeys(["ExportFormatError", "InsertError"], "pytest_atlas.errors"))

# --- statistics and gates (stats live in pytest_atlas.stats; gates, reward assertions) ----------
_EXPORTS.update(
    dict.fromkeys(
        [
            "ExecutionModesOutOfBounds",
            "ReviewNotClean",
            "RewardAssertionError",
            "RewardBelowThreshold",
            "RewardDrift",
            "RewardRegression",
            "assert_execution_modes",
            "assert_no_drift",
            "assert_no_regression",
            "assert_review_clean",
            "assert_reward_at_least",
        ],
        "pytest_atlas.assertions",
    )
)
_EXPORTS.update(dict.fromkeys(["BaselineFileError", "GateError"], "pytest_atlas.errors"))
_EXPORTS.update(
    dict.fromkeys(["GateResult", "GateSpec", "KeyResult", "Selection", "Series", "evaluate"], "pytest_atlas.gates")
)
_EXPORTS.update(dict.fromkeys(["Outcome"], "pytest_atlas.stats"))

# --- Atlas itself, offline (the runtime lives in pytest_atlas.runtime) --------------------------
_EXPORTS.update(dict.fromkeys(["AtlasRuntime"], "pytest_atlas.runtime"))
_EXPORTS.update(dict.fromkeys(["AtlasRuntimeError", "ScriptError"], "pytest_atlas.errors"))

if TYPE_CHECKING:
    # --- database server and fixtures
    # --- data generation
    # --- statistics and gates
    from pytest_atlas.assertions import ExecutionModesOutOfBounds as ExecutionModesOutOfBounds

    # --- payload contracts
    from pytest_atlas.assertions import PayloadAssertionError as PayloadAssertionError
    from pytest_atlas.assertions import ReviewNotClean as ReviewNotClean
    from pytest_atlas.assertions import RewardAssertionError as RewardAssertionError
    from pytest_atlas.assertions import RewardBelowThreshold as RewardBelowThreshold
    from pytest_atlas.assertions import RewardDrift as RewardDrift
    from pytest_atlas.assertions import RewardRegression as RewardRegression
    from pytest_atlas.assertions import assert_execution_modes as assert_execution_modes
    from pytest_atlas.assertions import assert_no_drift as assert_no_drift
    from pytest_atlas.assertions import assert_no_regression as assert_no_regression
    from pytest_atlas.assertions import assert_review_clean as assert_review_clean
    from pytest_atlas.assertions import assert_reward_at_least as assert_reward_at_least
    from pytest_atlas.assertions import assert_valid_payload as assert_valid_payload
    from pytest_atlas.contracts import ATLAS_COLUMNS as ATLAS_COLUMNS
    from pytest_atlas.contracts import ColumnReport as ColumnReport
    from pytest_atlas.contracts import ContractReport as ContractReport
    from pytest_atlas.contracts import FieldCensus as FieldCensus
    from pytest_atlas.contracts import RelationReport as RelationReport
    from pytest_atlas.contracts import ViolationGroup as ViolationGroup
    from pytest_atlas.contracts import check_database as check_database
    from pytest_atlas.db import AtlasPostgres as AtlasPostgres
    from pytest_atlas.db import rollback as rollback
    from pytest_atlas.errors import AtlasRuntimeError as AtlasRuntimeError
    from pytest_atlas.errors import BaselineFileError as BaselineFileError
    from pytest_atlas.errors import ExportFormatError as ExportFormatError
    from pytest_atlas.errors import GateError as GateError
    from pytest_atlas.errors import InsertError as InsertError
    from pytest_atlas.errors import PayloadError as PayloadError
    from pytest_atlas.errors import ScriptError as ScriptError
    from pytest_atlas.factories import BoundFactory as BoundFactory
    from pytest_atlas.factories import Factory as Factory
    from pytest_atlas.factories import SessionGraph as SessionGraph
    from pytest_atlas.factories import insert_graph as insert_graph
    from pytest_atlas.factories import insert_graphs as insert_graphs
    from pytest_atlas.factories import insert_rows as insert_rows
    from pytest_atlas.factories import load_export as load_export
    from pytest_atlas.factories import read_export as read_export
    from pytest_atlas.factories import sequence as sequence
    from pytest_atlas.fixtures import AtlasDatabase as AtlasDatabase
    from pytest_atlas.fixtures import AtlasFixtures as AtlasFixtures
    from pytest_atlas.fixtures import atlas_fixtures as atlas_fixtures
    from pytest_atlas.gates import GateResult as GateResult
    from pytest_atlas.gates import GateSpec as GateSpec
    from pytest_atlas.gates import KeyResult as KeyResult
    from pytest_atlas.gates import Selection as Selection
    from pytest_atlas.gates import Series as Series
    from pytest_atlas.gates import evaluate as evaluate
    from pytest_atlas.runtime import AtlasRuntime as AtlasRuntime
    from pytest_atlas.stats import Outcome as Outcome
    from pytest_atlas.validation import SCHEMA_NAMES as SCHEMA_NAMES
    from pytest_atlas.validation import PayloadCheck as PayloadCheck
    from pytest_atlas.validation import UnknownField as UnknownField
    from pytest_atlas.validation import Violation as Violation
    from pytest_atlas.validation import check_payload as check_payload
    from pytest_atlas.validation import is_valid as is_valid
    from pytest_atlas.validation import iter_errors as iter_errors
    from pytest_atlas.validation import load_schema as load_schema
    from pytest_atlas.validation import schema_uri as schema_uri
    from pytest_atlas.validation import validate as validate

__all__ = [
    "AtlasError",
    "ConfigError",
    "InvalidArgument",
    "ProvisioningError",
    "SchemaLoadError",
    "SeedError",
    "__version__",
    *_EXPORTS,
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
