"""The one reporter of contract checks, gates and reward assertions (on the controller).

Every check item records one result payload in its ``user_properties`` (see ``_checks``);
pytest-xdist ships reports to the controller, where :class:`AtlasReporter` collects them. At the
end of the run it

* sets the exit status: 1 when a check (or any other test) failed, else 7 when a check could not
  be evaluated, else 6 when a check was inconclusive and that is not allowed;
* prints one section per kind (``atlas contract``, ``atlas gates``): the table, the reasons, and a
  count line whose numbers are the items' outcomes;
* writes ``--atlas-report`` JSON and ``--atlas-report-html`` HTML (charts), and appends a
  Markdown section (tables and Mermaid charts) to ``$GITHUB_STEP_SUMMARY``.

JUnit XML carries the same results: each item's ``user_properties`` (``atlas_gate`` or
``atlas_contract``, ``atlas_outcome``, ``atlas_summary``, ``atlas_result``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_atlas._dsn import hide_dsn_passwords
from pytest_atlas._outcome import EXIT_ERROR, EXIT_INCONCLUSIVE, Outcome, exit_status
from pytest_atlas._properties import parse_result_property
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import check_mode, left_out, left_out_line, target_of
from pytest_atlas.plugin._roster import stop_reason, unrun_results

__all__ = ["AtlasReporter", "draws_charts", "reporter_of"]

_KEY = pytest.StashKey["AtlasReporter"]()
_KINDS = ("contract", "gate")


#: pytest's options that write every item's ``user_properties`` (gate payloads, charts included)
_PROPERTY_REPORTS = ("xmlpath", "report_log")


def draws_charts(config: pytest.Config) -> bool:
    """Whether this run writes a report that carries the gates' charts: ``--atlas-report``,
    ``--atlas-report-html``, ``$GITHUB_STEP_SUMMARY``, or a file of every item's properties (JUnit
    XML, pytest-reportlog). Without one, gate items skip the queries only a chart reads."""
    settings = settings_of(config)
    if settings.report is not None or settings.report_html is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        return True
    return any(getattr(config.option, name, None) for name in _PROPERTY_REPORTS)


class AtlasReporter:
    """Per-run collector of check results (registered on the controller; reads every report)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: payloads by node id and kind, in the order they arrived
        self.payloads: dict[str, dict[str, Any]] = {}
        #: the findings of contract id-range items by node id (merged into one check per column)
        self.part_states: dict[str, str] = {}
        #: node ids of failed tests that are not checks (they make the exit status 1)
        self.other_failures: set[str] = set()
        #: one line per file the run was asked to write and did not (refused, or not writable)
        self.unwritten: list[str] = []
        #: the fields of the files that were not written (their paths are not shown as reports)
        self.failed_writes: set[str] = set()
        #: lines other plugin modules add to a kind's section (e.g. "baseline written to ...")
        self.notes: dict[str, list[str]] = {}
        #: callbacks run at session finish before the report is written (e.g. saving a baseline)
        self.finishers: list[Callable[[AtlasReporter], None]] = []
        self.status: int | None = None
        #: :meth:`results`, kept until the next report arrives (the end of a run asks for it ~10 times)
        self._results: list[dict[str, Any]] | None = None
        #: why the declared gates without a result did not run (set when the session finishes)
        self.stopped = "it has not run yet"

    # -- collecting --------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._results = None
        is_check = False
        for name, value in report.user_properties:
            payload = parse_result_property(name, value)
            if payload is not None:
                key = f"{payload.get('nodeid', report.nodeid)}|{payload.get('kind')}"
                self.payloads[key] = payload
                is_check = is_check or payload.get("kind") in _KINDS
        state = getattr(report, "atlas_contract_part", None)  # see _contract.PART_ATTRIBUTE
        if isinstance(state, str):
            self.part_states[report.nodeid] = state
        if report.failed and not is_check:
            self.other_failures.add(report.nodeid)

    def results(self) -> list[dict[str, Any]]:
        """Every result, one per check: a split contract's id ranges merged into one, and a
        ``not-run`` or ``deselected`` result for every declared gate and contract check that has none (once: the exit
        status, the JSON, HTML and Markdown reports and the terminal sections all read them)."""
        if self._results is None:
            from pytest_atlas.plugin._contract import merge_split

            results = merge_split(list(self.payloads.values()), self.part_states)
            ran = {str(p.get("nodeid")) for p in results}
            self._results = results + unrun_results(self.config, ran, self.stopped)
        return self._results

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [p for p in self.results() if p.get("kind") == kind]

    def note(self, kind: str, line: str) -> None:
        self.notes.setdefault(kind, []).append(line)

    # -- the verdict -------------------------------------------------------------------------------

    def final_status(self, pytest_status: int) -> int:
        # --collect-only runs no check: their not-run results are shown, and do not set the status
        counted = ("fail", "error", "inconclusive") + (() if self.config.option.collectonly else ("not-run",))
        blocking = [
            Outcome(str(p.get("outcome")))
            for kind in _KINDS
            for p in self.of_kind(kind)
            if p.get("blocking") and p.get("outcome") in counted
        ]
        return exit_status(pytest_status, blocking, other_failures=bool(self.other_failures))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for finish in self.finishers:
            finish(self)
        self.stopped, self._results = stop_reason(session, int(exitstatus)), None
        status = self.final_status(int(exitstatus))
        self.status = status
        if status != exitstatus:
            session.exitstatus = status
        settings = settings_of(self.config)
        if settings.report is not None:
            self._write("report", lambda: self._write_json(status))
        if settings.report_html is not None:
            from pytest_atlas.reporting import render_html, write_report

            html = settings.report_html
            self._write(
                "report_html", lambda: write_report(html, render_html(self.of_kind("gate"), target=self._target()))
            )
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file and any(self.of_kind(kind) for kind in _KINDS):
            self._write("step_summary", lambda: self._append_summary(Path(summary_file)))
        if self.unwritten and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # the file the run was asked for is missing

    def _append_summary(self, path: Path) -> None:
        from pytest_atlas.db import append_output
        from pytest_atlas.reporting import render_markdown

        text = render_markdown(self.of_kind("gate"), self.of_kind("contract"), target=self._target())
        append_output(path, text.encode("utf-8"))

    def _write(self, field: str, write: Callable[[], object]) -> None:
        """Write one file the run was asked for; a path that is refused or cannot be written is
        one line of the summary (and a non-zero exit status), not a traceback."""
        from pytest_atlas.errors import AtlasError

        try:
            write()
        except (AtlasError, OSError) as exc:
            where = (
                "$GITHUB_STEP_SUMMARY"
                if field == "step_summary"
                else settings_of(self.config).sources.get(field, field)
            )
            if isinstance(exc, AtlasError):
                reason = exc.problem + (f"; how to fix: {exc.hint}" if exc.hint else "")
            else:
                reason = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
            self.unwritten.append(f"pytest-atlas: {where} not written: {reason}")
            self.failed_writes.add(field)

    def _target(self) -> str | None:
        if not check_mode(self.config):
            return None
        from pytest_atlas.db import describe_target

        return describe_target(target_of(self.config))

    def _write_json(self, status: int) -> None:
        from pytest_atlas.reporting import build_report, write_report

        settings = settings_of(self.config)
        assert settings.report is not None
        report = build_report(
            self.results(),
            exit_status=status,
            # (a path is shown as a message of the plugin's: one that holds a DSN shows no password)
            extra={
                "target": self._target(),
                "baseline": hide_dsn_passwords(str(settings.baseline)) if settings.baseline else None,
            },
        )
        write_report(settings.report, report)

    # -- the terminal --------------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        from pytest_atlas.reporting import contract_section, gate_section

        target = self._target()
        for kind, section in (("contract", contract_section), ("gate", gate_section)):
            payloads = self.of_kind(kind)
            notes = self.notes.get(kind, [])
            if not payloads and not notes:
                continue
            terminalreporter.section(f"atlas {'gates' if kind == 'gate' else 'contract'}")
            for line, color in section(payloads, settings_of(config), target):
                terminalreporter.line(line, **({color: True} if color else {}))
            for line in notes:
                terminalreporter.line(hide_dsn_passwords(line))
        count = left_out(config)
        if count:
            terminalreporter.line(left_out_line(count), yellow=True)
        status = self.status if self.status is not None else self.final_status(int(exitstatus))
        if status == EXIT_INCONCLUSIVE:
            terminalreporter.line(
                f"exit status {EXIT_INCONCLUSIVE}: inconclusive check(s); add sessions, or set "
                "allow_inconclusive = true on the gate",
                yellow=True,
            )
        elif status == EXIT_ERROR:
            terminalreporter.line(f"exit status {EXIT_ERROR}: check(s) could not be evaluated", red=True)
        settings = settings_of(config)
        if settings.report is not None and self.payloads and "report" not in self.failed_writes:
            terminalreporter.line(hide_dsn_passwords(f"atlas report: {settings.report}"))
        if settings.report_html is not None and "report_html" not in self.failed_writes:
            terminalreporter.line(hide_dsn_passwords(f"atlas html report: {settings.report_html}"))
        for line in self.unwritten:
            terminalreporter.line(hide_dsn_passwords(line), red=True)


@pytest.hookimpl(tryfirst=True)  # before the area modules' pytest_configure, which register with it
def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        reporter = AtlasReporter(config)
        config.stash[_KEY] = reporter
        config.pluginmanager.register(reporter, "atlas-reporter")


def reporter_of(config: pytest.Config) -> AtlasReporter | None:
    """The run's reporter (None on an xdist worker)."""
    return config.stash.get(_KEY, None)
