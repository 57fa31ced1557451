"""The names of the comparison methods, and their aliases: the one list of accepted spellings, used
by the statistics and by gate declarations alike. Light (no numpy, no scipy): gate declarations are
checked against it before anything runs."""

from __future__ import annotations

from pytest_atlas._arguments import Choices, check_choice

__all__ = ["METHODS", "METHOD_CHOICES", "canonical_method"]

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
