"""The names of the comparison methods, and their aliases. Light (no numpy, no scipy): gate
declarations are checked against it before anything runs."""

from __future__ import annotations

from pytest_atlas.errors import InvalidArgument

__all__ = ["METHODS", "canonical_method"]

#: the comparison methods, by their public names
METHODS = ("welch", "mann-whitney", "bootstrap")
_ALIASES = {
    "welch": "welch",
    "t": "welch",
    "t-test": "welch",
    "ttest": "welch",
    "mann-whitney": "mann-whitney",
    "mannwhitney": "mann-whitney",
    "mann_whitney": "mann-whitney",
    "rank": "mann-whitney",
    "wilcoxon": "mann-whitney",
    "bootstrap": "bootstrap",
}


def canonical_method(method: object) -> str:
    """The public name of ``method`` (aliases such as ``"t-test"`` accepted), or InvalidArgument."""
    key = str(method).strip().lower() if isinstance(method, str) else None
    if key is None or key not in _ALIASES:
        raise InvalidArgument(
            f"unknown method {method!r}",
            hint="use one of " + ", ".join(repr(name) for name in METHODS),
        )
    return _ALIASES[key]
