"""A regression gate whose sessions on one side are all left out by ``max_uncertainty``: never a
pass, and the reason says so (how many, the bound, how to fix), not "the candidate stopped
producing it" or "new learning key". The gate's ``max_uncertainty`` applies to both sides: a
baseline selection uses it unless it sets its own."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.errors import GateError
from pytest_atlas.gates import GateSpec, evaluate

from .gates_seed import insert, session_row


def _rows(run: str, key: str, uncertainty: float, start: int, count: int = 30) -> list[dict[str, Any]]:
    return [
        session_row(
            None,
            key=key,
            minute=start + i,
            metadata={"run": run},
            reward_stats={"score": 0.6 + (i % 5) / 20, "uncertainty_mean": uncertainty},
        )
        for i in range(count)
    ]


def _gate(**extra: Any) -> GateSpec:
    options: dict[str, Any] = {
        "kind": "regression",
        "metadata": {"run": "candidate"},
        "baseline": {"metadata": {"run": "main"}},
        "max_uncertainty": 0.3,
        **extra,
    }
    return GateSpec.build("drop", options)


def test_every_candidate_session_left_out_by_max_uncertainty(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, _rows("main", "k1", 0.1, 0) + _rows("candidate", "k1", 0.8, 100))
    result = evaluate(_gate(), atlas_db)
    assert result.outcome.value == "fail"
    [row] = result.rows
    assert "stopped producing" not in row.reason
    assert "all 30 candidate session(s) of this learning key were left out by max_uncertainty=0.3" in row.reason
    assert "raise max_uncertainty" in row.reason and "uncertainty_mean" in row.reason
    assert row.detail is not None and row.detail["uncertain"] == 30


def test_allowed_inconclusive_does_not_let_it_through(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, _rows("main", "k1", 0.1, 0) + _rows("candidate", "k1", 0.8, 100))
    assert evaluate(_gate(allow_inconclusive=True), atlas_db).outcome.value == "fail"


def test_the_baseline_selection_uses_the_gates_max_uncertainty(atlas_db: psycopg.Connection[Any]) -> None:
    """Every baseline session is too uncertain: with the gate's bound applied to the baseline too,
    the baseline is empty, an error that says why (not a pass, not "holds no scored session" alone)."""
    insert(atlas_db, _rows("main", "k1", 0.8, 0) + _rows("candidate", "k1", 0.1, 100))
    spec = _gate()
    assert spec.options.baseline.max_uncertainty == 0.3
    with pytest.raises(GateError) as caught:
        evaluate(spec, atlas_db)
    message = str(caught.value)
    assert "all 30 baseline session(s) were left out by max_uncertainty=0.3" in message, message
    assert "raise max_uncertainty" in message and "uncertainty_mean" in message, message


def test_a_baseline_key_left_out_is_not_a_new_key(atlas_db: psycopg.Connection[Any]) -> None:
    """One key's baseline sessions are all too uncertain, another key's are fine: the first fails
    naming max_uncertainty, even with allow_new_keys (it is not new: its evidence was left out)."""
    insert(
        atlas_db,
        _rows("main", "k1", 0.8, 0)
        + _rows("main", "k2", 0.1, 40)
        + _rows("candidate", "k1", 0.1, 100)
        + _rows("candidate", "k2", 0.1, 140),
    )
    result = evaluate(_gate(allow_new_keys=True), atlas_db)
    assert result.outcome.value == "fail"
    rows = {row.learning_key: row for row in result.rows}
    assert rows["k1"].outcome.value == "fail"
    assert "new learning key" not in rows["k1"].reason
    assert "all 30 baseline session(s) of this learning key were left out by max_uncertainty=0.3" in rows["k1"].reason
    assert rows["k2"].outcome.value != "fail"


def test_a_baseline_may_set_its_own_bound(atlas_db: psycopg.Connection[Any]) -> None:
    insert(atlas_db, _rows("main", "k1", 0.5, 0) + _rows("candidate", "k1", 0.1, 100))
    spec = _gate(baseline={"metadata": {"run": "main"}, "max_uncertainty": 0.6})
    assert spec.options.baseline.max_uncertainty == 0.6
    [row] = evaluate(spec, atlas_db).rows
    assert row.detail is not None and row.detail["n_baseline"] == 30
