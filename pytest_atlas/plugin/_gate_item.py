"""A gate as a pytest item: evaluation in setup (a database problem is an ERROR), the verdict in the
call (fail, or inconclusive when not allowed). The item protocol is :class:`._checks.CheckItem`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from pytest_atlas.errors import AtlasError, GateError
from pytest_atlas.fixtures import settings_of
from pytest_atlas.plugin._baselines import CENSUS_PROPERTY, SERIES_PROPERTY, baseline_of, census_of
from pytest_atlas.plugin._checks import CheckItem, earlier_failure, remember_failure, target_of
from pytest_atlas.plugin._reporter import draws_charts

if TYPE_CHECKING:  # the gate machinery pulls in numpy and scipy: imported only when gates run
    from pytest_atlas.gates import Acceptance, GateSpec

__all__ = ["GateCollection", "GateItem", "accepted_key", "not_passed_key"]

#: where the plugin keeps the run's allow-list (set by ``_gates`` from the declarations)
accepted_key = pytest.StashKey["tuple[Acceptance, ...]"]()
#: the tests of this process that did not pass, by node id: what happened ("failed", "was skipped", ...)
not_passed_key = pytest.StashKey[dict[str, str]]()


class GateCollection(pytest.Collector):
    """The parent of the gates declared in configuration (node id: the config file's name)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class GateItem(CheckItem):
    """One declared gate (from pyproject.toml, an ini line or a marker)."""

    kind = "gate"

    def __init__(self, *, spec: GateSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        if self.config.pluginmanager.hasplugin("xdist"):  # unknown marker otherwise (--strict-markers)
            self.add_marker(pytest.mark.xdist_group("atlas-gates"))

    def evaluate(self) -> dict[str, Any]:
        from pytest_atlas.gates import accept, evaluate

        config = self.config
        settings = settings_of(config)
        missed = config.stash.get(not_passed_key, {}).get(self.origin)
        if missed is not None:  # a marker gate whose test (the harness run) did not pass in this process
            raise GateError(
                f"the test that declares it, {self.origin}, {missed}: the sessions it should have written "
                "may be missing, and the gate would judge older ones",
                hint=f"make {self.origin} pass first; to judge the sessions already in the database, declare "
                "the gate in pyproject.toml or an atlas_gate ini line instead",
            )
        earlier = earlier_failure(config)
        if earlier is not None:
            raise earlier
        started = time.monotonic()
        try:
            result = evaluate(
                self.spec,
                target_of(config),
                load_baseline=lambda name: baseline_of(config, name),
                load_census=lambda name: census_of(config, name),
                record=settings.save_baseline is not None,
                charts=draws_charts(config),
            )
        except GateError as exc:
            if exc.unreachable:
                remember_failure(config, exc, started)
            raise
        today = datetime.now(timezone.utc).date()
        acceptances: tuple[Acceptance, ...] = config.stash.get(accepted_key, ())
        result = accept(result, acceptances, today)
        if result.series and settings.save_baseline is not None:
            series = {key: s.to_json() for key, s in result.series.items()}
            self.user_properties.append((SERIES_PROPERTY, json.dumps({"gate": result.name, "series": series})))
        if result.census is not None and settings.save_baseline is not None:
            census = {"gate": result.name, "census": result.census.to_json()}
            self.user_properties.append((CENSUS_PROPERTY, json.dumps(census)))
        return result.to_dict()

    def error_payload(self, message: str) -> dict[str, Any]:
        from pytest_atlas.gates import GateResult

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
        from pytest_atlas.gates import EXPIRED_HINT, GateResult
        from pytest_atlas.reporting import render_failure

        result = GateResult.from_dict(payload)
        text = render_failure(result)
        if result.expired:
            text = "\n".join([*result.expired, EXPIRED_HINT]) + "\n\n" + text
        return text
