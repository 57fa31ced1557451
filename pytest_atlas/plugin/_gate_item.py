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

__all__ = ["GateCollection", "GateItem", "accepted_key", "how_it_went"]

#: where the plugin keeps the run's allow-list (set by ``_gates`` from the declarations)
accepted_key = pytest.StashKey["tuple[Acceptance, ...]"]()
#: on a test that declares a marker gate, once it ran in this process: None when it passed, else
#: what happened ("failed", "was skipped", ...)
how_it_went = pytest.StashKey["str | None"]()


class GateCollection(pytest.Collector):
    """The parent of the gates declared in configuration (node id: the config file's name)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class GateItem(CheckItem):
    """One declared gate (from pyproject.toml, an ini line or a marker)."""

    kind = "gate"

    def __init__(self, *, spec: GateSpec, declared_on: pytest.Item | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        #: the test a marker declared the gate on (None for a gate declared in configuration)
        self.declared_on = declared_on

    def _check_its_test(self, test: pytest.Item) -> None:
        """The sessions a marker gate judges are those its test (a harness run) writes: the gate is
        an error unless that test passed in this process, before it."""
        declaring = self.origin
        if how_it_went not in test.stash:
            raise GateError(
                f"the test that declares it, {declaring}, did not run in this process (deselected, run by "
                "another pytest-xdist worker, or its worker crashed): the sessions it should have written may be "
                "missing, and the gate would judge older ones",
                hint=f"run {declaring} with its gate (under pytest-xdist: a plain -n, --dist loadscope or "
                "--dist loadfile, which keep the two on one worker); to judge the sessions already in the "
                "database, declare the gate in pyproject.toml or an atlas_gate ini line instead",
            )
        missed = test.stash[how_it_went]
        if missed is not None:  # a marker gate whose test (the harness run) did not pass
            raise GateError(
                f"the test that declares it, {declaring}, {missed}: the sessions it should have written "
                "may be missing, and the gate would judge older ones",
                hint=f"make {declaring} pass first; to judge the sessions already in the database, declare "
                "the gate in pyproject.toml or an atlas_gate ini line instead",
            )

    def evaluate(self) -> dict[str, Any]:
        from pytest_atlas.gates import accept, evaluate

        config = self.config
        settings = settings_of(config)
        if self.declared_on is not None:  # a marker gate: evaluated only after its test passed here
            self._check_its_test(self.declared_on)
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
