"""The one set of argument checks: every value is checked the same way wherever it is given."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import pytest

from pytest_atlas._arguments import (
    Choices,
    check_bool,
    check_choice,
    check_date,
    check_integer,
    check_moment,
    check_number,
    check_positive_int,
    check_probability,
    check_string,
    check_strings,
    check_type,
)
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.stats import METHOD_CHOICES as METHODS


@pytest.mark.parametrize("value", [True, "0.5", None, math.nan, math.inf, [0.5]])
def test_a_number_is_a_finite_int_or_float_and_never_a_bool(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"alpha must be a number in \(0, 0.5\], got "):
        check_number("alpha", value, low=0.0, high=0.5, low_open=True)


def test_ranges_name_their_ends_and_the_hint_shows_a_value_that_works() -> None:
    assert check_number("alpha", 0.5, low=0.0, high=0.5, low_open=True) == 0.5
    with pytest.raises(InvalidArgument, match=r"alpha must be a number in \(0, 0.5\], got 0\n") as info:
        check_number("alpha", 0, low=0.0, high=0.5, low_open=True)
    assert info.value.hint == "for example alpha = 0.25"
    assert check_number("alpha", 0.25, low=0.0, high=0.5, low_open=True) == 0.25
    with pytest.raises(InvalidArgument, match="z must be a number above 0, got 0"):
        check_number("z", 0, low=0.0, low_open=True)
    with pytest.raises(InvalidArgument, match="share must be a number in"):
        check_probability("share", 1.5)
    with pytest.raises(InvalidArgument, match="x must be a finite number, got inf"):
        check_number("x", math.inf)


def test_integers_and_positive_integers() -> None:
    assert check_integer("digits", 12, low=0, high=12) == 12
    for bad in (13, -1, 1.0, True, "3"):
        with pytest.raises(InvalidArgument, match="digits must be an integer from 0 to 12"):
            check_integer("digits", bad, low=0, high=12)
    with pytest.raises(InvalidArgument, match="last must be a positive integer, got 0"):
        check_positive_int("last", 0, high=2**62)


def test_one_list_of_spellings_per_word() -> None:
    for spelling in ("welch", "t-test", " T-Test ", "ttest", "t"):
        assert check_choice("method", spelling, METHODS) == "welch"
    with pytest.raises(InvalidArgument, match=r"method 'welsh' is not a known method \(did you mean 'welch'\?\)"):
        check_choice("method", "welsh", METHODS, what="a known method")
    colours = Choices(("red", "green"))
    with pytest.raises(InvalidArgument, match="colour must be one of 'red', 'green', got 3") as info:
        check_choice("colour", 3, colours)
    assert info.value.hint == "colour is one of red, green"
    assert check_strings("status", ["red", "GREEN"], colours) == ("red", "green")
    assert check_strings("task", "one") == ("one",)
    for bad, message in (([], "is an empty list"), (["a", " "], "empty or unusable"), ([1], "a string or a list")):
        with pytest.raises(InvalidArgument, match=message):
            check_strings("task", bad)


def test_the_stats_and_the_gates_accept_the_same_method_spellings() -> None:
    from pytest_atlas.gates import GateSpec
    from pytest_atlas.stats._options import canonical_method

    for spelling in (*METHODS.names, *METHODS.aliases):
        assert GateSpec.build("g", {"kind": "threshold", "threshold": 0.5, "method": spelling}).options.method == (
            canonical_method(spelling)
        )


def test_one_date_parser_and_one_moment_parser() -> None:
    assert check_date("until", "2026-03-31") == date(2026, 3, 31)
    assert check_date("until", datetime(2026, 3, 31, 12, tzinfo=timezone.utc)) == date(2026, 3, 31)
    for bad in ("31/03/2026", 20260331, None):
        with pytest.raises(InvalidArgument, match="until must be a date as YYYY-MM-DD"):
            check_date("until", bad)
    utc = timezone.utc
    assert check_moment("since", "2025-01-31") == datetime(2025, 1, 31, tzinfo=utc)
    assert check_moment("since", "2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=utc)
    assert check_moment("since", date(2025, 1, 31)) == datetime(2025, 1, 31, tzinfo=utc)
    with pytest.raises(InvalidArgument, match="since is 'yesterday', not an ISO date"):
        check_moment("since", "yesterday")


def test_types_strings_and_booleans() -> None:
    assert check_type("n", 3, int) == 3
    with pytest.raises(InvalidArgument, match="n must be of type int, got True"):
        check_type("n", True, int)
    assert check_bool("on", False) is False
    with pytest.raises(InvalidArgument, match="on must be true or false, got 'yes'"):
        check_bool("on", "yes")
    assert check_string("d", "", empty=True) == ""
    with pytest.raises(InvalidArgument, match="d must be a non-empty string without NUL"):
        check_string("d", "a\x00b")


@pytest.mark.parametrize(
    ("option", "edge"), [("alpha", 0.5), ("alpha", 1e-9), ("power", 0.999), ("n_resamples", 100), ("seed", 0)]
)
def test_what_a_gate_declaration_accepts_the_statistics_accept(option: str, edge: object) -> None:
    """A declaration checked up front must not fail later, at evaluation, on the same value."""
    from pytest_atlas.gates import GateSpec, Series, threshold_rows
    from pytest_atlas.stats import Sample

    spec = GateSpec.build("g", {"kind": "threshold", "threshold": 0.5, "method": "bootstrap", option: edge})
    scores = [0.85, 0.9, 0.95] * 10
    (row,) = threshold_rows({"*": Series("*", Sample.of(scores))}, spec)
    assert row.outcome.value == "pass"


@pytest.mark.parametrize(("option", "edge"), [("alpha", 0.51), ("alpha", 0), ("power", 1.0), ("n_resamples", 99)])
def test_what_a_gate_declaration_refuses_the_statistics_refuse(option: str, edge: object) -> None:
    from pytest_atlas.gates import GateSpec
    from pytest_atlas.stats import check_threshold

    with pytest.raises(InvalidArgument, match=f"{option} must be"):
        GateSpec.build("g", {"kind": "threshold", "threshold": 0.5, option: edge})
    with pytest.raises(InvalidArgument, match=f"{option} must be"):
        check_threshold([0.9] * 30, 0.5, **{option: edge}, method="bootstrap")  # type: ignore[arg-type]
