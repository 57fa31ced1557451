"""A reward sample: distinct values with their counts (a weighted empirical distribution).

A gate over a million sessions never holds a million Python floats: the database returns each
distinct (rounded) score once with its count, and every statistic here works on that table. Small
samples built from plain lists are just tables whose counts are mostly 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pytest_atlas.errors import InvalidArgument

__all__ = ["Sample", "as_sample", "finite_floats"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def finite_floats(values: Iterable[object], what: str) -> FloatArray:
    # a gate's frequency table: checked at once, not number by number
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.ndim == 1 and np.isfinite(values).all():
        return values
    numbers: list[float] = []
    for position, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidArgument(
                f"{what}[{position}] is {value!r}, not a number",
                hint="pass reward scores as floats; drop or repair sessions without a usable score first",
            )
        number = float(value)
        if not math.isfinite(number):
            raise InvalidArgument(
                f"{what}[{position}] is {number!r}; reward scores must be finite numbers",
                hint="NaN and infinite scores cannot be compared: drop those sessions (the gate query "
                "counts them as 'missing' for you)",
            )
        numbers.append(number)
    return np.asarray(numbers, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Sample:
    """Distinct finite values and how often each occurs. Build with :meth:`of` or :meth:`from_counts`."""

    values: FloatArray
    counts: IntArray
    #: exact mean and variance when the table holds rounded values (the database computes them)
    exact_mean: float | None = None
    exact_variance: float | None = None

    @classmethod
    def of(cls, values: Iterable[object], *, what: str = "scores") -> Sample:
        """A sample of the given scores (finite numbers; anything else raises InvalidArgument)."""
        array = finite_floats(values, what)
        distinct, counts = np.unique(array, return_counts=True)
        return cls(distinct.astype(np.float64), counts.astype(np.int64))

    @classmethod
    def from_counts(
        cls,
        values: Sequence[object] | FloatArray,
        counts: Sequence[int] | IntArray,
        *,
        what: str = "scores",
        exact_mean: float | None = None,
        exact_variance: float | None = None,
    ) -> Sample:
        """A sample given as a frequency table: ``values[i]`` occurs ``counts[i]`` times.

        When the values were rounded (as the gate queries do), ``exact_mean`` / ``exact_variance``
        carry the moments of the unrounded scores; rank tests and the bootstrap use the table.
        """
        array = finite_floats(values, what)
        if len(counts) != len(array):
            raise InvalidArgument(
                f"{what}: {len(array)} values but {len(counts)} counts",
                hint="give one count per value",
            )
        count_array = np.asarray([int(c) for c in counts], dtype=np.int64)
        if (count_array < 0).any():
            raise InvalidArgument(f"{what}: counts must not be negative", hint="give how often each value occurs")
        keep = count_array > 0
        distinct, inverse = np.unique(array[keep], return_inverse=True)
        merged = np.zeros(len(distinct), dtype=np.int64)
        np.add.at(merged, inverse, count_array[keep])
        return cls(distinct.astype(np.float64), merged, exact_mean, exact_variance)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def mean(self) -> float:
        if self.n == 0:
            return math.nan
        if self.exact_mean is not None:
            return self.exact_mean
        return float(np.dot(self.values, self.counts) / self.n)

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 in the denominator); NaN below two observations."""
        n = self.n
        if n < 2:
            return math.nan
        if self.exact_variance is not None:
            return self.exact_variance
        deviations = self.values - self.mean
        return float(np.dot(self.counts, deviations * deviations) / (n - 1))

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance) if self.n >= 2 else math.nan

    def expand(self) -> FloatArray:
        """Every observation, in ascending order (for rank tests)."""
        return np.repeat(self.values, self.counts)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Sample(n={self.n}, mean={self.mean:.4g}, sd={self.sd:.4g})"


def as_sample(data: Sample | Iterable[object], what: str) -> Sample:
    return data if isinstance(data, Sample) else Sample.of(data, what=what)
