"""pytest-xdist scheduling of a gates run (a worker that crashes does not crash the run) and of a
contract run (the ranges of a split column are shared by the workers).

``--atlas-gates`` runs under ``--dist loadscope`` (a plain ``-n`` is turned into it, see ``_gates``)
or ``--dist loadfile``: a marker gate runs on the worker that ran its test, after it. When a test
crashes its worker (a harness that kills the process, a segfault), xdist's scope schedulers put the
crashed test back in the queue with the rest of its module, so every replacement worker ran it
again and crashed again, until xdist's limit of restarts stopped the run: one test counted as many
failures, and its module's other items (its gate among them) never ran.

Here the scheduler is xdist's own, except that the test a worker crashed in is done: reported once
as failed (xdist's "worker crashed while running" report), never sent again; the rest of its module
is run by another worker, where the test's marker gate is an error (its test did not pass there).
Since a scope sent back may hold a single item, and an xdist worker runs an item only once it
holds the next one or is told to stop, a worker is sent scopes until it holds two items or none
are left.

And each contract item is a scope of its own: the contract checks need no worker in common (their
census and report are merged by the controller), and a column split into id ranges
(``--atlas-contract-split-rows``) is scanned by every worker, as under load scheduling, where the
scope ``atlas-contract`` would send every check and range to one of them.

A contract run without gates keeps xdist's load scheduling, except for its first hand-out: xdist
sends each worker a run of consecutive items to start with (a quarter of its share), and the ranges
of a split column are consecutive, so one worker scanned all or most of them while the other
checked the small columns and waited. Here the first items go to the workers one at a time in turn
(as xdist itself does for a collection of fewer than two items per worker); what is left is handed
out as xdist does, to whichever worker has run out.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import pytest

from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._contract import COLLECTION

__all__: list[str] = []

_SCOPED = ("loadscope", "loadfile")


def _without_rerun(base: type[Any]) -> type[Any]:
    """``base`` (an xdist scope scheduler) whose ``remove_node`` never queues the crashed test again,
    whose workers are always sent two items when there are two, and whose every contract item is
    a scope of its own."""

    class Scheduling(base):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(f"{COLLECTION}::"):
                return nodeid  # a contract check or range: a scope of its own
            scope: str = super()._split_scope(nodeid)
            return scope

        def remove_node(self, node: Any) -> str | None:
            workload: dict[str, dict[str, bool]] = self.assigned_work.pop(node)
            if not self._pending_of(workload):
                return None
            crashitem = next(nodeid for unit in workload.values() for nodeid, done in unit.items() if not done)
            for unit in workload.values():
                if crashitem in unit:
                    unit[crashitem] = True  # it crashed its worker: reported as failed once, not run again
            self.workqueue.update((scope, unit) for scope, unit in workload.items() if not all(unit.values()))
            for other in self.assigned_work:
                self._reschedule(other)
            return crashitem

        def _reschedule(self, node: Any) -> None:
            # An xdist worker runs an item only once it holds the next one (or is told to stop),
            # and xdist's rescheduling hands out one scope at a time: a scope sent back with one
            # item left (its crashed test done) would wait for ever on a replacement worker while
            # other scopes wait in the queue. Here a worker is sent scopes until it holds two
            # items or the queue is empty; then xdist's own rule (one more, or stop).
            if not node.shutting_down:
                while self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
                    self._assign_work_unit(node)
            super()._reschedule(node)

    Scheduling.__name__ = Scheduling.__qualname__ = f"Atlas{base.__name__}"
    return Scheduling


def _taking_turns(base: type[Any]) -> type[Any]:
    """``base`` (xdist's load scheduler) whose first hand-out gives the workers one item at a time,
    in turn, as many in all as xdist's first hand-out would."""

    class Scheduling(base):  # type: ignore[misc]
        collection: Any  # (xdist's, set by schedule)
        maxschedchunk: Any

        def schedule(self) -> None:
            if self.collection is not None:
                super().schedule()  # handing out the rest
                return
            if not self._check_nodes_have_same_collection():
                # xdist's own refusal, the difference posted once (xdist's schedule would post it again)
                self.log("**Different tests collected, aborting run**")
                return
            collection = next(iter(self.node2collection.values()))
            workers = len(self.nodes)
            if len(collection) < 2 * workers:
                super().schedule()  # xdist hands these out in turn itself
                return
            self.collection = collection
            self.pending[:] = range(len(collection))
            if self.maxschedchunk is None:
                self.maxschedchunk = len(collection)
            each = max(min(len(collection) // workers // 4, self.maxschedchunk), 2)  # xdist's first share
            turns = itertools.cycle(self.nodes)
            for _ in range(each * workers):
                self._send_tests(next(turns), 1)
            if not self.pending:
                for node in self.nodes:
                    node.shutdown()

    Scheduling.__name__ = Scheduling.__qualname__ = f"Atlas{base.__name__}"
    return Scheduling


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own, which would make its scheduler
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    dist = config.getoption("dist", None)
    settings = settings_of(config)
    # pytest-xdist calls this hook, its schedulers loaded (pytest-atlas does not depend on it)
    schedulers = sys.modules.get("xdist.scheduler")
    if settings.contract and not settings.gates and dist == "load":
        load = getattr(schedulers, "LoadScheduling", None)
        needed = ("_send_tests", "_check_nodes_have_same_collection")
        if not isinstance(load, type) or not all(callable(getattr(load, name, None)) for name in needed):
            return None  # a pytest-xdist without them: its own scheduler
        return _taking_turns(load)(config, log)
    if not settings.gates or dist not in _SCOPED:
        return None
    base = getattr(schedulers, "LoadScopeScheduling" if dist == "loadscope" else "LoadFileScheduling", None)
    if not isinstance(base, type) or not callable(getattr(base, "_reschedule", None)):
        return None  # a pytest-xdist without them: its own scheduler
    return _without_rerun(base)(config, log)
