"""pytest hooks of the gates area: ``--atlas-gates`` turns every gate declared in
``[tool.pytest-atlas]`` (pyproject.toml), in ``atlas_gate`` ini lines and with
``@pytest.mark.atlas_gate`` into a test item evaluated against ``--atlas-target``.

The item is :mod:`._gate_item`, baseline files :mod:`._baselines`, the item protocol and check mode
:mod:`._checks`, the tables, JSON report, step summary and exit status :mod:`._reporter`.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas.errors import AtlasError, ConfigError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import MARKER, announce
from pytest_atlas.plugin._gate_item import GateCollection, GateItem, accepted_key, how_it_went
from pytest_atlas.plugin._roster import enlist, enlist_declared

if TYPE_CHECKING:
    from pytest_atlas.gates import Declarations, GateSpec  # noqa: F401 (Declarations: in a string)

_DECLARATIONS = pytest.StashKey["Declarations"]()
#: every gate name declared so far (pyproject.toml, ini lines, the markers collected), and where
_NAMES = pytest.StashKey[dict[str, str]]()
#: a marker was refused (its module is a collection error)
_BAD_MARKERS = pytest.StashKey[bool]()
#: on a test: the gates its markers declare, checked when its module was collected
_SPECS = pytest.StashKey[list["GateSpec"]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name, kind=..., **options): declare a reward gate; with --atlas-gates it becomes a test "
        "item right after the marked test, evaluated against --atlas-target (see docs/gates.md).",
    )
    if not settings_of(config).gates:
        return
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", None) == "load":  # a plain -n
        # load scheduling may run a marked test and its gate on two workers, so the gate could not
        # know how its test went; loadscope sends each module's items (a marker gate is an item of
        # its test's module) and the configured gates to one worker each, in collection order
        config.option.dist = "loadscope"
    from pytest_atlas.gates import read_pyproject

    try:
        declarations = read_pyproject(
            _pyproject(config), settings_of(config).gate_lines, config.inipath.name if config.inipath else "ini"
        )
    except ConfigError as exc:
        from pytest_atlas.plugin._scrub import usage_error

        raise usage_error(exc) from None
    config.stash[_DECLARATIONS] = declarations
    config.stash[_NAMES] = {
        spec.name: origin for spec, origin in zip(declarations.gates, declarations.origins, strict=True)
    }
    config.stash[accepted_key] = declarations.accepted
    enlist_declared(config, declarations)  # the controller of an xdist run collects nothing itself


def _pyproject(config: pytest.Config) -> Path:
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return Path(config.inipath)
    return Path(config.rootpath) / "pyproject.toml"


class _BadMarker(Exception):
    """A mistake in an ``atlas_gate`` marker: the message of its module's collection error."""


def _marker_specs(item: pytest.Item, names: dict[str, str]) -> list[GateSpec]:
    """The gates ``item``'s markers declare, each checked, its name added to ``names`` (every gate
    name declared so far, and where). Raises _BadMarker."""
    from pytest_atlas.gates import Declarations, GateSpec  # noqa: F401 (Declarations: in a string)

    specs = []
    for marker in item.iter_markers(MARKER):
        if not marker.args or not isinstance(marker.args[0], str):
            raise _BadMarker(
                f"{item.nodeid}: @pytest.mark.{MARKER} needs the gate name as its first "
                "argument, e.g. @pytest.mark.atlas_gate('reward-floor', kind='threshold', "
                "threshold=0.7)"
            )
        try:
            spec = GateSpec.build(marker.args[0], dict(marker.kwargs))
        except AtlasError as exc:
            raise _BadMarker(f"{item.nodeid}: {exc}") from None
        if spec.name in names:
            how = (
                "a marker on a parametrized test declares its gate once per parameter: give each parameter its "
                "own gate (pytest.param(..., marks=pytest.mark.atlas_gate(...))), or declare the gate once in "
                "pyproject.toml"
                if hasattr(item, "callspec")
                else "give each gate its own name"
            )
            raise _BadMarker(
                f"gate name {spec.name!r} is declared twice ({item.nodeid}; first in {names[spec.name]})\n"
                f"  how to fix: {how}"
            )
        names[spec.name] = item.nodeid
        specs.append(spec)
    return specs


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """The markers of every test are checked as its module (or class) is collected: a mistake is a
    collection error of that module, with its message, in one process and on a pytest-xdist
    worker alike (a usage error raised by a worker is lost: the controller only sees it crash)."""
    report = yield
    config = collector.config
    if not settings_of(config).gates or not report.passed:
        return report
    names = config.stash[_NAMES]
    try:
        for node in report.result:
            if isinstance(node, pytest.Item) and not isinstance(node, GateItem):
                node.stash[_SPECS] = _marker_specs(node, names)
    except _BadMarker as exc:
        from pytest_atlas.plugin._scrub import own_message

        report.outcome = "failed"
        report.longrepr = own_message(str(exc))  # (a marker's value may be a DSN of any database)
        report.result = []
        config.stash[_BAD_MARKERS] = True
    return report


# tryfirst: the items exist before other plugins select from them (--sw, -k, -m, ...)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings_of(config).gates:
        return
    if config.stash.get(_BAD_MARKERS, False) and not config.option.continue_on_collection_errors:
        # nothing runs on a bad declaration: pytest stops after collection errors itself, while a
        # pytest-xdist worker would run its items anyway; it stops, and so does its controller
        # (which shows the errors and says why it stopped, as pytest does)
        items[:] = []
        count = session.testsfailed
        session.shouldstop = f"{count} error{'' if count == 1 else 's'} during collection"
        return
    declarations = config.stash[_DECLARATIONS]
    out: list[pytest.Item] = []
    for item in items:
        out.append(item)
        if isinstance(item, GateItem):
            continue
        added = []
        specs = item.stash.get(_SPECS, None)
        if specs is None:  # an item a plugin made outside collection: checked now
            try:
                specs = _marker_specs(item, config.stash[_NAMES])
            except _BadMarker as exc:
                from pytest_atlas.plugin._scrub import usage_error

                raise usage_error(exc) from None
        for spec in specs:
            assert item.parent is not None
            added.append(
                GateItem.from_parent(
                    item.parent, name=f"atlas_gate[{spec.name}]", spec=spec, origin=item.nodeid, declared_on=item
                )
            )
        if added:
            assert isinstance(item.parent, pytest.Collector)
            announce(item.parent, added)
            out.extend(added)
    collectors: dict[str, GateCollection] = {}
    declared: dict[str, list[pytest.Item]] = {}
    for spec, origin in zip(declarations.gates, declarations.origins, strict=True):
        if origin not in collectors:
            collectors[origin] = GateCollection.from_parent(session, name=origin, nodeid=origin)
        declared.setdefault(origin, []).append(
            GateItem.from_parent(collectors[origin], name=spec.name, spec=spec, origin=origin)
        )
    for origin, gate_items in declared.items():
        announce(collectors[origin], gate_items)
        out.extend(gate_items)
    if not any(isinstance(item, GateItem) for item in out):
        raise pytest.UsageError(
            "--atlas-gates was given but no gate is declared: add [tool.pytest-atlas.gates] to pyproject.toml, "
            "atlas_gate lines to the ini file, or @pytest.mark.atlas_gate(...) to a test (see docs/gates.md)"
        )
    items[:] = out
    enlist(config, (item for item in out if isinstance(item, GateItem)))


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: sees the report as xfail and skip leave it
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Note how each test went (on the test: its marker gates read it): passed, or what happened
    first when it did not (a gate a marker declares on such a test is an error)."""
    report: pytest.TestReport = yield
    if settings_of(item.config).gates and not isinstance(item, GateItem):
        missed = _not_passed(report)
        # the first thing that went wrong stays
        if (missed or report.when == "call") and item.stash.get(how_it_went, None) is None:
            item.stash[how_it_went] = missed
    return report


def _not_passed(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return "failed as expected (xfail)" if report.skipped else None
    if report.skipped:
        return "was skipped"
    if report.failed:
        return "failed" if report.when == "call" else f"errored in its {report.when}"
    return None
