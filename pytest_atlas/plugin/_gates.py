"""pytest hooks of the gates area: gates as collected items, baselines, the allow-list.

``--atlas-gates`` turns every gate declared in ``[tool.pytest-atlas]`` (pyproject.toml), in
``atlas_gate`` ini lines and with ``@pytest.mark.atlas_gate`` into a test item evaluated against
``--atlas-target``. The item protocol and check mode live in ``_checks``; the tables, JSON report,
step summary and exit status in ``_reporter``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas._properties import result_property
from pytest_atlas.errors import AtlasError, BaselineFileError, ConfigError
from pytest_atlas.fixtures._state import settings_of
from pytest_atlas.plugin._checks import MARKER, CheckItem, announce, target_of
from pytest_atlas.plugin._reporter import SERIES_PROPERTY, AtlasReporter, reporter_of

if TYPE_CHECKING:  # the gate machinery pulls in numpy and scipy: imported only when gates run
    from pytest_atlas.gates._declare import Acceptance, Declarations  # noqa: F401 (used in a string)
    from pytest_atlas.gates._query import Series
    from pytest_atlas.gates._result import GateResult
    from pytest_atlas.gates._spec import GateSpec

_DECLARATIONS = pytest.StashKey["Declarations | None"]()
_BASELINE = pytest.StashKey["dict[str, dict[str, Series]] | BaselineFileError"]()


def _today() -> date:
    override = os.environ.get("PYTEST_ATLAS_TODAY")  # for testing expiry; YYYY-MM-DD
    return date.fromisoformat(override) if override else datetime.now(timezone.utc).date()


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name, kind=..., **options): declare a reward gate; with --atlas-gates it becomes a test "
        "item right after the marked test, evaluated against --atlas-target (see docs/gates.md).",
    )
    settings = settings_of(config)
    config.stash[_DECLARATIONS] = None
    if not settings.gates:
        return
    from pytest_atlas.gates._declare import read_pyproject

    try:
        config.stash[_DECLARATIONS] = read_pyproject(
            _pyproject(config), settings.gate_lines, config.inipath.name if config.inipath else "ini"
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    reporter = reporter_of(config)
    if reporter is not None and settings.save_baseline is not None:
        reporter.finishers.append(_save_baseline)


def _pyproject(config: pytest.Config) -> Path:
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return Path(config.inipath)
    return Path(config.rootpath) / "pyproject.toml"


def _baseline_file(config: pytest.Config) -> dict[str, dict[str, Series]] | None:
    """The --atlas-baseline file, read and checked once per process (its error raised for every gate)."""
    path = settings_of(config).baseline
    if path is None:
        return None
    if _BASELINE not in config.stash:
        from pytest_atlas.gates._baseline import read_baseline

        try:
            config.stash[_BASELINE] = read_baseline(path)
        except BaselineFileError as exc:
            config.stash[_BASELINE] = exc
    loaded = config.stash[_BASELINE]
    if isinstance(loaded, BaselineFileError):
        raise loaded
    return loaded


# ------------------------------------------------------------------------------------------------
# the items
# ------------------------------------------------------------------------------------------------


class GateCollection(pytest.Collector):
    """The parent of the gates declared in configuration (node id: the config file's name)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class GateItem(CheckItem):
    """One gate as a test item: evaluation in setup (a database problem is an ERROR), the verdict
    in the call (fail, or inconclusive when not allowed)."""

    kind = "gate"

    def __init__(self, *, spec: GateSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        if self.config.pluginmanager.hasplugin("xdist"):  # unknown marker otherwise (--strict-markers)
            self.add_marker(pytest.mark.xdist_group("atlas-gates"))

    def evaluate(self) -> dict[str, Any]:
        from pytest_atlas.errors import GateError
        from pytest_atlas.gates._evaluate import evaluate

        config = self.config
        settings = settings_of(config)
        baseline: dict[str, Series] | None = None
        label = "the baseline given"
        if self.spec.kind == "regression" and self.spec.baseline is None:
            loaded = _baseline_file(config)
            if loaded is not None:
                if self.spec.name not in loaded:
                    raise GateError(
                        f"baseline file {settings.baseline} has no gate named {self.spec.name!r} "
                        f"(it has: {', '.join(sorted(map(repr, loaded))) or 'none'})",
                        hint="save the baseline again with --atlas-save-baseline after adding the gate",
                    )
                baseline = loaded[self.spec.name]
                label = f"baseline file {settings.baseline} (gate {self.spec.name!r})"
        result = evaluate(
            self.spec,
            target_of(config),
            baseline=baseline,
            record=settings.save_baseline is not None,
            baseline_label=label,
        )
        result = self._accept(result)
        if result.series and settings.save_baseline is not None:
            series = {key: s.to_json() for key, s in result.series.items()}
            self.user_properties.append((SERIES_PROPERTY, json.dumps({"gate": result.name, "series": series})))
        return result.to_dict()

    def error_payload(self, message: str) -> dict[str, Any]:
        from pytest_atlas.gates._result import GateResult

        result = GateResult(
            self.spec.name,
            self.spec.kind,
            selection=self.spec.describe(),
            error=message,
            allow_inconclusive=self.spec.allow_inconclusive,
        )
        return result.to_dict()

    def problem_text(self, exc: AtlasError) -> str:
        return f"gate {self.spec.name!r} could not be evaluated:\n{exc}"

    def verdict(self, payload: dict[str, Any]) -> str:
        from pytest_atlas._report import render_failure
        from pytest_atlas.gates._result import GateResult

        result = GateResult.from_dict(payload)
        text = render_failure(result)
        if result.expired:
            lines = list(result.expired)
            lines.append(
                "  how to fix: fix the regression, or extend 'until' in [[tool.pytest-atlas.accept]] "
                "with a new reason; remove the entry once the gate passes"
            )
            text = "\n".join(lines) + "\n\n" + text
        return text

    def _accept(self, result: GateResult) -> GateResult:
        from pytest_atlas._outcome import Outcome

        entries = [a for a in _accepted(self.config) if a.gate == self.spec.name]
        if not entries:
            return result
        today = _today()
        rows = []
        for row in result.rows:
            match = next(
                (a for a in entries if a.matches(self.spec.name, row.learning_key) and not a.expired(today)), None
            )
            rows.append(row.accept(match.note()) if match and row.outcome is Outcome.FAIL else row)
        expired = tuple(_describe(a) for a in entries if a.expired(today))
        return replace(result, rows=tuple(rows), expired=expired)


def _accepted(config: pytest.Config) -> tuple[Acceptance, ...]:
    declarations = config.stash.get(_DECLARATIONS, None)
    return declarations.accepted if declarations is not None else ()


def _describe(acceptance: Acceptance) -> str:
    key = f", learning key {acceptance.learning_key}" if acceptance.learning_key else ""
    until = acceptance.until.isoformat()
    return f"accepted regression expired on {until}: gate {acceptance.gate}{key} ({acceptance.reason})"


def _marker_specs(item: pytest.Item) -> list[GateSpec]:
    from pytest_atlas.gates._spec import GateSpec

    specs = []
    for marker in item.iter_markers(MARKER):
        if not marker.args or not isinstance(marker.args[0], str):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.{MARKER} needs the gate name as its first "
                "argument, e.g. @pytest.mark.atlas_gate('reward-floor', kind='threshold', "
                "threshold=0.7)"
            )
        try:
            specs.append(GateSpec.build(marker.args[0], dict(marker.kwargs)))
        except AtlasError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
    return specs


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings_of(config).gates:
        return
    declarations = config.stash[_DECLARATIONS]
    assert declarations is not None
    names = {spec.name for spec in declarations.gates}
    out: list[pytest.Item] = []
    for item in items:
        out.append(item)
        if isinstance(item, GateItem):
            continue
        added = []
        for spec in _marker_specs(item):
            if spec.name in names:
                raise pytest.UsageError(f"gate name {spec.name!r} is declared twice ({item.nodeid})")
            names.add(spec.name)
            assert item.parent is not None
            added.append(
                GateItem.from_parent(item.parent, name=f"atlas_gate[{spec.name}]", spec=spec, origin=item.nodeid)
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


# ------------------------------------------------------------------------------------------------
# baselines (controller) and reward assertions in ordinary tests
# ------------------------------------------------------------------------------------------------


def _save_baseline(reporter: AtlasReporter) -> None:
    """--atlas-save-baseline: write the series every gate saw (collected from the reports)."""
    from pytest_atlas.db import describe_target
    from pytest_atlas.gates._baseline import write_baseline
    from pytest_atlas.gates._query import Series

    config = reporter.config
    settings = settings_of(config)
    assert settings.save_baseline is not None
    series = {
        gate: {key: Series.from_json(data) for key, data in keys.items()} for gate, keys in reporter.series.items()
    }
    try:
        write_baseline(settings.save_baseline, series, source=describe_target(target_of(config)))
    except BaselineFileError as exc:
        reporter.note("gate", str(exc))
        return
    reporter.note("gate", f"baseline written to {settings.save_baseline}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Reward assertion failures in ordinary tests also reach the JSON report (kind ``assertion``)."""
    rewards = sys.modules.get("pytest_atlas.assertions._rewards")  # never imported: nothing to report
    if (
        rewards is not None
        and call.excinfo is not None
        and isinstance(call.excinfo.value, rewards.RewardAssertionError)
        and not isinstance(item, GateItem)
    ):
        payload = call.excinfo.value.result.to_dict()
        payload["name"] = f"{item.nodeid}: {payload['name']}"
        payload["nodeid"] = item.nodeid
        item.user_properties.append(result_property("assertion", payload))
    yield
