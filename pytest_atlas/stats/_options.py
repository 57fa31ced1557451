"""The options of the gate statistics, checked the same way by the statistics and by gate
declarations: the method names and their aliases (the one list of accepted spellings), ``alpha``,
``power``, ``n_resamples`` and ``seed``. Light (no numpy, no scipy): gate declarations are checked
against it before anything runs."""

from __future__ import annotations

from pytest_atlas._arguments import Choices, check_choice, check_integer, check_number

__all__ = [
    "METHODS",
    "METHOD_CHOICES",
    "canonical_method",
    "check_alpha",
    "check_power",
    "check_resamples",
    "check_seed",
]

#: the comparison methods, by their public names
METHODS = ("welch", "mann-whitney", "bootstrap")
#: every accepted spelling of a method (case and surrounding blanks ignored)
METHOD_CHOICES = Choices(
    METHODS,
    aliases={
        "t": "welch",
        "t-test": "welch",
        "ttest": "welch",
        "mannwhitney": "mann-whitney",
        "mann_whitney": "mann-whitney",
        "rank": "mann-whitney",
        "wilcoxon": "mann-whitney",
    },
)


def canonical_method(method: object) -> str:
    """The public name of ``method`` (aliases such as ``"t-test"`` accepted), or InvalidArgument."""
    return check_choice("method", method, METHOD_CHOICES, what="a known method")


def check_alpha(value: object) -> float:
    """The one-sided false-alarm rate: in (0, 0.5]."""
    return check_number("alpha", value, low=0.0, high=0.5, low_open=True, example=0.05)


def check_power(value: object) -> float:
    """The power of the detectable-effect figures: in (0, 0.999]."""
    return check_number("power", value, low=0.0, high=0.999, low_open=True, example=0.8)


def check_resamples(value: object) -> int:
    """Bootstrap resamples: 100 to 1,000,000 (the default, 2000, serves alpha down to about 0.005)."""
    return check_integer("n_resamples", value, low=100, high=1_000_000, example=2000)


def check_seed(value: object) -> int | None:
    """A bootstrap seed: a non-negative integer, or None for fresh randomness."""
    return None if value is None else check_integer("seed", value, low=0, example=0)
