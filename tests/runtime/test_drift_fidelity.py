"""The drift gate against Atlas's own drift detector, session by session: on sessions Atlas's runtime
wrote under several drift configurations, the gate's recomputed assessment of every session equals
the ``metadata.drift`` document Atlas stored for it, and the gate's alerts are Atlas's alerts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas import RewardDrift, Selection, assert_no_drift
from pytest_atlas.domain import drift_document, reward_baseline
from pytest_atlas.gates._kinds.drift import fetch_drift_inputs
from pytest_atlas.runtime import AtlasRuntime, ProviderError

from .helpers import table

#: (score, uncertainty) of one learning key's runs: steady, a drop, noise, a judge outage, recovery
RUNS = ((0.8, 0.1), (0.82, 0.12), (0.79, 0.1), (0.81, 0.3), (0.2, 0.1), (0.8, 0.1), (0.78, 0.05), (0.83, 0.2))


@pytest.mark.parametrize(
    "drift",
    [
        {},
        {"window": 3, "min_baseline": 2, "z_threshold": 1.5},
        {"window": 1, "min_baseline": 0, "z_threshold": 0.5},
        {"window": 6, "min_baseline": 9, "z_threshold": 3.0},
        {"window": 4, "min_baseline": 3, "z_threshold": 0.0},
    ],
    ids=["defaults", "small-window", "window-1", "baseline-above-window", "threshold-0"],
)
def test_the_gate_recomputes_what_atlas_stored(
    atlas_dsn: str, atlas_db: psycopg.Connection[Any], drift: dict[str, Any]
) -> None:
    runtime = AtlasRuntime(
        atlas_dsn, config={"runtime_safety": {"drift": drift, "review": {"require_approval": False}}}
    )
    for index, (score, uncertainty) in enumerate(RUNS):
        runtime.run("Summarise the incident", score=score, uncertainty=uncertainty, learn=False)
        if index == 5:
            runtime.run("Summarise the incident", responses={"judge": ProviderError("down")}, learn=False)
            runtime.run("Summarise the incident", fail=True, learn=False)  # no reward_stats
        runtime.run(f"Another task {index % 2}", score=0.5 + index / 20, learn=False)  # other keys between
    window = drift.get("window", 50)
    threshold = drift.get("z_threshold", 3.0)
    min_baseline = drift.get("min_baseline", 5)
    stored = {row["id"]: row["metadata"]["drift"] for row in table(atlas_db, "sessions") if row["reward_stats"]}
    inputs = fetch_drift_inputs(atlas_db, Selection(), window=window, last=1000)
    assert {item.session_id for item in inputs} == set(stored)
    for item in inputs:
        baseline = reward_baseline(list(item.history), window=window)
        recomputed = drift_document(
            item.reward_stats,
            baseline,
            threshold=threshold,
            window=window,
            min_baseline=min_baseline,
            learning_key=item.learning_key or None,
        )
        assert recomputed == stored[item.session_id], item.session_id
    alerts = sorted(sid for sid, document in stored.items() if document["alert"])
    if threshold == 0 or min_baseline > window:
        return  # Atlas accepts these settings, the gate refuses them up front (tests/gates/test_gate_declare.py)
    options = {"window": window, "threshold": threshold, "min_baseline": min_baseline, "last": 1000}
    if alerts:
        with pytest.raises(RewardDrift) as failure:
            assert_no_drift(atlas_db, stored=False, **options)
        rows = failure.value.result.rows
        assert sum(row.detail["recomputed_alerts"] for row in rows) == len(alerts)
        assert {sid for row in rows for sid in row.worst} <= set(alerts)
    else:
        assert_no_drift(atlas_db, stored=False, **options)
