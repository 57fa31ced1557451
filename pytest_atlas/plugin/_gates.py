"""pytest hooks of the gates area: gates as collected items, baselines, the allow-list, reports.

* ``--atlas-gates`` turns every gate declared in ``[tool.pytest-atlas]`` (pyproject.toml), in
  ``atlas_gate`` ini lines and with ``@pytest.mark.atlas_gate`` into a test item evaluated against
  ``--atlas-dsn``.
* Results travel to the controller in ``report.user_properties`` (so pytest-xdist works); the
  controller prints the summary table, writes ``--atlas-report`` JSON, appends a Markdown table to
  ``$GITHUB_STEP_SUMMARY`` and sets the exit status: 1 when a gate (or any test) failed, 7 when a
  gate could not be evaluated, 6 when a gate was inconclusive, else pytest's own.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas._dsn import redact
from pytest_atlas._properties import parse_result_property, result_property
from pytest_atlas.errors import AtlasError, BaselineFileError, ConfigError, GateError
from pytest_atlas.fixtures._state import settings_of

if TYPE_CHECKING:  # the gate machinery pulls in numpy and scipy: imported only when gates run
    from pytest_atlas.gates._declare import Acceptance, Declarations  # noqa: F401 (used in a string)
    from pytest_atlas.gates._query import Series
    from pytest_atlas.gates._result import GateResult
    from pytest_atlas.gates._spec import GateSpec

#: exit status when no gate failed but one could not be evaluated
EXIT_GATE_ERROR = 7
#: exit status when no gate failed or errored but one was inconclusive (and that is not allowed)
EXIT_INCONCLUSIVE = 6

SERIES_PROPERTY = "atlas_series"
_MARKER = "atlas_gate"

_DECLARATIONS = pytest.StashKey["Declarations | None"]()
_BASELINE = pytest.StashKey["dict[str, dict[str, Series]] | BaselineFileError"]()
_PAYLOADS = pytest.StashKey["dict[str, dict[str, Any]]"]()
_SERIES = pytest.StashKey["dict[str, dict[str, Any]]"]()
_FAILED_OTHER = pytest.StashKey["set[str]"]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _today() -> date:
    override = os.environ.get("PYTEST_ATLAS_TODAY")  # for testing expiry; YYYY-MM-DD
    return date.fromisoformat(override) if override else datetime.now(timezone.utc).date()


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(name, kind=..., **options): declare a reward gate; with --atlas-gates it becomes a test "
        "item right after the marked test, evaluated against --atlas-dsn (see docs/gates.md).",
    )
    config.stash[_PAYLOADS] = {}
    config.stash[_SERIES] = {}
    config.stash[_FAILED_OTHER] = set()
    settings = settings_of(config)
    config.stash[_DECLARATIONS] = None
    if settings.gates:
        from pytest_atlas.gates._declare import read_pyproject

        try:
            config.stash[_DECLARATIONS] = read_pyproject(
                _pyproject(config), settings.gate_lines, config.inipath.name if config.inipath else "ini"
            )
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if not _is_worker(config):
        config.pluginmanager.register(GateReporter(config), "atlas-gate-reporter")
    if settings.gates and settings.dsn is None:
        raise pytest.UsageError(
            "--atlas-gates needs the database to gate: pass --atlas-dsn DSN (or set $ATLAS_TEST_DSN / ini atlas_dsn)"
        )


def _pyproject(config: pytest.Config) -> Path:
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return Path(config.inipath)
    return Path(config.rootpath) / "pyproject.toml"


def _baseline(config: pytest.Config) -> dict[str, dict[str, Series]] | BaselineFileError | None:
    path = settings_of(config).baseline
    if path is None:
        return None
    if _BASELINE not in config.stash:
        from pytest_atlas.gates._baseline import read_baseline

        try:
            config.stash[_BASELINE] = read_baseline(path)
        except BaselineFileError as exc:
            config.stash[_BASELINE] = exc
    return config.stash[_BASELINE]


# ------------------------------------------------------------------------------------------------
# collection
# ------------------------------------------------------------------------------------------------


class GateCollection(pytest.Collector):
    """The parent of the gates declared in configuration (node id: the config file's name)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class GateItem(pytest.Item):
    """One gate as a test item: evaluation in setup (so a database problem is an ERROR), the
    verdict in the call (fail, or inconclusive when not allowed)."""

    def __init__(self, *, spec: GateSpec, origin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.origin = origin
        self.result: GateResult | None = None
        if self.config.pluginmanager.hasplugin("xdist"):  # unknown marker otherwise (--strict-markers)
            self.add_marker(pytest.mark.xdist_group("atlas-gates"))

    def setup(self) -> None:
        from pytest_atlas.gates._evaluate import evaluate
        from pytest_atlas.gates._result import GateResult

        config = self.config
        settings = settings_of(config)
        assert settings.dsn is not None
        baseline_series: dict[str, Series] | None = None
        try:
            if self.spec.kind == "regression" and self.spec.baseline is None:
                loaded = _baseline(config)
                if isinstance(loaded, BaselineFileError):
                    raise loaded
                if loaded is not None:
                    if self.spec.name not in loaded:
                        raise GateError(
                            f"baseline file {settings.baseline} has no gate named {self.spec.name!r} "
                            f"(it has: {', '.join(sorted(loaded)) or 'none'})",
                            hint="save the baseline again with --atlas-save-baseline after adding the gate",
                        )
                    baseline_series = loaded[self.spec.name]
            result = evaluate(
                self.spec, settings.dsn.reveal(), baseline=baseline_series, record=settings.save_baseline is not None
            )
        except AtlasError as exc:
            result = GateResult(
                self.spec.name,
                self.spec.kind,
                selection=self.spec.describe(),
                error=str(exc).replace("\n", " "),
                allow_inconclusive=self.spec.allow_inconclusive,
            )
            self._record(result)
            raise
        self.result = self._accept(result)
        self._record(self.result)

    def _accept(self, result: GateResult) -> GateResult:
        from pytest_atlas.gates._result import GateResult
        from pytest_atlas.stats._compare import Outcome

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
        expired = [a for a in entries if a.expired(today)]
        notes = list(result.notes) + [f"accepted regression expired: {_describe(a)}" for a in expired]
        return GateResult(
            result.name,
            result.kind,
            tuple(rows),
            result.message,
            result.selection,
            result.error,
            result.allow_inconclusive,
            tuple(notes),
            result.series,
        )

    def _record(self, result: GateResult) -> None:
        payload = result.to_dict()
        payload["nodeid"] = self.nodeid
        payload["origin"] = self.origin
        self.user_properties.append(result_property("gate", payload))
        self.user_properties.append(("atlas_gate", result.name))
        self.user_properties.append(("atlas_outcome", result.outcome.value))
        self.user_properties.append(("atlas_summary", result.summary))
        if result.series and settings_of(self.config).save_baseline is not None:
            series = {key: s.to_json() for key, s in result.series.items()}
            self.user_properties.append((SERIES_PROPERTY, json.dumps({"gate": result.name, "series": series})))

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        expired = [a for a in _accepted(self.config) if a.gate == self.spec.name and a.expired(_today())]
        if expired:
            raise GateExpired(result, expired)
        if result.blocking:
            raise GateFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GateFailed | GateExpired):
            return str(excinfo.value)
        if isinstance(excinfo.value, AtlasError):
            return f"gate {self.spec.name!r} could not be evaluated:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # setup errors (the database, the baseline file) are shown as their message: a traceback
        # would only add noise -- and the DSN argument, password included
        if isinstance(excinfo.value, AtlasError):
            return f"gate {self.spec.name!r} could not be evaluated:\n{excinfo.value}"
        return super()._repr_failure_py(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"atlas gate {self.spec.name} ({self.spec.kind})"


def _accepted(config: pytest.Config) -> tuple[Acceptance, ...]:
    declarations = config.stash.get(_DECLARATIONS, None)
    return declarations.accepted if declarations is not None else ()


def _describe(acceptance: Acceptance) -> str:
    key = f", learning key {acceptance.learning_key}" if acceptance.learning_key else ""
    return f"gate {acceptance.gate}{key} was accepted until {acceptance.until.isoformat()} ({acceptance.reason})"


class GateFailed(Exception):
    def __init__(self, result: GateResult) -> None:
        from pytest_atlas._report import render_failure

        self.result = result
        super().__init__(render_failure(result))


class GateExpired(Exception):
    def __init__(self, result: GateResult, expired: list[Acceptance]) -> None:
        from pytest_atlas._report import render_failure

        self.result = result
        lines = [f"accepted regression expired on {a.until.isoformat()}: {_describe(a)}" for a in expired]
        lines.append(
            "  how to fix: fix the regression, or extend 'until' in [[tool.pytest-atlas.accept]] "
            "with a new reason; remove the entry once the gate passes"
        )
        super().__init__("\n".join(lines) + "\n\n" + render_failure(result))


def _marker_specs(item: pytest.Item) -> list[GateSpec]:
    from pytest_atlas.gates._spec import GateSpec

    specs = []
    for marker in item.iter_markers(_MARKER):
        if not marker.args or not isinstance(marker.args[0], str):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.{_MARKER} needs the gate name as its first "
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
        for spec in _marker_specs(item):
            if spec.name in names:
                raise pytest.UsageError(f"gate name {spec.name!r} is declared twice ({item.nodeid})")
            names.add(spec.name)
            assert item.parent is not None
            out.append(
                GateItem.from_parent(item.parent, name=f"atlas_gate[{spec.name}]", spec=spec, origin=item.nodeid)
            )
    collectors: dict[str, GateCollection] = {}
    for spec, origin in zip(declarations.gates, declarations.origins, strict=True):
        if origin not in collectors:
            collectors[origin] = GateCollection.from_parent(session, name=origin, nodeid=origin)
        out.append(GateItem.from_parent(collectors[origin], name=spec.name, spec=spec, origin=origin))
    if len(out) == len(items):
        raise pytest.UsageError(
            "--atlas-gates was given but no gate is declared: add [tool.pytest-atlas.gates] to pyproject.toml, "
            "atlas_gate lines to the ini file, or @pytest.mark.atlas_gate(...) to a test (see docs/gates.md)"
        )
    items[:] = out


# ------------------------------------------------------------------------------------------------
# results: collected from reports (works on the xdist controller), status, assertion failures
# ------------------------------------------------------------------------------------------------


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


def _gate_payload(report: pytest.TestReport) -> dict[str, Any] | None:
    for name, value in report.user_properties:
        payload = parse_result_property(name, value)
        if payload is not None and payload.get("kind") == "gate":
            return payload
    return None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when != "call":
        return None
    payload = _gate_payload(report)
    if payload is not None and payload.get("outcome") == "inconclusive":
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None


def _results(config: pytest.Config) -> list[GateResult]:
    payloads = [p for p in config.stash.get(_PAYLOADS, {}).values() if p.get("kind") == "gate"]
    if not payloads:
        return []
    from pytest_atlas.gates._result import GateResult

    return [GateResult.from_dict(p) for p in sorted(payloads, key=lambda p: str(p.get("nodeid")))]


def _final_status(config: pytest.Config, exitstatus: int) -> int:
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return exitstatus
    blocking = [r for r in _results(config) if r.blocking]
    if config.stash.get(_FAILED_OTHER, set()) or any(r.outcome.value == "fail" for r in blocking):
        return int(exitstatus)
    if any(r.outcome.value == "error" for r in blocking):
        return EXIT_GATE_ERROR
    if blocking:
        return EXIT_INCONCLUSIVE
    return int(exitstatus)


class GateReporter:
    """Per-run collector of results (registered on the controller; reads every report)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        config = self.config
        is_gate = False
        for name, value in report.user_properties:
            payload = parse_result_property(name, value)
            if payload is not None:
                key = str(payload.get("nodeid", report.nodeid)) + "|" + str(payload.get("kind"))
                config.stash[_PAYLOADS][key] = payload
                is_gate = is_gate or payload.get("kind") == "gate"
            elif name == SERIES_PROPERTY and isinstance(value, str):
                data = json.loads(value)
                config.stash[_SERIES][data["gate"]] = data["series"]
        if report.failed and not is_gate:
            config.stash[_FAILED_OTHER].add(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        _finish(session, exitstatus)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        _summary(terminalreporter, exitstatus, config)


def _finish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    settings = settings_of(config)
    status = _final_status(config, int(exitstatus))
    if status != exitstatus:
        session.exitstatus = status
    results = _results(config)
    if settings.save_baseline is not None and settings.gates:
        from pytest_atlas.gates._baseline import write_baseline
        from pytest_atlas.gates._query import Series

        series = {
            gate: {key: Series.from_json(data) for key, data in keys.items()}
            for gate, keys in config.stash[_SERIES].items()
        }
        try:
            write_baseline(settings.save_baseline, series, source=redact(settings.dsn) if settings.dsn else None)
        except BaselineFileError as exc:
            config.stash[_SERIES]["__error__"] = {"message": str(exc)}
    if settings.report is not None:
        from pytest_atlas._report import build_report, write_report

        report = build_report(
            list(config.stash[_PAYLOADS].values()),
            exit_status=int(status),
            extra={
                "dsn": redact(settings.dsn) if settings.dsn else None,
                "baseline": str(settings.baseline) if settings.baseline else None,
            },
        )
        write_report(settings.report, report)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and results:
        from pytest_atlas._report import render_markdown

        with open(summary_file, "a", encoding="utf-8") as stream:
            stream.write(render_markdown(results))


def _summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = _results(config)
    if not results:
        return
    from pytest_atlas._report import render_table

    terminalreporter.section("atlas gates")
    for line in render_table(results).splitlines():
        terminalreporter.line(line)
    for result in results:
        if result.error is not None:
            terminalreporter.line(f"{result.name}: ERROR: {result.error}", red=True)
        elif not result.rows:
            terminalreporter.line(f"{result.name}: FAIL: {result.message}", red=True)
        for row in result.rows:
            if row.outcome.value != "pass":
                accepted = f" [accepted {row.accepted}]" if row.accepted else ""
                terminalreporter.line(f"{result.name} / {row.learning_key or '(no key)'}: {row.reason}{accepted}")
        for note in result.notes:
            terminalreporter.line(f"{result.name}: note: {note}")
    status = _final_status(config, int(exitstatus))
    settings = settings_of(config)
    if status == EXIT_INCONCLUSIVE:
        terminalreporter.line(
            f"exit status {EXIT_INCONCLUSIVE}: inconclusive gate(s); add sessions, or set "
            "allow_inconclusive = true on the gate",
            yellow=True,
        )
    elif status == EXIT_GATE_ERROR:
        terminalreporter.line(f"exit status {EXIT_GATE_ERROR}: gate(s) could not be evaluated", red=True)
    if settings.save_baseline is not None and settings.gates:
        error = config.stash[_SERIES].get("__error__")
        terminalreporter.line(error["message"] if error else f"baseline written to {settings.save_baseline}")
    if settings.report is not None:
        terminalreporter.line(f"gate report: {settings.report}")
