"""pytest hooks of the payload-contract area: ``--atlas-contract``.

``pytest --atlas-contract --atlas-dsn DSN`` adds one test item per Atlas table and JSON column
(``atlas-contract::sessions.metadata``) and one per relational check (``atlas-contract::sessions[status]``).
Each checks its rows against the JSON Schemas and fails with its grouped report. Results travel to
the controller in ``report.user_properties`` (so pytest-xdist works), where the terminal summary
prints one table; ``--atlas-report`` files them under ``results.contract``.

Nothing heavy is imported unless ``--atlas-contract`` is on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas._properties import result_property
from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures._state import settings_of

if TYPE_CHECKING:
    from pytest_atlas.contracts import ColumnReport, RelationReport
    from pytest_atlas.contracts._targets import Column

COLLECTION = "atlas-contract"
#: user property carrying a compact result to the controller (also read by the --atlas-report writer)
SUMMARY_PROPERTY = "atlas_contract"
_CONNECT_FAILURE = pytest.StashKey[str]()
_SUMMARIES = pytest.StashKey["dict[str, dict[str, Any]]"]()


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_of(config)
    if not settings.contract:
        return
    if settings.dsn is None:
        raise pytest.UsageError(
            "--atlas-contract needs the database to check: pass --atlas-dsn DSN (or set $ATLAS_TEST_DSN / "
            "ini atlas_dsn)"
        )
    config.stash[_SUMMARIES] = {}
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ContractReporter(config), "atlas-contract-reporter")


class ContractCollection(pytest.Collector):
    """The parent of the contract items (node id ``atlas-contract``)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class ContractViolated(Exception):
    """A column or relational check found errors (the message is its grouped report)."""


class ContractItem(pytest.Item):
    """One JSON column (``sessions.metadata``) or one relational check (``sessions[status]``)."""

    def __init__(
        self, *, column: Column | None = None, relation: str | None = None, order: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.column = column
        self.relation = relation
        self.order = order

    def runtest(self) -> None:
        from pytest_atlas.contracts._check import run_checks

        config = self.config
        settings = settings_of(config)
        assert settings.dsn is not None
        earlier = config.stash.get(_CONNECT_FAILURE, None)
        if earlier is not None:
            raise AtlasError(earlier)
        try:
            report = run_checks(
                settings.dsn.reveal(),
                [self.column] if self.column else [],
                [self.relation] if self.relation else [],
                settings.contract_since,
                settings.contract_limit or None,
            )
        except AtlasError as exc:
            if "cannot connect" in exc.problem:
                config.stash[_CONNECT_FAILURE] = str(exc)
            self._record_error(str(exc))
            raise
        part: ColumnReport | RelationReport = report.columns[0] if report.columns else report.relations[0]
        self._record(part)
        text = part.render()
        if part.outcome != "pass":
            raise ContractViolated(text)
        if getattr(part, "warnings", None) or getattr(part, "unknown_fields", None) or getattr(part, "count", 0):
            self.add_report_section("call", "atlas contract", text)

    def _record(self, part: ColumnReport | RelationReport) -> None:
        details = part.to_dict()
        for key in ("errors", "warnings", "unknown_fields"):
            if isinstance(details.get(key), list):
                details[key] = details[key][:50]
        payload = {
            "name": self.name,
            "outcome": part.outcome,
            "nodeid": self.nodeid,
            **_summary(part),
            "details": details,
        }
        self.user_properties.append(result_property("contract", payload))
        summary = _summary(part) | {"name": self.name, "outcome": part.outcome, "order": self.order}
        self.user_properties.append((SUMMARY_PROPERTY, json.dumps(summary)))

    def _record_error(self, message: str) -> None:
        summary = {
            "name": self.name,
            "outcome": "error",
            "schema": "",
            "rows": 0,
            "errors": 1,
            "warnings": 0,
            "unknown": 0,
            "problem": message,
            "order": self.order,
        }
        self.user_properties.append((SUMMARY_PROPERTY, json.dumps(summary)))
        self.user_properties.append(result_property("contract", {**summary, "nodeid": self.nodeid}))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ContractViolated):
            return str(excinfo.value)
        if isinstance(excinfo.value, AtlasError):
            return f"the contract check of {self.name} could not run:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"atlas contract {self.name}"


def _summary(part: ColumnReport | RelationReport) -> dict[str, Any]:
    from pytest_atlas.contracts import ColumnReport

    if isinstance(part, ColumnReport):
        return {
            "schema": part.schema,
            "rows": part.rows_checked,
            "errors": part.error_count,
            "warnings": part.warning_count,
            "unknown": len(part.unknown_fields),
            "problem": part.problem,
        }
    errors = part.count if part.severity == "error" else 0
    return {
        "schema": "(relational)",
        "rows": part.rows_checked,
        "errors": errors,
        "warnings": part.count - errors,
        "unknown": 0,
        "problem": part.problem,
    }


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings_of(config).contract:
        return
    from pytest_atlas.contracts._relations import relation_names
    from pytest_atlas.contracts._targets import TABLES, resolve_targets

    collector = ContractCollection.from_parent(session, name=COLLECTION, nodeid=COLLECTION)
    order = 0
    for column in resolve_targets(None, None):
        order += 1
        items.append(ContractItem.from_parent(collector, name=column.name, column=column, order=order))
    for name in relation_names(set(TABLES)):
        order += 1
        items.append(ContractItem.from_parent(collector, name=name, relation=name, order=order))


class ContractReporter:
    """Controller-side: gathers the results of every contract item and prints one summary table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == SUMMARY_PROPERTY and isinstance(value, str):
                self.config.stash[_SUMMARIES][report.nodeid] = json.loads(value)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        summaries = config.stash.get(_SUMMARIES, {})
        if not summaries:
            return
        settings = settings_of(config)
        from pytest_atlas._dsn import redact

        terminalreporter.section("atlas contract")
        scope = []
        if settings.contract_since:
            scope.append(f"since {settings.contract_since.isoformat()}")
        if settings.contract_limit:
            scope.append(f"newest {settings.contract_limit:,} rows per table")
        terminalreporter.line(f"database: {redact(settings.dsn or '')}" + (f" ({', '.join(scope)})" if scope else ""))
        rows = [("check", "schema", "rows", "errors", "warnings", "unknown keys", "result")]
        for summary in sorted(summaries.values(), key=lambda s: (int(s.get("order", 0)), str(s.get("name")))):
            outcome = str(summary.get("outcome", "error"))
            rows.append(
                (
                    str(summary.get("name")),
                    str(summary.get("schema", "")),
                    f"{summary.get('rows', 0):,}",
                    f"{summary.get('errors', 0):,}",
                    f"{summary.get('warnings', 0):,}",
                    f"{summary.get('unknown', 0):,}",
                    "ok" if outcome == "pass" else outcome.upper(),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for index, row in enumerate(rows):
            line = "  ".join(
                cell.rjust(w) if 2 <= i <= 5 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            failed = index and row[-1] != "ok"
            terminalreporter.line(line, red=bool(failed))
            if index == 0:
                terminalreporter.line("  ".join("-" * w for w in widths))
        errors = sum(int(s.get("errors", 0)) for s in summaries.values())
        warnings = sum(int(s.get("warnings", 0)) for s in summaries.values())
        terminalreporter.line(
            f"contract: {errors:,} error(s), {warnings:,} warning(s) in {len(summaries)} checks",
            red=errors > 0,
            green=errors == 0,
        )
