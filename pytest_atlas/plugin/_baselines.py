"""pytest hooks of baseline files: ``--atlas-baseline`` read once per process (its error raised for
every gate that needs it), ``--atlas-save-baseline`` written on the controller from the series every
gate item shipped in its report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_atlas.errors import BaselineFileError, GateError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._checks import target_of
from pytest_atlas.plugin._reporter import reporter_of

if TYPE_CHECKING:
    from pytest_atlas.gates import PathCensus, Series
    from pytest_atlas.plugin._reporter import AtlasReporter

__all__ = ["CENSUS_PROPERTY", "SERIES_PROPERTY", "BaselineRecorder", "baseline_of", "census_of"]

#: the user property carrying a gate's series to the controller (for --atlas-save-baseline)
SERIES_PROPERTY = "atlas_series"
#: the user property carrying a fields gate's census to the controller (for --atlas-save-baseline)
CENSUS_PROPERTY = "atlas_census"
_BASELINE = pytest.StashKey["dict[str, dict[str, Series]] | BaselineFileError"]()
_CENSUS = pytest.StashKey["dict[str, PathCensus] | BaselineFileError"]()


def census_of(config: pytest.Config, gate: str) -> tuple[PathCensus, str] | None:
    """The field census of fields gate ``gate`` in the --atlas-baseline file and its label; None
    without a file."""
    from pytest_atlas.gates import read_field_baselines

    return _from_file(config, _CENSUS, read_field_baselines, gate, "field census for gate")


def baseline_of(config: pytest.Config, gate: str) -> tuple[Mapping[str, Series], str] | None:
    """The series of ``gate`` in the --atlas-baseline file and their label; None without a file."""
    from pytest_atlas.gates import read_baseline

    return _from_file(config, _BASELINE, read_baseline, gate, "gate named")


T = TypeVar("T")


def _from_file(
    config: pytest.Config,
    key: pytest.StashKey[dict[str, T] | BaselineFileError],
    read: Callable[[Path], dict[str, T]],
    gate: str,
    what: str,
) -> tuple[T, str] | None:
    """What the --atlas-baseline file holds for ``gate``, read and checked once per process (its
    error raised for every gate that needs it)."""
    path = settings_of(config).baseline
    if path is None:
        return None
    if key not in config.stash:
        try:
            config.stash[key] = read(path)
        except BaselineFileError as exc:
            config.stash[key] = exc
    loaded = config.stash[key]
    if isinstance(loaded, BaselineFileError):
        raise loaded
    if gate not in loaded:
        raise GateError(
            f"baseline file {path} has no {what} {gate!r} (it has: {', '.join(sorted(map(repr, loaded))) or 'none'})",
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
        #: {fields gate: census JSON}
        self.censuses: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == SERIES_PROPERTY and isinstance(value, str):
                data = json.loads(value)
                self.series[str(data["gate"])] = data["series"]
            elif name == CENSUS_PROPERTY and isinstance(value, str):
                data = json.loads(value)
                self.censuses[str(data["gate"])] = data["census"]

    def save(self, reporter: AtlasReporter) -> None:
        from pytest_atlas.db import describe_target
        from pytest_atlas.gates import PathCensus, Series, write_baseline

        path = settings_of(self.config).save_baseline
        assert path is not None
        series = {
            gate: {key: Series.from_json(data) for key, data in keys.items()} for gate, keys in self.series.items()
        }
        try:
            fields = {gate: PathCensus.from_json(data) for gate, data in self.censuses.items()}
            write_baseline(path, series, source=describe_target(target_of(self.config)), fields=fields)
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
