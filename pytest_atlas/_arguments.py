"""The one set of argument checks: every public function, strategy, gate declaration and option
checks its values here, so a wrong value reads the same wherever it is given.

Every error is built by :func:`invalid`, in one shape (``<name> must be <expected>, got
<value>`` and a hint, prefixed by ``<function>():`` for the arguments of a public function or
strategy). Each ``check_*`` function takes the argument's ``name`` (as the user wrote it: ``alpha``,
``modes.coach``, ``--atlas-contract-since``) and the ``value``, returns the value converted to its
canonical type, and raises :class:`~pytest_atlas.errors.InvalidArgument` otherwise: the problem
names the argument, what it must be and what it got; the hint shows a value that works. Booleans
are never numbers here (``True`` is not ``1``). Callers that report configuration mistakes turn
the error into their own (``ConfigError``, ``pytest.UsageError``) and keep its text.

Accepted spellings of a word live in one :class:`Choices` per vocabulary (``stats.METHODS``
accepts ``"t-test"`` for ``"welch"`` everywhere a method is taken). Dates and moments have one
parser each: :func:`check_date` (``YYYY-MM-DD``) and :func:`check_moment` (ISO 8601, ``Z``
allowed, a date means midnight UTC, a moment without an offset is UTC).

Light on purpose (standard library and :mod:`pytest_atlas.errors` only): declarations are
checked before anything heavy is imported.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any, TypeVar

from pytest_atlas.errors import InvalidArgument

__all__ = [
    "Choices",
    "call_bool",
    "call_choice",
    "call_count",
    "call_error",
    "call_interval",
    "call_str",
    "check_bool",
    "check_choice",
    "check_date",
    "check_integer",
    "check_moment",
    "check_number",
    "check_positive_int",
    "check_probability",
    "check_string",
    "check_strings",
    "check_type",
    "did_you_mean",
    "invalid",
    "shown",
    "unknown_names",
]

T = TypeVar("T")

_LARGEST = 2**63 - 1


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error message never quotes a whole payload)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(
    name: str, value: object, expected: str, *, hint: str | None = None, function: str | None = None
) -> InvalidArgument:
    """The one argument error, in the one message shape (built, not raised)::

    [<function>(): ]<name> must be <expected>, got <value>
      how to fix: <hint>
    """
    where = f"{function}(): " if function else ""
    return InvalidArgument(f"{where}{name} must be {expected}, got {shown(value)}", hint=hint)


def _fail(name: str, expected: str, value: object, hint: str | None) -> InvalidArgument:
    return invalid(name, value, expected, hint=hint)


def check_type(name: str, value: object, types: type[T] | tuple[type[T], ...], *, hint: str | None = None) -> T:
    """``value`` itself when it is an instance of ``types`` (a bool is not an int or a float)."""
    wanted = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        names = " or ".join(t.__name__ for t in wanted)
        raise _fail(name, f"of type {names}", value, hint or f"pass a {names} as {name}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "true or false", value, f"{name} = true")
    return value


def check_string(name: str, value: object, *, example: str = "...", empty: bool = False) -> str:
    """A string; unless ``empty``, one with a visible character and no NUL (PostgreSQL rejects NUL)."""
    if not isinstance(value, str):
        raise _fail(name, "a string", value, f'for example {name} = "{example}"')
    if not empty and (not value.strip() or "\x00" in value):
        raise _fail(name, "a non-empty string without NUL characters", value, f'for example {name} = "{example}"')
    return value


def _range(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" above {low:g}" if low_open else f" of at least {low:g}"
    if math.isinf(low):
        return f" below {high:g}" if high_open else f" of at most {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _example(low: float, high: float, low_open: bool, high_open: bool) -> float:
    if math.isfinite(low) and math.isfinite(high):
        return (low + high) / 2 if low_open or high_open else low
    if math.isfinite(low):
        return low + 1 if low_open else low
    if math.isfinite(high):
        return high - 1 if high_open else high
    return 1.0


def check_number(
    name: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    example: float | None = None,
) -> float:
    """A finite int or float from ``low`` to ``high`` (ends included unless ``*_open``), as a float."""
    where = _range(low, high, low_open, high_open)
    shown_example = _example(low, high, low_open, high_open) if example is None else example
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < low
        or value > high
        or (low_open and value == low)
        or (high_open and value == high)
    ):
        raise _fail(
            name, f"a {'finite ' if not where else ''}number{where}", value, f"for example {name} = {shown_example:g}"
        )
    return float(value)


def check_probability(name: str, value: object, *, low_open: bool = False, high_open: bool = False) -> float:
    """A number in [0, 1] (either end excluded on request): a share, a level, a rate."""
    return check_number(name, value, low=0.0, high=1.0, low_open=low_open, high_open=high_open)


def check_integer(
    name: str,
    value: object,
    *,
    low: int | None = None,
    high: int | None = None,
    example: int | None = None,
    expected: str | None = None,
    function: str | None = None,
) -> int:
    """An int (not a bool) from ``low`` to ``high``, both included (``expected`` rewords the range)."""
    lo = -_LARGEST if low is None else low
    hi = _LARGEST if high is None else high
    if expected is None:
        if low is not None and high is not None:
            expected = f"an integer from {low} to {high}"
        elif low is not None:
            expected = f"an integer of at least {low}"
        elif high is not None:
            expected = f"an integer of at most {high}"
        else:
            expected = "an integer"
    if example is None:
        example = max(lo, min(50, hi))
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(name, value, expected, hint=f"for example {name} = {example}", function=function)
    return value


def check_positive_int(
    name: str,
    value: object,
    *,
    high: int | None = None,
    example: int | None = None,
    expected: str | None = None,
    function: str | None = None,
) -> int:
    """An int of at least 1 (``high``, when given, is a technical limit and named only when small)."""
    if expected is None:
        expected = "a positive integer" + (f" of at most {high}" if high is not None and high < 2**31 else "")
    return check_integer(name, value, low=1, high=high, example=example, expected=expected, function=function)


@dataclass(frozen=True)
class Choices:
    """The words a setting accepts: the canonical ``names`` and other accepted spellings
    (``aliases``, spelling -> name). Matching ignores case and surrounding blanks."""

    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def canonical(self, value: object) -> str | None:
        if not isinstance(value, str):
            return None
        key = value.strip()
        for spelling in (key, key.lower()):
            if spelling in self.names:
                return spelling
            if spelling in self.aliases:
                return self.aliases[spelling]
        return None

    def __iter__(self) -> Any:
        return iter(self.names)

    def __contains__(self, value: object) -> bool:
        return self.canonical(value) is not None


def did_you_mean(value: object, spellings: Collection[str]) -> str:
    """``" (did you mean 'x'?)"`` for the spelling closest to ``value``, or ``""`` when none is close."""
    close = difflib.get_close_matches(value, list(spellings), n=1) if isinstance(value, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_names(
    what: str, unknown: Sequence[object], valid: Collection[str], *, of: str = "", also: str = ""
) -> InvalidArgument:
    """The one error of a misspelt name in a declaration (an option, a key, a kind, a table):
    ``unknown option 'windw' (did you mean 'window'?)``, each of ``unknown`` with the closest of
    ``valid``, and the hint ``valid options<of>: <every valid one, sorted>``, then ``also``. The
    caller adds where it was declared (its gate, file and table)."""
    names = list(dict.fromkeys(unknown))
    problem = f"unknown {what}{'s' if len(names) > 1 else ''} " + ", ".join(
        repr(name) + did_you_mean(name, valid) for name in names
    )
    hint = f"valid {what}s{of}: {', '.join(sorted(valid))}" + (f"; {also}" if also else "")
    return InvalidArgument(problem, hint=hint)


def check_choice(name: str, value: object, choices: Choices | Sequence[str], *, what: str = "") -> str:
    """The canonical name of ``value`` among ``choices`` (aliases accepted), or InvalidArgument with
    the closest accepted spelling. ``what`` replaces "one of" in the message (e.g. "a value Atlas writes")."""
    options = choices if isinstance(choices, Choices) else Choices(tuple(choices))
    found = options.canonical(value)
    if found is not None:
        return found
    suggestion = did_you_mean(value, [*options.names, *options.aliases])
    accepted = ", ".join(repr(n) for n in options.names)
    if what:
        problem = f"{name} {shown(value)} is not {what}{suggestion}"
    else:
        problem = f"{name} must be one of {accepted}, got {shown(value)}{suggestion}"
    raise InvalidArgument(problem, hint=f"{name} is one of {', '.join(options.names)}")


def check_strings(
    name: str, value: object, choices: Choices | Sequence[str] | None = None, *, what: str = ""
) -> tuple[str, ...]:
    """One string or a non-empty list of them (each non-empty); with ``choices``, each canonical."""
    names = tuple(choices) if choices is not None else ()
    example = f'["{names[0]}", "{names[1]}"]' if len(names) > 1 else '["a", "b"]'
    items: object = (value,) if isinstance(value, str) else value
    if not isinstance(items, Sequence) or isinstance(items, bytes) or not all(isinstance(i, str) for i in items):
        raise _fail(name, "a string or a list of strings", value, f"for example {name} = {example}")
    if not items:
        raise InvalidArgument(f"{name} is an empty list", hint=f"leave {name} out to select every value")
    out = []
    for item in items:
        if not item.strip() or "\x00" in item:
            raise InvalidArgument(
                f"{name} holds an empty or unusable string {shown(item)}", hint=f"for example {name} = {example}"
            )
        out.append(item if choices is None else check_choice(name, item, choices, what=what))
    return tuple(out)


def check_date(name: str, value: object) -> date:
    """A calendar date: a :class:`~datetime.date` (a datetime gives its date) or ``"YYYY-MM-DD"``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidArgument(
        f"{name} must be a date as YYYY-MM-DD, got {shown(value)}", hint=f'for example {name} = "2025-01-31"'
    )


def check_moment(name: str, value: object) -> datetime:
    """A point in time, timezone-aware: a datetime (naive means UTC), a date (midnight UTC) or an
    ISO 8601 string (``Z`` allowed)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(
                f"{name} is {shown(value)}, not an ISO date or date-time",
                hint=f'write {name} as "2025-01-31" or "2025-01-31T12:00:00+00:00"',
            ) from None
    else:
        raise _fail(name, "a date, a datetime or an ISO string", value, f'write {name} as "2025-01-31"')
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# --- calls of the data-generation API -------------------------------------------------------------
# Strategies, factories and reward scenarios are Python calls with keyword arguments, checked when
# the strategy or factory is *created* (not when drawn from), like Hypothesis's own argument
# validation. Their errors are :func:`invalid`'s, prefixed by the call: ``<function>(): <name> must
# be <what>, got <value>``. ``None`` always means "let the generator choose" and passes; counts and
# intervals may be given as ``(min, max)`` pairs.


def call_error(function: str, name: str, value: object, expected: str, hint: str | None = None) -> InvalidArgument:
    """Build (not raise) the error of a data-generation call (:func:`invalid`, named after the call)."""
    return invalid(
        name,
        value,
        expected,
        hint=hint or f"pass {name} as {expected}, or leave it out to let the strategy choose",
        function=function,
    )


def call_bool(function: str, name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise call_error(function, name, value, "True, False or None")


def call_str(function: str, name: str, value: Any, *, allow_empty: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise call_error(function, name, value, "a string or None")
    if "\x00" in value:
        raise call_error(function, name, value, "a string without NUL characters (PostgreSQL cannot store them)")
    if not allow_empty and not value:
        raise call_error(function, name, value, "a non-empty string")
    return value


def call_choice(function: str, name: str, value: Any, options: Collection[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in options:
        shown = ", ".join(repr(option) for option in options)
        raise call_error(function, name, value, f"one of {shown} or None")
    return value


def call_count(function: str, name: str, value: Any, *, lo: int, hi: int) -> tuple[int, int] | None:
    """An exact count ``n`` or an inclusive range ``(lo, hi)``, within ``[lo, hi]``."""
    if value is None:
        return None
    expected = f"an int or an (min, max) pair of ints within {lo}..{hi}"
    if isinstance(value, bool):
        raise call_error(function, name, value, expected)
    if isinstance(value, int):
        low = high = value
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        low, high = value
    else:
        raise call_error(function, name, value, expected)
    if not lo <= low <= high <= hi:
        raise call_error(function, name, value, expected, hint=f"use values between {lo} and {hi}, min <= max")
    return low, high


def call_interval(function: str, name: str, value: Any, *, lo: float, hi: float) -> tuple[float, float] | None:
    """A closed float interval ``(low, high)`` (or one number for an exact value), finite, inside ``[lo, hi]``."""
    if value is None:
        return None
    expected = f"a number or a (min, max) pair of finite numbers within {lo}..{hi}"
    if isinstance(value, bool):
        raise call_error(function, name, value, expected)
    if isinstance(value, (int, float)):
        low = high = float(value)
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise call_error(function, name, value, expected)
    if not (math.isfinite(low) and math.isfinite(high)) or not lo <= low <= high <= hi:
        raise call_error(
            function,
            name,
            value,
            expected,
            hint=f"use finite numbers between {lo} and {hi} with min <= max (NaN and Infinity cannot be stored)",
        )
    return low, high
