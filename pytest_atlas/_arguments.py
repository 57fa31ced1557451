"""Up-front argument checks shared by every public strategy and factory.

All of them raise :class:`~pytest_atlas.errors.InvalidArgument` with one message shape::

    <function>(): invalid <name>=<value!r>: expected <what>
      how to fix: <hint>

and they run when the strategy is *created*, not when it is drawn from, like Hypothesis's own
argument validation.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from pytest_atlas.errors import InvalidArgument

__all__ = [
    "check_bool",
    "check_choice",
    "check_count",
    "check_interval",
    "check_str",
    "fail",
]


def fail(function: str, name: str, value: object, expected: str, hint: str | None = None) -> InvalidArgument:
    """Build (not raise) the one error of this package, in the one message shape."""
    return InvalidArgument(
        f"{function}(): invalid {name}={value!r}: expected {expected}",
        hint=hint or f"pass {name} as {expected}, or leave it out to let the strategy choose",
    )


def check_bool(function: str, name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise fail(function, name, value, "True, False or None")


def check_str(function: str, name: str, value: Any, *, allow_empty: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(function, name, value, "a string or None")
    if "\x00" in value:
        raise fail(function, name, value, "a string without NUL characters (PostgreSQL cannot store them)")
    if not allow_empty and not value:
        raise fail(function, name, value, "a non-empty string")
    return value


def check_choice(function: str, name: str, value: Any, options: Collection[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in options:
        shown = ", ".join(repr(option) for option in options)
        raise fail(function, name, value, f"one of {shown} or None")
    return value


def check_count(function: str, name: str, value: Any, *, lo: int, hi: int) -> tuple[int, int] | None:
    """An exact count ``n`` or an inclusive range ``(lo, hi)``, within ``[lo, hi]``."""
    if value is None:
        return None
    expected = f"an int or an (min, max) pair of ints within {lo}..{hi}"
    if isinstance(value, bool):
        raise fail(function, name, value, expected)
    if isinstance(value, int):
        low = high = value
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        low, high = value
    else:
        raise fail(function, name, value, expected)
    if not lo <= low <= high <= hi:
        raise fail(function, name, value, expected, hint=f"use values between {lo} and {hi}, min <= max")
    return low, high


def check_interval(function: str, name: str, value: Any, *, lo: float, hi: float) -> tuple[float, float] | None:
    """A closed float interval ``(low, high)`` (or one number for an exact value), finite, inside ``[lo, hi]``."""
    if value is None:
        return None
    expected = f"a number or a (min, max) pair of finite numbers within {lo}..{hi}"
    if isinstance(value, bool):
        raise fail(function, name, value, expected)
    if isinstance(value, (int, float)):
        low = high = float(value)
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise fail(function, name, value, expected)
    if not (math.isfinite(low) and math.isfinite(high)) or not lo <= low <= high <= hi:
        raise fail(
            function,
            name,
            value,
            expected,
            hint=f"use finite numbers between {lo} and {hi} with min <= max (NaN and Infinity cannot be stored)",
        )
    return low, high
