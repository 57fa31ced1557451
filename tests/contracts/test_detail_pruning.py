"""The detailed errors of a failing document, with the subtrees jsonschema-rs accepts left out of
python-jsonschema's walk, against the errors of the whole walk."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_atlas.validation import validator_for
from pytest_atlas.validation._detail import detail_violations
from pytest_atlas.validation._validator import _PRUNE_AFTER

from . import contract_documents as D
from .test_differential import mutated

BASES = [(name, builder) for name, builders in D.CLEAN.items() for builder in builders]


def _both(name: str, document: Any) -> tuple[list[Any], list[Any]]:
    validator = validator_for(name)
    whole = detail_violations(validator._detail_engine(), document, name)
    pruned = detail_violations(validator._pruning_engine(), document, name)
    return whole, pruned


@pytest.mark.parametrize(("name", "build"), BASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BASES)])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pruned_details_are_the_whole_walk_s(name: str, build: Any, data: st.DataObject) -> None:
    document = data.draw(mutated(build()))
    whole, pruned = _both(name, document)
    assert pruned == whole


def test_the_pruned_walk_skips_what_passes_and_still_finds_the_error() -> None:
    document = D.session_metadata()
    document["reward_stats"]["score"] = "0.82"
    whole, pruned = _both("session-metadata", document)
    assert [(v.path, v.keyword) for v in pruned] == [("$.reward_stats.score", "type")]
    assert pruned == whole


def test_a_scan_prunes_only_after_its_first_failures() -> None:
    validator = validator_for("session-metadata")
    document = D.session_metadata()
    document["reward_stats"]["score"] = "0.82"
    expected = validator.check(document, census=True)
    for _ in range(_PRUNE_AFTER + 2):
        assert validator.check(document, census=True) == expected
    assert validator._failures > _PRUNE_AFTER and validator._pruning is not None
