"""pytest-atlas: test, generate and gate Atlas SDK agent data in PostgreSQL.

This module is the public facade: it only re-exports names defined in the private and area
modules, and it never imports the pytest plugin module. Import from here::

    from pytest_atlas import validate, check_database, assert_no_regression

Areas (one block each, kept in this order):
errors and settings · database server and fixtures · payload contracts · data generation ·
statistics and gates.
"""

from __future__ import annotations

# --- errors ------------------------------------------------------------------------------------
from pytest_atlas.errors import (
    AtlasError,
    ConfigError,
    InvalidArgument,
    ProvisioningError,
    SchemaLoadError,
)

# --- database server and fixtures (foundation) -------------------------------------------------

# --- payload contracts (validation, contracts, payload assertions) ------------------------------

# --- data generation (strategies live in pytest_atlas.strategies; factories, export loader) -----

# --- statistics and gates (stats live in pytest_atlas.stats; gates, reward assertions) ----------

__version__ = "0.1.0"

__all__ = [
    "AtlasError",
    "ConfigError",
    "InvalidArgument",
    "ProvisioningError",
    "SchemaLoadError",
    "__version__",
]
