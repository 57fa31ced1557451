"""pytest hooks of baseline files: ``--atlas-baseline`` read once per process (its error raised for
every gate that needs it), ``--atlas-save-baseline`` written on the controller from the series every
gate item shipped in its report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas.errors import BaselineFileError, GateError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import target_of
from pytest_atlas.plugin._reporter import reporter_of

if TYPE_CHECKING:
    from pytest_atlas.gates import Series
    from pytest_atlas.plugin._reporter import AtlasReporter

__all__ = ["SERIES_PROPERTY", "BaselineRecorder", "baseline_of"]

#: the user property carrying a gate's series to the controller (for --atlas-save-baseline)
SERIES_PROPERTY = "atlas_series"
_BASELINE = pytest.StashKey["dict[str, dict[str, Series]] | BaselineFileError"]()


def baseline_of(config: pytest.Config, gate: str) -> tuple[Mapping[str, Series], str] | None:
    """The series of ``gate`` in the --atlas-baseline file and their label; None without a file."""
    path = settings_of(config).baseline
    if path is None:
        return None
    if _BASELINE not in config.stash:
        from pytest_atlas.gates import read_baseline

        try:
            config.stash[_BASELINE] = read_baseline(path)
        except BaselineFileError as exc:
            config.stash[_BASELINE] = exc
    loaded = config.stash[_BASELINE]
    if isinstance(loaded, BaselineFileError):
        raise loaded
    if gate not in loaded:
        raise GateError(
            f"baseline file {path} has no gate named {gate!r} "
            f"(it has: {', '.join(sorted(map(repr, loaded))) or 'none'})",
            hint="save the baseline again with --atlas-save-baseline after adding the gate",
        )
    return loaded[gate], f"baseline file {path} (gate {gate!r})"


class BaselineRecorder:
    """Controller, with --atlas-save-baseline: keeps the series each gate saw (shipped in its
    report's user properties) and writes them when the session finishes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: {gate: {learning key: series JSON}}
        self.series: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == SERIES_PROPERTY and isinstance(value, str):
                data = json.loads(value)
                self.series[str(data["gate"])] = data["series"]

    def save(self, reporter: AtlasReporter) -> None:
        from pytest_atlas.db import describe_target
        from pytest_atlas.gates import Series, write_baseline

        path = settings_of(self.config).save_baseline
        assert path is not None
        series = {
            gate: {key: Series.from_json(data) for key, data in keys.items()} for gate, keys in self.series.items()
        }
        try:
            write_baseline(path, series, source=describe_target(target_of(self.config)))
        except BaselineFileError as exc:
            reporter.note("gate", str(exc))
            return
        reporter.note("gate", f"baseline written to {path}")


def pytest_configure(config: pytest.Config) -> None:
    reporter = reporter_of(config)  # None on an xdist worker: the controller saves
    settings = settings_of(config)
    if reporter is not None and settings.gates and settings.save_baseline is not None:
        recorder = BaselineRecorder(config)
        config.pluginmanager.register(recorder, "atlas-baseline-recorder")
        reporter.finishers.append(recorder.save)
