"""pytest hooks of the payload-contract area: ``--atlas-contract``.

``pytest --atlas-contract --atlas-target DSN`` adds one test item per Atlas table and JSON column
(``atlas-contract::sessions.metadata``) and one per relational check (``atlas-contract::sessions[status]``).
Each checks its rows against the JSON Schemas in setup and fails with its grouped report; the
shared item protocol, check mode and the reporter live in ``_checks`` and ``_reporter``.

Nothing heavy is imported unless ``--atlas-contract`` is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import CheckItem, announce, target_of

if TYPE_CHECKING:
    from pytest_atlas.contracts import Column, ColumnReport, RelationReport

COLLECTION = "atlas-contract"
#: the first connection failure of this process: later items report it at once (no second timeout)
_CONNECT_FAILURE = pytest.StashKey[AtlasError]()
#: whether any selected contract item has a row to check (computed once per process, when needed)
_HAS_ROWS = pytest.StashKey[bool]()


class ContractCollection(pytest.Collector):
    """The parent of the contract items (node id ``atlas-contract``)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class ContractItem(CheckItem):
    """One JSON column (``sessions.metadata``) or one relational check (``sessions[status]``)."""

    kind = "contract"

    def __init__(
        self, *, column: Column | None = None, relation: str | None = None, order: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.column = column
        self.relation = relation
        self.order = order

    def evaluate(self) -> dict[str, Any]:
        from pytest_atlas.contracts import run_checks

        config = self.config
        settings = settings_of(config)
        earlier = config.stash.get(_CONNECT_FAILURE, None)
        if earlier is not None:
            raise earlier
        try:
            report = run_checks(
                target_of(config),
                [self.column] if self.column else [],
                [self.relation] if self.relation else [],
                settings.contract_since,
                settings.contract_limit or None,
                require_rows=False,
            )
        except AtlasError as exc:
            config.stash[_CONNECT_FAILURE] = exc
            raise
        part: ColumnReport | RelationReport = report.columns[0] if report.columns else report.relations[0]
        if part.problem is None and part.rows_checked == 0 and not self._run_has_rows():
            part.empty_run = True
        if part.outcome == "pass" and (
            getattr(part, "warnings", None) or getattr(part, "unknown_fields", None) or getattr(part, "count", 0)
        ):
            self.add_report_section("call", "atlas contract", part.render())
        return self._payload(part)

    def _run_has_rows(self) -> bool:
        """Does any contract item of this run have a row to check? (no verdict without evidence)"""
        config = self.config
        if _HAS_ROWS not in config.stash:
            from pytest_atlas.contracts import has_rows

            siblings = [item for item in self.session.items if isinstance(item, ContractItem)]
            config.stash[_HAS_ROWS] = has_rows(
                target_of(config),
                [item.column for item in siblings if item.column is not None],
                [item.relation for item in siblings if item.relation is not None],
                settings_of(config).contract_since,
            )
        return config.stash[_HAS_ROWS]

    def _payload(self, part: ColumnReport | RelationReport) -> dict[str, Any]:
        details = part.to_dict()
        for key in ("errors", "warnings", "unknown_fields"):
            if isinstance(details.get(key), list):
                details[key] = details[key][:50]
        row = part.summary()
        return {
            "name": self.name,
            "outcome": part.outcome,
            "blocking": part.outcome != "pass",
            "summary": _one_line(part),
            "order": self.order,
            "problem": part.problem,
            "row": row,
            "details": details,
            "text": part.render() if part.outcome != "pass" else "",
        }

    def error_payload(self, message: str) -> dict[str, Any]:
        schema = self.column.schema_name if self.column is not None else "(relational)"
        row = {"name": self.name, "schema": schema, "rows": 0, "errors": 1, "warnings": 0, "unknown": None}
        row["outcome"] = "error"
        return {
            **super().error_payload(message),
            "order": self.order,
            "problem": message,
            "row": row,
        }

    def verdict(self, payload: dict[str, Any]) -> str:
        return str(payload.get("text") or payload.get("summary"))


def _one_line(part: ColumnReport | RelationReport) -> str:
    row = part.summary()
    if part.problem:
        return f"error: {part.problem}"
    if part.empty_run:
        return "fail: no row was checked anywhere in this run"
    return f"{part.outcome}: {row['rows']:,} rows, {row['errors']:,} error(s), {row['warnings']:,} warning(s)"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings_of(config).contract:
        return
    from pytest_atlas.contracts import TABLES, relation_names, resolve_targets

    collector = ContractCollection.from_parent(session, name=COLLECTION, nodeid=COLLECTION)
    added: list[pytest.Item] = []
    for column in resolve_targets(None, None):
        added.append(
            ContractItem.from_parent(collector, name=column.name, column=column, order=len(added) + 1, origin="")
        )
    for name in relation_names(set(TABLES)):
        added.append(ContractItem.from_parent(collector, name=name, relation=name, order=len(added) + 1, origin=""))
    announce(collector, added)
    items.extend(added)
