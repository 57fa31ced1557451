"""Hypothesis as a :class:`~pytest_atlas.domain.Source`: the builders of the domain, drawn by Hypothesis.

:class:`HypothesisSource` takes every structural choice (counts, flags, picks, scores) from bits
that Hypothesis draws, so the choices shrink: integers and counts towards their lower bound, flags
towards ``False`` (the optional part is left out), picks towards the first option (the simplest one
is always listed first), reals towards the lower bound. Prose and digests come from a
:class:`~pytest_atlas.domain.RandomSource` seeded by one Hypothesis draw; odd Unicode text is a
real Hypothesis text draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from hypothesis import strategies as st

from pytest_atlas.domain import RandomSource, Source

__all__ = ["HypothesisSource"]

T = TypeVar("T")

# Characters Hypothesis may use for "odd" free text. PostgreSQL stores neither NUL in TEXT/JSONB
# nor lone surrogates, so both are excluded; everything else (other scripts, emoji, controls) is fair.
_ODD_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=24,
)


# ------------------------------------------------------------------------------------------------
# Hypothesis
# ------------------------------------------------------------------------------------------------

# Every structural choice is read from a pool of bytes that Hypothesis draws 128 at a time. A draw
# inside a composite strategy costs about 11 microseconds whatever its size, and a session makes
# several hundred choices: the pool makes a whole session cost a handful of draws. Each choice owns
# whole bytes (a flag or a small count one byte, a real three), read big-endian, so Hypothesis's
# shrinker, which minimises the chunks byte by byte, shrinks each choice on its own: a zero byte
# means "the lower bound", "no" or "the first option", so shrunk examples lose their optional parts
# and reach the minimum counts. Hypothesis draws these bytes about uniformly, so a flag's byte gives
# its probability. Bulk filler (prose, hex digests) comes from a random.Random seeded by one more draw.
_CHUNK_BYTES = 128
_CHUNK = st.binary(min_size=_CHUNK_BYTES, max_size=_CHUNK_BYTES)
_SEED = st.integers(0, 2**32 - 1)
_REAL_BYTES = 3
_REAL_STEPS = (1 << (8 * _REAL_BYTES)) - 1
_WIDE = 1 << 16  # integer ranges wider than this are filler (token counts, timestamps, ids)
_REAL = st.binary(min_size=_REAL_BYTES, max_size=_REAL_BYTES)
_BYTE = st.binary(min_size=1, max_size=1)


@lru_cache(maxsize=512)
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


class HypothesisSource(Source):
    """Structural choices from bytes drawn by Hypothesis, filler from a seeded generator."""

    __slots__ = ("_buffer", "_draw", "_filler", "_position")

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw
        self._buffer = b""
        self._position = 0
        self._filler: RandomSource | None = None

    def _take(self, size: int) -> int:
        """The next ``size`` bytes of the pool as a big-endian int (drawing a new chunk when needed)."""
        end = self._position + size
        if end > len(self._buffer):
            chunk: bytes = self._draw(_CHUNK)
            self._buffer = self._buffer[self._position :] + chunk
            self._position, end = 0, size
        value = int.from_bytes(self._buffer[self._position : end], "big")
        self._position = end
        return value

    @property
    def filler(self) -> RandomSource:
        if self._filler is None:
            seed: int = self._draw(_SEED)
            self._filler = RandomSource(seed)
        return self._filler

    def integer(self, lo: int, hi: int) -> int:
        if lo >= hi:
            return lo
        span = hi - lo
        if span >= _WIDE:
            return self.filler.integer(lo, hi)
        return lo + self._take(1 if span < 256 else 2) % (span + 1)

    def real(self, lo: float, hi: float) -> float:
        if lo >= hi:
            return lo
        step = self._take(_REAL_BYTES)
        if step == _REAL_STEPS:
            return hi
        return lo + (hi - lo) * (step / _REAL_STEPS)

    def flag(self, p: float = 0.5) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        # the top p-fraction of byte values means "yes", so a zero byte (the shrink target) means "no"
        return self._take(1) >= min(255, max(1, round(256 * (1.0 - p))))

    def pick(self, options: Sequence[T]) -> T:
        if len(options) == 1:
            return options[0]
        return options[self.integer(0, len(options) - 1)]

    def key_integer(self, lo: int, hi: int) -> int:
        if lo >= hi:
            return lo
        value: int = self._draw(_integers(lo, hi))
        return value

    # reals and flags come from fixed-size bytes, which Hypothesis draws about uniformly (its
    # integers lean towards small values) and shrinks towards zero

    def key_real(self, lo: float, hi: float) -> float:
        if lo >= hi:
            return lo
        step = int.from_bytes(self._draw(_REAL), "big")
        return hi if step == _REAL_STEPS else lo + (hi - lo) * (step / _REAL_STEPS)

    def key_flag(self, p: float = 0.5) -> bool:
        if p <= 0.0 or p >= 1.0:
            return p >= 1.0
        value = self._draw(_BYTE)[0]
        return bool(value >= min(255, max(1, round(256 * (1.0 - p)))))

    def key_pick(self, options: Sequence[T]) -> T:
        return options[self.key_integer(0, len(options) - 1)]

    def words(self, lo: int, hi: int) -> str:
        return self.filler.words(lo, hi)

    def odd_text(self) -> str:
        value: str = self._draw(_ODD_TEXT)
        return value

    def hexdigits(self, n: int) -> str:
        return self.filler.hexdigits(n)

    def subseed(self) -> int:
        return self.filler.subseed()
