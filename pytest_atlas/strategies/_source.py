"""Where the random choices come from.

Every builder in this package takes a :class:`Source` and asks it for integers, floats, flags,
picks and words. Two sources exist:

* :class:`HypothesisSource` takes every structural choice (counts, flags, picks, scores) from
  bits that Hypothesis draws, so the choices shrink: integers and counts towards their lower
  bound, flags towards ``False`` (the optional part is left out), picks towards the first option
  (the simplest one is always listed first), reals towards the lower bound. Prose and digests
  come from a generator seeded by one Hypothesis draw; odd Unicode text is a real Hypothesis text
  draw.
* :class:`RandomSource` answers from a seeded :class:`random.Random`. The factories use it: the
  same seed gives the same data, with no Hypothesis machinery in the way.

The domain knowledge therefore lives in one place and serves both property tests and factories.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from hypothesis import strategies as st

__all__ = ["VOCABULARY", "HypothesisSource", "RandomSource", "Source"]

T = TypeVar("T")

#: words used for tasks, rationales, notes and other prose; the first ones are the "simplest"
VOCABULARY: tuple[str, ...] = (
    "a",
    "the",
    "check",
    "service",
    "error",
    "deploy",
    "latency",
    "answer",
    "step",
    "log",
    "retry",
    "user",
    "request",
    "database",
    "timeout",
    "summarise",
    "incident",
    "fix",
    "plan",
    "review",
    "cache",
    "query",
    "report",
    "alert",
    "rollback",
    "config",
    "token",
    "budget",
    "agent",
    "teacher",
    "student",
    "reward",
    "drift",
    "pipeline",
    "queue",
    "worker",
    "memory",
    "disk",
    "network",
    "payment",
    "refund",
    "ticket",
    "customer",
    "invoice",
    "schema",
    "index",
    "migration",
    "release",
    "canary",
    "feature",
    "flag",
    "owner",
    "escalate",
    "runbook",
    "trace",
    "metric",
    "dashboard",
    "p99",
    "5xx",
    "OOMKilled",
    "k8s",
    "pod",
    "node",
    "cluster",
    "región",
    "naïve",
    "café",
    "résumé",
    "日本",
    "данные",
    "🙂",
    "x86_64",
    "v1.2.3",
    "--dry-run",
    '"quoted"',
    "back\\slash",
    "tab\tinside",
    "new\nline",
    "{braces}",
    "[brackets]",
    "50%",
    "$HOME",
    "'single'",
)

# Characters Hypothesis may use for "odd" free text. PostgreSQL stores neither NUL in TEXT/JSONB
# nor lone surrogates, so both are excluded; everything else (other scripts, emoji, controls) is fair.
_ODD_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=24,
)


class Source:
    """The interface the builders draw from (see the module docstring)."""

    def integer(self, lo: int, hi: int) -> int:
        """An int in ``[lo, hi]``; shrinks towards ``lo``."""
        raise NotImplementedError

    def real(self, lo: float, hi: float) -> float:
        """A finite float in ``[lo, hi]`` (never NaN or infinite); shrinks towards a simple value."""
        raise NotImplementedError

    def flag(self, p: float = 0.5) -> bool:
        """``True`` with probability about ``p``; shrinks towards ``False``."""
        raise NotImplementedError

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``; shrinks towards ``options[0]``."""
        raise NotImplementedError

    def words(self, lo: int, hi: int) -> str:
        """``lo``..``hi`` vocabulary words joined by spaces; shrinks towards fewer, earlier words."""
        raise NotImplementedError

    def odd_text(self) -> str:
        """Arbitrary short Unicode text (no NUL, no lone surrogate); shrinks towards ``""``."""
        raise NotImplementedError

    def hexdigits(self, n: int) -> str:
        """``n`` lower-case hex digits; shrinks towards zeros."""
        raise NotImplementedError

    def subseed(self) -> int:
        """An integer from which a child :class:`random.Random` may be seeded (bulk filler only)."""
        raise NotImplementedError

    # -- key choices: the few that decide a session's shape (status, counts, scores). Hypothesis
    # draws each of them on its own, so the shrinker can simplify one without disturbing the others.

    def key_integer(self, lo: int, hi: int) -> int:
        return self.integer(lo, hi)

    def key_real(self, lo: float, hi: float) -> float:
        return self.real(lo, hi)

    def key_flag(self, p: float = 0.5) -> bool:
        return self.flag(p)

    def key_pick(self, options: Sequence[T]) -> T:
        return self.pick(options)

    # -- derived helpers (the same for both sources) -----------------------------------------------

    def sentence(self, lo: int = 3, hi: int = 12) -> str:
        """Prose: mostly vocabulary words, now and then with odd Unicode appended."""
        text = self.words(lo, hi)
        if self.flag(0.06):
            text = f"{text} {self.odd_text()}".strip() or "x"
        return text

    def maybe(self, p: float, make: Callable[[], T]) -> T | None:
        """``make()`` with probability ``p``, else ``None``."""
        return make() if self.flag(p) else None

    def many(self, lo: int, hi: int, make: Callable[[], T]) -> list[T]:
        """A list of ``lo``..``hi`` items, each from ``make()``; shrinks towards ``lo`` items."""
        return [make() for _ in range(self.integer(lo, hi))]


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


# ------------------------------------------------------------------------------------------------
# random.Random
# ------------------------------------------------------------------------------------------------

_ODD_POOL: tuple[str, ...] = (
    "",
    "Ω≈ç√∫",
    "\u200b",
    "🙂🙃",
    "ẞ",
    "\u202eRTL",
    "ﬁ",
    "\x7f",
    "\r\n",
    "漢字",
    "①②",
    "\u0301e",
)


_WEIGHTED_WORDS: tuple[str, ...] = VOCABULARY[:60] * 9 + VOCABULARY
_STREAM_WORDS = 1 << 16


def _word_stream() -> tuple[str, list[int]]:
    words = random.Random(0x5EED).choices(_WEIGHTED_WORDS, k=_STREAM_WORDS + 1)
    starts = [0]
    for word in words:
        starts.append(starts[-1] + len(word) + 1)
    return " ".join(words) + " ", starts


_STREAM_TEXT, _STREAM_STARTS = _word_stream()


class RandomSource(Source):
    """Answers from a seeded :class:`random.Random` (used by the factories)."""

    __slots__ = ("rng",)

    def __init__(self, seed: int | random.Random | None = None) -> None:
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        if lo >= hi:
            return lo
        return self.rng.randint(lo, hi)

    def real(self, lo: float, hi: float) -> float:
        if lo >= hi:
            return lo
        return self.rng.uniform(lo, hi)

    def flag(self, p: float = 0.5) -> bool:
        return self.rng.random() < p

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))] if len(options) > 1 else options[0]

    def words(self, lo: int, hi: int) -> str:
        # a slice of a long, fixed stream of words (the common ones carry most of it): two random
        # calls per sentence instead of one per word, which matters when building thousands of sessions
        count = self.rng.randint(lo, hi) if hi > lo else lo
        if count <= 0:
            return ""
        start = self.rng.randrange(_STREAM_WORDS - count)
        return _STREAM_TEXT[_STREAM_STARTS[start] : _STREAM_STARTS[start + count] - 1]

    def odd_text(self) -> str:
        return self.rng.choice(_ODD_POOL)

    def hexdigits(self, n: int) -> str:
        return format(self.rng.getrandbits(4 * n), f"0{n}x")

    def subseed(self) -> int:
        return self.rng.getrandbits(32)
