"""Every gate the run declared, whether it ran or not, so that every report lists each one.

A gate that never ran (``-x`` or ``--maxfail`` stopped the run first, an interrupt, a crashed
worker) or that the run's selection left out (``-k``, ``-m``, ``--deselect``) records no result of
its own. The roster remembers each declared gate by node id: the configured ones when the
declarations are read, the marker gates when they are collected, and which of them were
deselected. Under pytest-xdist each worker ships its roster to the controller when it finishes;
the controller knows the configured gates itself, so a worker that crashed cannot hide them. The
reporter (``_reporter``) completes its results with a ``not-run`` or ``deselected`` result for
every entry without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_atlas.gates import Declarations, GateSpec

__all__ = ["enlist", "enlist_declared", "stop_reason", "unrun_results"]

#: node id -> {"name", "gate_kind", "origin", "selection", "allow_inconclusive", "deselected"}
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


def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    roster = items[0].config.stash.get(_ROSTER, None)
    if roster is None:
        return
    for item in items:
        if item.nodeid in roster:
            roster[item.nodeid]["deselected"] = True


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
        return "--collect-only: no gate runs"
    maxfail = config.getoption("maxfail", 0) or 0
    if session.shouldfail and maxfail:
        return f"the run stopped before it ({'-x' if maxfail == 1 else f'--maxfail={maxfail}'})"
    if session.shouldstop:
        return f"the run stopped before it ({session.shouldstop})"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted before it"
    return "it did not run (a crashed pytest-xdist worker, or a plugin that left it out)"


def unrun_results(config: pytest.Config, have: set[str], reason: str) -> list[dict[str, Any]]:
    """A ``not-run`` or ``deselected`` gate result for every declared gate without a result of its
    own (``have``: the node ids that have one)."""
    from pytest_atlas.gates import GateResult

    out = []
    for nodeid, entry in sorted(config.stash.get(_ROSTER, {}).items()):
        if nodeid in have:
            continue
        deselected = bool(entry["deselected"])
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
