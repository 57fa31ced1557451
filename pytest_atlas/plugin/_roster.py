"""Every gate the run declared and every contract check of its scope, whether it ran or not, so
that every report lists each one.

A gate that never ran (``-x`` or ``--maxfail`` stopped the run first, an interrupt, a crashed
worker) or that the run's selection left out (``-k``, ``-m``, ``--deselect``) records no result of
its own. The roster remembers each declared gate by node id: the configured ones when the
declarations are read, the marker gates when they are collected, and which of them were
deselected. Under pytest-xdist each worker ships its roster to the controller when it finishes;
the controller knows the configured gates itself, so a worker that crashed cannot hide them. The
contract checks are enlisted from the scope (one per JSON column and relational check, whatever
id ranges split them), by every process. The reporter (``_reporter``) completes its results with
a ``not-run`` or ``deselected`` result for every entry without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_atlas.gates import Declarations, GateSpec

__all__ = ["enlist", "enlist_checks", "enlist_declared", "stop_reason", "unrun_results"]

#: node id -> a gate's {"name", "gate_kind", "origin", "selection", "allow_inconclusive", "deselected"},
#: or a contract check's {"kind": "contract", "name", "order", "schema", "deselected", "parts", "left_out"}
_ROSTER = pytest.StashKey["dict[str, dict[str, Any]]"]()
#: node ids a pytest-xdist worker reported on (the controller trusts their deselection)
_REPORTED = pytest.StashKey["set[str]"]()
_WORKER_KEY = "atlas_gate_roster"


def _roster(config: pytest.Config) -> dict[str, dict[str, Any]]:
    return config.stash.setdefault(_ROSTER, {})


def _entry(spec: GateSpec, origin: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "gate_kind": spec.kind,
        "origin": origin,
        "selection": spec.describe(),
        "allow_inconclusive": spec.allow_inconclusive,
        "deselected": False,
    }


def enlist_declared(config: pytest.Config, declarations: Declarations) -> None:
    """The gates of ``[tool.pytest-atlas]`` and ``atlas_gate`` lines (node id ``origin::name``)."""
    roster = _roster(config)
    for spec, origin in zip(declarations.gates, declarations.origins, strict=True):
        roster.setdefault(f"{origin}::{spec.name}", _entry(spec, origin))


def enlist(config: pytest.Config, items: Iterable[Any]) -> None:
    """Gate items as collected (``spec``, ``origin`` and ``nodeid`` attributes)."""
    roster = _roster(config)
    for item in items:
        roster.setdefault(item.nodeid, _entry(item.spec, item.origin))


def enlist_checks(config: pytest.Config, checks: Iterable[tuple[str, str, int, str]]) -> None:
    """Contract checks as ``(node id, name, order, schema)``: the node id of a check's item, which a
    column split into id ranges shares with its merged result."""
    roster = _roster(config)
    for nodeid, name, order, schema in checks:
        roster.setdefault(
            nodeid,
            {
                "kind": "contract",
                "name": name,
                "order": order,
                "schema": schema,
                "deselected": False,
                "parts": None,
                "left_out": [],
            },
        )


def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    roster = items[0].config.stash.get(_ROSTER, None)
    if roster is None:
        return
    for item in items:
        id_range = getattr(item, "id_range", None)
        entry = roster.get(getattr(item, "roster_key", item.nodeid))
        if entry is None:
            continue
        if id_range is None:
            entry["deselected"] = True
        else:  # one range of a split column: the column is deselected when every range is
            entry["parts"] = id_range.count
            entry["left_out"] = sorted({*entry["left_out"], id_range.index})
            entry["deselected"] = len(entry["left_out"]) == id_range.count


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and _ROSTER in session.config.stash:
        workeroutput[_WORKER_KEY] = json.dumps(session.config.stash[_ROSTER], default=str)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: merge a worker's roster. A gate counts as deselected only when every worker
    that reported it deselected it."""
    raw = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if not isinstance(raw, str):
        return
    config: pytest.Config = node.config
    roster = _roster(config)
    reported = config.stash.setdefault(_REPORTED, set())
    for nodeid, entry in json.loads(raw).items():
        known = roster.setdefault(nodeid, entry)
        first = nodeid not in reported
        known["deselected"] = bool(entry["deselected"]) and (first or bool(known["deselected"]))
        reported.add(nodeid)


def stop_reason(session: pytest.Session, exitstatus: int) -> str:
    """Why the gates without a result did not run, as a report says it."""
    config = session.config
    if config.getoption("collectonly", False):
        return "--collect-only: nothing runs"
    maxfail = config.getoption("maxfail", 0) or 0
    if session.shouldfail and maxfail:
        return f"the run stopped before it ({'-x' if maxfail == 1 else f'--maxfail={maxfail}'})"
    if session.shouldstop:
        return f"the run stopped before it ({session.shouldstop})"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted before it"
    return "it did not run (a crashed pytest-xdist worker, or a plugin that left it out)"


def unrun_results(config: pytest.Config, have: set[str], reason: str) -> list[dict[str, Any]]:
    """A ``not-run`` or ``deselected`` result for every declared gate and contract check without a
    result of its own (``have``: the node ids that have one)."""
    from pytest_atlas.gates import GateResult

    out = []
    for nodeid, entry in sorted(config.stash.get(_ROSTER, {}).items()):
        if nodeid in have:
            continue
        deselected = bool(entry["deselected"])
        if entry.get("kind") == "contract":
            out.append(_unrun_check(nodeid, entry, reason, deselected=deselected))
            continue
        result = GateResult.did_not_run(
            entry["name"],
            entry["gate_kind"],
            "deselected by the run's selection (-k, -m, --deselect)" if deselected else reason,
            deselected=deselected,
            selection=dict(entry["selection"]),
            allow_inconclusive=bool(entry["allow_inconclusive"]),
        )
        out.append({**result.to_dict(), "nodeid": nodeid, "origin": entry["origin"]})
    return out


def _unrun_check(nodeid: str, entry: dict[str, Any], reason: str, *, deselected: bool) -> dict[str, Any]:
    """The result of a contract check that never ran, shaped as a check's (see ``_contract``)."""
    outcome = "deselected" if deselected else "not-run"
    why = "deselected by the run's selection (-k, -m, --deselect)" if deselected else reason
    name = str(entry["name"])
    row = {"name": name, "schema": entry["schema"], "rows": 0, "errors": 0, "warnings": 0, "unknown": None}
    return {
        "kind": "contract",
        "name": name,
        "nodeid": nodeid,
        "origin": "",
        "outcome": outcome,
        "blocking": not deselected,
        "summary": f"{'deselected' if deselected else 'not run'}: {why}",
        "order": entry["order"],
        "problem": None,
        "row": {**row, "outcome": outcome},
        "details": {},
        "text": "",
    }
