"""What contract checks and gates share as pytest items: the check mode, the item, collection.

* **Check mode.** ``--atlas-contract`` and ``--atlas-gates`` read the database named by
  ``--atlas-target`` (never ``--atlas-dsn``, the server for test databases). In check mode only
  the contract and gate items run, plus tests that carry an ``atlas_gate`` marker (right before
  their gate); every other test is deselected, and the header says how many and how to run them
  too (``--atlas-with-tests``).
* **The item.** A :class:`CheckItem` evaluates in ``setup`` (so a check that cannot run is a
  pytest *error*, exit status 7) and gives its verdict in ``call`` (a *failure*, exit status 1, or
  an *inconclusive* result, exit status 6). Either way it records one result payload in its
  ``user_properties`` first, so the reporter counts exactly one outcome per item, on every path.
* **Collection.** Items made in ``pytest_collection_modifyitems`` are announced with a collect
  report, so pytest's "collected N items" counts them.

The reporting itself (tables, JSON, JUnit, step summary, exit status) lives in ``_reporter``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from pytest_atlas._dsn import Dsn, hide_dsn_passwords, scrub
from pytest_atlas._properties import parse_result_property, result_property
from pytest_atlas._table import escape_lines
from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures import settings_of

__all__ = [
    "MARKER",
    "CheckItem",
    "announce",
    "check_mode",
    "earlier_failure",
    "remember_failure",
    "result_payload",
    "target_of",
]

#: the marker that declares a gate on a test
MARKER = "atlas_gate"
_LEFT_OUT = pytest.StashKey[int]()
#: a slow failure to connect to the target (a host that does not answer: a connect timeout) and
#: when it happened: the next check items report it at once for a while, instead of waiting out the
#: timeout again. A quick failure (refused, a database closed for a restart) is not kept: the next
#: item tries again, so a fault that passed is not reported by every later item.
_CONNECT_FAILURE = pytest.StashKey[tuple[AtlasError, float]]()
#: a connection failure this slow is kept ...
_SLOW_FAILURE = 1.0
#: ... for this long (seconds)
_KEEP_FAILURE = 60.0


def earlier_failure(config: pytest.Config) -> AtlasError | None:
    """The slow connection failure an earlier check item of this process met, if still kept."""
    earlier = config.stash.get(_CONNECT_FAILURE, None)
    return earlier[0] if earlier is not None and time.monotonic() - earlier[1] < _KEEP_FAILURE else None


def remember_failure(config: pytest.Config, exc: AtlasError, started: float) -> None:
    """Keep ``exc``, a failure to connect to the target met since ``started``, if it was slow."""
    now = time.monotonic()
    if now - started >= _SLOW_FAILURE:
        config.stash[_CONNECT_FAILURE] = (exc, now)


def check_mode(config: pytest.Config) -> list[str]:
    """The check options given (``--atlas-contract``, ``--atlas-gates``); empty outside check mode."""
    settings = settings_of(config)
    return [name for name, on in (("--atlas-contract", settings.contract), ("--atlas-gates", settings.gates)) if on]


def target_of(config: pytest.Config) -> Dsn:
    """The DSN of the checked database. The one place the plugin reads it (see pytest_configure)."""
    target = settings_of(config).target
    assert target is not None  # pytest_configure refused check mode without a target
    return target


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    modes = check_mode(config)
    if modes and settings_of(config).target is None:
        raise pytest.UsageError(
            f"{' and '.join(modes)} need{'s' if len(modes) == 1 else ''} the database to check: pass "
            "--atlas-target DSN, set $ATLAS_TARGET_DSN, or set the ini key atlas_target "
            "(--atlas-dsn only ever names the server for test databases)"
        )


def pytest_report_header(config: pytest.Config) -> list[str]:
    modes = check_mode(config)
    if not modes:
        return []
    from pytest_atlas.db import describe_target

    settings = settings_of(config)
    ordinary = (
        "ordinary tests run too (--atlas-with-tests)"
        if settings.with_tests
        else "ordinary tests are left out (add --atlas-with-tests to run them too)"
    )
    return [f"atlas: {' and '.join(modes)} check {describe_target(target_of(config))} (read-only); {ordinary}"]


# ------------------------------------------------------------------------------------------------
# collection
# ------------------------------------------------------------------------------------------------


def announce(collector: pytest.Collector | pytest.Session, items: Sequence[pytest.Item]) -> None:
    """Tell pytest (and its "collected N items" line) about items added after collection."""
    if items:
        collector.config.hook.pytest_collectreport(
            report=pytest.CollectReport(collector.nodeid or "atlas", "passed", None, list(items))
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check mode: keep the check items (and the tests their gates are declared on), leave out the rest."""
    if not check_mode(config) or settings_of(config).with_tests:
        return
    gated = {item.origin for item in items if isinstance(item, CheckItem) and item.origin}
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        if isinstance(item, CheckItem) or item.nodeid in gated:
            kept.append(item)
        else:
            left_out.append(item)
    config.stash[_LEFT_OUT] = len(left_out)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def left_out(config: pytest.Config) -> int | None:
    """How many ordinary tests check mode left out (None outside check mode or before collection;
    under pytest-xdist the controller learns it from its workers when they finish)."""
    return config.stash.get(_LEFT_OUT, None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and _LEFT_OUT in session.config.stash:
        workeroutput["atlas_left_out"] = session.config.stash[_LEFT_OUT]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: every worker deselected the same tests; keep their count for the summary."""
    count = getattr(node, "workeroutput", {}).get("atlas_left_out")
    if isinstance(count, int):
        node.config.stash[_LEFT_OUT] = count


def left_out_line(count: int) -> str:
    return (
        f"atlas: {count} ordinary test{'' if count == 1 else 's'} left out: only contract and gate items "
        "run with --atlas-contract / --atlas-gates; add --atlas-with-tests to run them too"
    )


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    count = left_out(config)
    return [left_out_line(count)] if count else []


# ------------------------------------------------------------------------------------------------
# the item
# ------------------------------------------------------------------------------------------------


class CheckItem(pytest.Item):
    """A contract check or a gate. Subclasses set :attr:`kind` and implement :meth:`evaluate`
    (returns the result payload: a JSON object with ``name``, ``outcome``, ``blocking``,
    ``summary``) and :meth:`verdict` (the text shown when the check does not pass)."""

    kind: ClassVar[str] = "check"

    def __init__(self, *, origin: str = "", **kwargs: Any) -> None:
        if kwargs.get("nodeid") is None:
            # the node id as a string, parsed the way pytest parses the ids it keeps between runs (the
            # cache of --lf and --sw): a name with brackets (``sessions[status]``, ``atlas_gate[floor]``)
            # is a name with parameters there, and an id built as a child would never equal it
            kwargs["nodeid"] = f"{kwargs['parent'].nodeid}::{kwargs['name']}"
        super().__init__(**kwargs)
        #: where the check was declared (a file name, or the node id of the test a marker is on)
        self.origin = origin
        self.payload: dict[str, Any] | None = None

    # -- to implement ----------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        raise NotImplementedError

    def error_payload(self, message: str) -> dict[str, Any]:
        """The payload of a check that could not be evaluated."""
        first = (message.splitlines() or [""])[0]
        return {"name": self.name, "outcome": "error", "blocking": True, "summary": f"error: {first}"}

    def verdict(self, payload: dict[str, Any]) -> str:
        raise NotImplementedError

    def problem_text(self, exc: AtlasError) -> str:
        return f"the {self.kind} check {self.name} could not run:\n{exc}"

    # -- the protocol ----------------------------------------------------------------------------

    def setup(self) -> None:
        try:
            payload = self.evaluate()
        except AtlasError as exc:
            self._record(self.error_payload(_own(str(exc))))
            # the message alone: a traceback through the plugin adds noise (and the DSN argument)
            raise pytest.fail.Exception(escape_lines(_own(self.problem_text(exc))), pytrace=False) from None
        except Exception as exc:  # a bug: still one outcome for this item, and the traceback to report it
            # (a driver's message may quote the connection string: the payload goes into the reports)
            self._record(self.error_payload(_own(f"internal error: {type(exc).__name__}: {exc}")))
            raise
        self._record(payload)
        if payload.get("outcome") == "error":  # evaluated, but it could not check: an error, like the above
            raise pytest.fail.Exception(escape_lines(_own(self.verdict(payload))), pytrace=False)

    def runtest(self) -> None:
        payload = self.payload
        assert payload is not None
        if payload.get("blocking"):
            raise pytest.fail.Exception(escape_lines(_own(self.verdict(payload))), pytrace=False)

    def _record(self, payload: dict[str, Any]) -> None:
        payload = {**payload, "nodeid": self.nodeid, "origin": self.origin}
        self.payload = payload
        self.user_properties.append(result_property(self.kind, payload))
        self.user_properties.append((f"atlas_{self.kind}", str(payload["name"])))
        self.user_properties.append(("atlas_outcome", str(payload["outcome"])))
        self.user_properties.append(("atlas_summary", str(payload.get("summary", ""))))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"atlas {self.kind} {self.name}"


def _own(message: str) -> str:
    """A message of the check's own (its error, its verdict) as it may be shown and recorded:
    without the run's secrets and without the password of any connection string it quotes, the
    run's or another database's (a path or a declared value that holds a DSN)."""
    return hide_dsn_passwords(scrub(message))


def result_payload(report: pytest.TestReport) -> dict[str, Any] | None:
    """The result payload a check item recorded in this report (None for other tests)."""
    for name, value in report.user_properties:
        payload = parse_result_property(name, value)
        if payload is not None and payload.get("kind") in ("gate", "contract"):
            return payload
    return None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when != "call":
        return None
    payload = result_payload(report)
    if payload is not None and payload.get("outcome") == "inconclusive":
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None
