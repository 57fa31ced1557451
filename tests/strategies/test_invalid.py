"""invalid(schema): near-misses that break exactly the rule they are labelled with."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from pytest_atlas.errors import InvalidArgument
from pytest_atlas.strategies import MUTATIONS, Invalid, invalid
from pytest_atlas.validation import SCHEMA_NAMES, iter_errors


def test_every_shipped_schema_has_near_misses() -> None:
    assert set(MUTATIONS) == set(SCHEMA_NAMES)


def check_case(case: Invalid, schema: str) -> None:
    errors = list(iter_errors(case.document, schema))
    assert errors, f"{case!r} was accepted"
    stray = [e.format() for e in errors if not e.path.startswith(case.path)]
    assert stray == [], f"{case!r} also broke {stray}"


@pytest.mark.parametrize("schema", sorted(MUTATIONS))
def test_near_misses_break_exactly_their_rule(schema: str) -> None:
    """Each document fails validation, only at the labelled path."""
    rules_seen: set[str] = set()

    @settings(max_examples=100, deadline=None, database=None, phases=[Phase.generate])
    @given(case=invalid(schema))
    def check(case: Invalid) -> None:
        rules_seen.add(case.rule)
        check_case(case, schema)

    check()
    assert len(rules_seen) > 1 or len(MUTATIONS[schema]) == 1


@pytest.mark.parametrize(
    ("schema", "rule"),
    [(schema, mutation.rule) for schema, mutations in sorted(MUTATIONS.items()) for mutation in mutations],
)
def test_each_rule_can_be_pinned(schema: str, rule: str) -> None:
    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(case=invalid(schema, rule=rule))
    def check(case: Invalid) -> None:
        assert case.rule == rule
        check_case(case, schema)

    check()


def test_unknown_schema_is_refused_up_front() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid\(\): schema must be one of .*, got 'sessions'"):
        invalid("sessions")


def test_unknown_rule_is_refused_up_front() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid\(\): rule must be one of the rules.*, got 'no such rule'"):
        invalid("plan", rule="no such rule")
