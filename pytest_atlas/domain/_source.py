"""Where the random choices come from: the interface every builder draws from, and its seeded answer.

Every builder of :mod:`pytest_atlas.domain` takes a :class:`Source` and asks it for integers,
floats, flags, picks and words. Two sources exist:

* :class:`RandomSource` (here) answers from a seeded :class:`random.Random`. The factories use it:
  the same seed gives the same data, with no Hypothesis machinery in the way.
* ``HypothesisSource`` (in :mod:`pytest_atlas.strategies`) takes every structural choice (counts,
  flags, picks, scores) from bits that Hypothesis draws, so the choices shrink: integers and counts
  towards their lower bound, flags towards ``False`` (the optional part is left out), picks towards
  the first option (the simplest one is always listed first), reals towards the lower bound.

The domain knowledge therefore lives in one place and serves both property tests and factories.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["PROSE_WORDS", "RandomSource", "Source"]

T = TypeVar("T")

#: words used for tasks, rationales, notes and other prose; the first ones are the "simplest"
PROSE_WORDS: tuple[str, ...] = (
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


_WEIGHTED_WORDS: tuple[str, ...] = PROSE_WORDS[:60] * 9 + PROSE_WORDS
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
