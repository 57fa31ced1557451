"""Database contract checks: every Atlas JSON column against its JSON Schema, plus relational checks.

>>> report = check_database("postgresql://user@host/atlas", since="2025-11-01")  # doctest: +SKIP
>>> print(report)          # a readable table; report.to_json() for machines
>>> report.ok              # False on any error (warnings do not count)
"""

from __future__ import annotations

from pytest_atlas.contracts._check import check_database, has_rows, run_checks, run_ranges
from pytest_atlas.contracts._relations import REVIEW_STATUSES, SESSION_STATUSES, relation_names
from pytest_atlas.contracts._result import (
    SUMMARY_HEADERS,
    SUMMARY_NUMBERS,
    ColumnReport,
    ContractReport,
    FieldCensus,
    RelationReport,
    ViolationGroup,
    summary_row,
)
from pytest_atlas.contracts._split import IdRange, merge_parts, plan_ranges
from pytest_atlas.contracts._targets import ATLAS_COLUMNS, TABLES, Column, resolve_targets

__all__ = [
    "ATLAS_COLUMNS",
    "REVIEW_STATUSES",
    "SESSION_STATUSES",
    "SUMMARY_HEADERS",
    "SUMMARY_NUMBERS",
    "TABLES",
    "Column",
    "ColumnReport",
    "ContractReport",
    "FieldCensus",
    "IdRange",
    "RelationReport",
    "ViolationGroup",
    "check_database",
    "has_rows",
    "merge_parts",
    "plan_ranges",
    "relation_names",
    "resolve_targets",
    "run_checks",
    "run_ranges",
    "summary_row",
]
