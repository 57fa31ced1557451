"""pytest hooks of the payload-contract area: ``--atlas-contract``.

``pytest --atlas-contract --atlas-target DSN`` adds one test item per Atlas table and JSON column
(``atlas-contract::sessions.metadata``) and one per relational check (``atlas-contract::sessions[status]``).
Each checks its rows against the JSON Schemas in setup and fails with its grouped report; the
shared item protocol, check mode and the reporter live in ``_checks`` and ``_reporter``.

A column of a big table (``--atlas-contract-split-rows``) becomes one item per id range
(``atlas-contract::sessions.metadata[1/4]``). The ranges are planned once, by the controller (under
pytest-xdist it hands the plan to every worker, so all collect the same items); each range item
sends its findings with its setup report (``atlas_contract_part``), and :func:`merge_split` turns
a column's range payloads back into the one payload of the whole column, the one the report shows
and counts.

Nothing heavy is imported unless ``--atlas-contract`` is on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import CheckItem, announce, earlier_failure, remember_failure, target_of
from pytest_atlas.plugin._roster import enlist_checks

if TYPE_CHECKING:
    from pytest_atlas.contracts import Column, ColumnReport, IdRange, RelationReport

COLLECTION = "atlas-contract"
#: the plan of id ranges: {table: [IdRange.to_dict(), ...]} (made once, on the controller)
_PLAN = pytest.StashKey[dict[str, list[dict[str, Any]]]]()
#: the workerinput key that carries the plan to pytest-xdist workers
WORKER_PLAN = "atlas_contract_ranges"
#: the report attribute that carries a range item's findings to the controller
PART_ATTRIBUTE = "atlas_contract_part"
#: the ranges' reports of a column scanned once for all of its range items: {column: {index: report}}
_RANGE_REPORTS = pytest.StashKey[dict[str, dict[int, "ColumnReport"]]]()
#: whether any selected contract item has a row to check (computed once per process, when needed)
_HAS_ROWS = pytest.StashKey[dict[str, bool]]()


class ContractCollection(pytest.Collector):
    """The parent of the contract items (node id ``atlas-contract``)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class ContractItem(CheckItem):
    """One JSON column (``sessions.metadata``) or one relational check (``sessions[status]``)."""

    kind = "contract"

    def __init__(
        self,
        *,
        column: Column | None = None,
        relation: str | None = None,
        order: int = 0,
        id_range: IdRange | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.column = column
        self.relation = relation
        self.order = order
        self.id_range = id_range
        #: a range item's findings (JSON), sent to the controller with the setup report
        self.part_state: str | None = None

    @property
    def roster_key(self) -> str:
        """The node id of this check's result: a range's is its column's (the merged result's)."""
        if self.id_range is None or self.column is None:
            return self.nodeid
        return f"{COLLECTION}::{self.column.name}"

    def evaluate(self) -> dict[str, Any]:
        config = self.config
        earlier = earlier_failure(config)
        if earlier is not None:
            raise earlier
        started = time.monotonic()
        try:
            part = self._read()  # a read the server cut is read again by the contracts layer
        except AtlasError as exc:
            remember_failure(config, exc, started)
            raise
        if part.problem is None and part.rows_checked == 0 and not self._run_has_rows():
            part.empty_run = True
        if part.outcome == "pass" and (
            getattr(part, "warnings", None) or getattr(part, "unknown_fields", None) or getattr(part, "count", 0)
        ):
            self.add_report_section("call", "atlas contract", part.render())
        payload = contract_payload(self.name, self.order, part)
        if self.id_range is not None and self.column is not None:
            payload["part"] = _part_info(self.column.name, self.id_range)
            self.part_state = json.dumps(getattr(part, "part", None), default=str)
        return payload

    def _read(self) -> ColumnReport | RelationReport:
        """This item's report, from one read of its rows."""
        from pytest_atlas.contracts import run_checks

        settings = settings_of(self.config)
        if self.id_range is not None and self.column is not None and self._runs_every_range(self.column):
            return self._range_report(self.column, self.id_range)
        report = run_checks(
            target_of(self.config),
            [self.column] if self.column else [],
            [self.relation] if self.relation else [],
            settings.contract_since,
            settings.contract_limit or None,
            require_rows=False,
            id_range=self.id_range,
        )
        return report.columns[0] if report.columns else report.relations[0]

    def _runs_every_range(self, column: Column) -> bool:
        """Does this process run every range item of ``column``? (no pytest-xdist, or one worker, and
        none of them deselected): then one scan serves them all."""
        workerinput: dict[str, Any] | None = getattr(self.config, "workerinput", None)
        if workerinput is not None and workerinput.get("workercount") != 1:
            return False
        ranges = [
            item.id_range
            for item in self.session.items
            if isinstance(item, ContractItem) and item.column == column and item.id_range is not None
        ]
        return bool(ranges) and len({r.index for r in ranges}) == ranges[0].count

    def _range_report(self, column: Column, id_range: IdRange) -> ColumnReport:
        """This range's report, from the one scan of the column's every range (made by its first item)."""
        from pytest_atlas.contracts import IdRange, run_ranges

        waiting = self.config.stash.setdefault(_RANGE_REPORTS, {})
        if id_range.index not in waiting.get(column.name, {}):  # the first range item (or one run again)
            ranges = [IdRange.from_dict(r) for r in _plan_of(self.config)[column.table.name]]
            reports = run_ranges(target_of(self.config), column, ranges, settings_of(self.config).contract_since)
            waiting[column.name] = {r.index: report for r, report in zip(ranges, reports, strict=True)}
        reports_of = waiting[column.name]
        report = reports_of.pop(id_range.index)
        if not reports_of:
            del waiting[column.name]
        return report

    def _run_has_rows(self) -> bool:
        """Does the run have evidence for this item? A JSON column's item needs a document in some
        JSON column of the run (rows the relational checks read say nothing of the JSON); a
        relational check's, anything any item of the run checks (a database of discovery runs alone
        has no row for the relational checks, and that is fine). No verdict without evidence."""
        config = self.config
        kind = "columns" if self.column is not None else "relations"
        found = config.stash.setdefault(_HAS_ROWS, {})
        if kind not in found:
            from pytest_atlas.contracts import has_rows

            siblings = [item for item in self.session.items if isinstance(item, ContractItem)]
            columns = [item.column for item in siblings if item.column is not None]
            relations = [item.relation for item in siblings if item.relation is not None]
            found[kind] = has_rows(
                target_of(config), columns, relations if kind == "relations" else [], settings_of(config).contract_since
            )
        return found[kind]

    def error_payload(self, message: str) -> dict[str, Any]:
        schema = self.column.schema_name if self.column is not None else "(relational)"
        payload = {**super().error_payload(message), **_error_fields(self.name, schema, self.order, message)}
        if self.id_range is not None and self.column is not None:
            payload["part"] = _part_info(self.column.name, self.id_range)
        return payload

    def verdict(self, payload: dict[str, Any]) -> str:
        return str(payload.get("text") or payload.get("summary"))


def contract_payload(name: str, order: int, part: ColumnReport | RelationReport) -> dict[str, Any]:
    """The result payload of one contract check (an item's, or a split column's merged one)."""
    details = part.to_dict()
    for key in ("errors", "warnings", "unknown_fields"):
        if isinstance(details.get(key), list):
            details[key] = details[key][:50]
    return {
        "name": name,
        "outcome": part.outcome,
        "blocking": part.outcome != "pass",
        "summary": _one_line(part),
        "order": order,
        "problem": part.problem,
        "row": part.summary(),
        "details": details,
        "text": part.render() if part.outcome != "pass" else "",
    }


def _error_fields(name: str, schema: str, order: int, message: str) -> dict[str, Any]:
    row = {"name": name, "schema": schema, "rows": 0, "errors": 1, "warnings": 0, "unknown": None, "outcome": "error"}
    return {"order": order, "problem": message, "row": row}


def _part_info(column: str, id_range: IdRange) -> dict[str, Any]:
    return {"of": column, "index": id_range.index, "count": id_range.count, "range": id_range.to_dict()}


def _one_line(part: ColumnReport | RelationReport) -> str:
    row = part.summary()
    if part.problem:
        return f"error: {part.problem}"
    if part.empty_run:
        from pytest_atlas.contracts import ColumnReport

        nothing = "JSON document" if isinstance(part, ColumnReport) else "row"
        return f"fail: no {nothing} was checked anywhere in this run"
    return f"{part.outcome}: {row['rows']:,} rows, {row['errors']:,} error(s), {row['warnings']:,} warning(s)"


def _scope() -> list[tuple[str, int, Column | None, str | None]]:
    """The checks of a contract run, in order, as ``(name, order, column, relation)``: one per JSON
    column (whatever id ranges split it) and one per relational check."""
    from pytest_atlas.contracts import TABLES, relation_names, resolve_targets

    columns = [(column.name, order, column, None) for order, column in enumerate(resolve_targets(None, None), 1)]
    first = len(columns) + 1
    return [
        *columns,
        *((name, order, None, name) for order, name in enumerate(relation_names(set(TABLES)), first)),
    ]


def pytest_configure(config: pytest.Config) -> None:
    if not settings_of(config).contract:
        return
    # every check of the scope, so that every report lists one that did not run (the controller of
    # an xdist run collects nothing itself)
    enlist_checks(
        config,
        (
            (f"{COLLECTION}::{name}", name, order, column.schema_name if column else "(relational)")
            for name, order, column, _ in _scope()
        ),
    )


# tryfirst: the items exist before other plugins select from them (--sw, -k, -m, ...)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings_of(config).contract:
        return
    from pytest_atlas.contracts import IdRange

    plan = {table: [IdRange.from_dict(r) for r in ranges] for table, ranges in _plan_of(config).items()}
    collector = ContractCollection.from_parent(session, name=COLLECTION, nodeid=COLLECTION)
    added: list[pytest.Item] = []
    for name, order, column, relation in _scope():
        if column is None:
            added.append(ContractItem.from_parent(collector, name=name, relation=relation, order=order, origin=""))
            continue
        ranges: list[IdRange | None] = [*plan.get(column.table.name, [])] or [None]
        for id_range in ranges:
            part = name if id_range is None else f"{name}[{id_range.index}/{id_range.count}]"
            added.append(
                ContractItem.from_parent(collector, name=part, column=column, order=order, id_range=id_range, origin="")
            )
    announce(collector, added)
    items.extend(added)


# ------------------------------------------------------------------------------------------------
# id ranges: planned once, merged on the controller
# ------------------------------------------------------------------------------------------------


def _plan_of(config: pytest.Config) -> dict[str, list[dict[str, Any]]]:
    """The run's plan of id ranges: the controller's (handed to workers), made on first need."""
    if _PLAN not in config.stash:
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None and isinstance(workerinput.get(WORKER_PLAN), dict):
            config.stash[_PLAN] = workerinput[WORKER_PLAN]
        else:
            config.stash[_PLAN] = _make_plan(config)
    return config.stash[_PLAN]


def _make_plan(config: pytest.Config) -> dict[str, list[dict[str, Any]]]:
    settings = settings_of(config)
    if not settings.contract or not settings.contract_split_rows or settings.contract_limit:
        return {}
    from pytest_atlas.contracts import plan_ranges, resolve_targets

    started = time.monotonic()
    try:
        plan = plan_ranges(
            target_of(config), resolve_targets(None, None), settings.contract_since, settings.contract_split_rows
        )
    except AtlasError as exc:
        # unreachable: no split; a target that does not answer costs one connect timeout here, and
        # the items that follow soon after report this failure at once, not after a second one
        remember_failure(config, exc, started)
        return {}
    return {table: [r.to_dict() for r in ranges] for table, ranges in plan.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: every worker collects the items of the controller's plan."""
    if settings_of(node.config).contract:
        node.workerinput[WORKER_PLAN] = _plan_of(node.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "setup" and isinstance(item, ContractItem) and item.part_state is not None:
        setattr(report, PART_ATTRIBUTE, item.part_state)  # a plain attribute: pytest-xdist ships it too
    return report


def merge_split(payloads: Sequence[Mapping[str, Any]], states: Mapping[str, str]) -> list[dict[str, Any]]:
    """The payloads with every split column's range payloads replaced, where its first one was, by the
    one payload of the whole column (``states``: the range items' findings by node id). A column
    whose ranges did not all run, or one of which could not run, is an error: it has no verdict."""
    out: list[dict[str, Any] | str] = []
    split: dict[str, list[Mapping[str, Any]]] = {}
    for payload in payloads:
        part = payload.get("part") if payload.get("kind") == "contract" else None
        if not isinstance(part, Mapping):
            out.append(dict(payload))
            continue
        name = str(part.get("of"))
        if name not in split:
            split[name] = []
            out.append(name)
        split[name].append(payload)
    return [item if isinstance(item, dict) else _merged(item, split[item], states) for item in out]


def _merged(name: str, parts: Sequence[Mapping[str, Any]], states: Mapping[str, str]) -> dict[str, Any]:
    from pytest_atlas.contracts import ColumnReport, merge_parts

    parts = sorted(parts, key=lambda p: int(p["part"]["index"]))
    first = parts[0]
    count = int(first["part"]["count"])
    ran = {int(p["part"]["index"]) for p in parts}
    details = first.get("details") or {}
    schema = str(details.get("schema") or first.get("row", {}).get("schema", ""))
    common = {
        "kind": "contract",
        "nodeid": f"{COLLECTION}::{name}",
        "origin": "",
        "parts": [p["nodeid"] for p in parts],
    }
    missing = [index for index in range(1, count + 1) if index not in ran]
    broken = [p for p in parts if str(p.get("nodeid")) not in states]
    if missing or broken:
        if broken:
            problem = str(broken[0].get("problem") or broken[0].get("summary") or "a range could not be checked")
        else:
            problem = (
                f"only id range(s) {', '.join(str(i) for i in sorted(ran))} of {count} of {name} ran (the others "
                "were deselected, or their worker stopped): a split scan has a verdict only when every range runs "
                "(select the column, e.g. -k 'sessions.metadata', not single ranges)"
            )
        first_line = (problem.splitlines() or [""])[0]
        return {
            "name": name,
            "outcome": "error",
            "blocking": True,
            "summary": f"error: {first_line}",
            **_error_fields(name, schema, int(first.get("order", 0)), problem),
            **common,
        }
    table, _, column = name.partition(".")
    reports = []
    for payload in parts:
        report = ColumnReport(table=table, column=column, schema=schema)
        report.part = json.loads(states[str(payload["nodeid"])])
        report.empty_run = bool((payload.get("details") or {}).get("empty_run"))
        reports.append(report)
    return {**contract_payload(name, int(first.get("order", 0)), merge_parts(reports)), **common}
