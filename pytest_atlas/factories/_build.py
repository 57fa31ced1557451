"""Factories: realistic sessions in one line, built (plain data) or created (inserted, ids back)."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from pytest_atlas._arguments import call_error, check_integer, check_positive_int
from pytest_atlas.domain import RandomSource, SessionGraph, build_graph, graph_options
from pytest_atlas.factories._insert import bulk, check_connection, insert_graphs, insert_stream

__all__ = ["TRAITS", "Factory", "Sequence", "sequence"]

#: boolean shortcuts and the options they stand for
TRAITS: dict[str, dict[str, Any]] = {
    "failed": {"status": "failed"},
    "running": {"status": "running"},
    "quarantined": {"review_status": "quarantined"},
    "approved": {"review_status": "approved"},
    "drifting": {"drift_alert": True},
}

_OPTIONS = (
    "learning_key",
    "task",
    "status",
    "review_status",
    "execution_mode",
    "score",
    "steps",
    "events",
    "attempts",
    "drift_alert",
    "legacy",
    "created_at",
    "metadata",
)
#: Atlas's drift window: the baseline holds the key's newest 50 sessions, the assessed one included
_WINDOW = 50
#: the sessions of a key a factory remembers for later baselines (the newest); a session built with a
#: created_at before all of them is assessed against those it finds
_REMEMBERED = 1000
_COLUMNS = ("final_answer", "review_notes", "student_learning", "teacher_learning", "completed_at")


class Sequence:
    """An override whose value changes per built session: ``sequence(lambda n: f"key-{n}")``.

    ``n`` counts from ``start`` for each :class:`Sequence` object, across every call that uses it.
    """

    def __init__(self, make: Callable[[int], Any], *, start: int = 1) -> None:
        if not callable(make):
            raise call_error("sequence", "make", make, "a function of the sequence number n")
        self._make = make
        self._counter = itertools.count(start)

    def next(self) -> Any:
        return self._make(next(self._counter))


def sequence(make: Callable[[int], Any] | str, *, start: int = 1) -> Sequence:
    """A per-session value: a function of ``n`` or a format string with ``{n}`` (``"task {n}"``)."""
    if isinstance(make, str):
        template = make
        if "{n" not in template:
            raise call_error("sequence", "make", make, "a format string containing {n}, or a function of n")
        return Sequence(lambda n: template.format(n=n), start=start)
    return Sequence(make, start=start)


class Factory:
    """Builds sessions from a seeded generator, with sequences for tasks, learning keys and times.

    ``Factory(seed=0)`` always builds the same sessions in the same order. Tasks are numbered
    (``"Task 1: ..."``), sessions spread over ``learning_keys`` keys in turn so that each key has a
    history, and each session starts a few minutes after the previous one (``created_at`` ascending,
    from ``start``).
    """

    def __init__(self, seed: int | None = 0, *, learning_keys: int = 3, start: datetime | None = None) -> None:
        if seed is not None:
            check_integer("seed", seed, expected="an int or None", function="Factory")
        check_positive_int("learning_keys", learning_keys, function="Factory")
        if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
            raise call_error("Factory", "start", start, "a timezone-aware datetime")
        self.seed = seed
        self._rng = random.Random(seed)
        self._source = RandomSource(self._rng)
        self._keys = [format(self._rng.getrandbits(256), "064x") for _ in range(learning_keys)]
        self._key_cycle = itertools.cycle(self._keys)
        self._task_number = itertools.count(1)
        #: per learning key, the (created_at, build number, reward_stats) of the sessions built, in time order
        self._rewards: dict[str, list[tuple[datetime, int, Any]]] = {}
        self._built = itertools.count()
        self._levels: dict[str, float] = {}
        self._clock = start or datetime(2025, 2, 1, tzinfo=timezone.utc) + timedelta(
            seconds=self._rng.randrange(86400 * 30)
        )

    @property
    def learning_keys(self) -> list[str]:
        """The keys sessions are spread over when no ``learning_key`` is given."""
        return list(self._keys)

    # -- sequences -------------------------------------------------------------------------------

    def next_task(self) -> str:
        return f"Task {next(self._task_number)}: {self._source.sentence(3, 10)}"

    def next_learning_key(self) -> str:
        return next(self._key_cycle)

    def _level(self, key: str) -> float:
        """Where the scores of ``key``'s sessions usually lie (a fraction of the score range): the
        same for a seed and key whatever else was built (a generator of its own, not the factory's)."""
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = random.Random(f"{self.seed}:{key}").uniform(0.6, 0.9)
        return level

    def _next_time(self) -> datetime:
        self._clock += timedelta(seconds=self._rng.randint(30, 900), microseconds=self._rng.randrange(10**6))
        return self._clock

    # -- building -------------------------------------------------------------------------------

    @staticmethod
    def _check_names(function: str, overrides: dict[str, Any]) -> None:
        for name, value in overrides.items():
            if name not in TRAITS and name not in _OPTIONS and name not in _COLUMNS:
                known = ", ".join(sorted((*_OPTIONS, *_COLUMNS, *TRAITS)))
                raise call_error(function, name, value, "a known override", hint=f"known overrides: {known}")

    def _resolve(self, function: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        options: dict[str, Any] = {}
        columns: dict[str, Any] = {}
        set_by: dict[str, str] = {}  # option -> the trait that set it (two traits may not disagree)
        for name, value in overrides.items():
            if isinstance(value, Sequence):
                value = value.next()
            if name in TRAITS:
                if value is not True and value is not False:
                    raise call_error(function, name, value, "True or False (a trait)")
                if value:
                    for option, setting in TRAITS[name].items():
                        if option in overrides and overrides[option] != setting:
                            raise call_error(
                                function,
                                name,
                                value,
                                f"no conflicting {option}={overrides[option]!r}",
                                hint=f"the {name} trait sets {option}={setting!r}; pass one or the other",
                            )
                        other = set_by.get(option)
                        if other is not None and options[option] != setting:
                            raise call_error(
                                function,
                                name,
                                value,
                                f"no other trait that sets {option} (the {other} trait sets "
                                f"{option}={options[option]!r})",
                                hint=f"{other}=True and {name}=True contradict each other; pass one of them",
                            )
                        options[option] = setting
                        set_by[option] = name
            elif name in _OPTIONS:
                options[name] = value
            elif name in _COLUMNS:
                columns[name] = value
            else:
                known = ", ".join(sorted((*_OPTIONS, *_COLUMNS, *TRAITS)))
                raise call_error(function, name, value, "a known override", hint=f"known overrides: {known}")
        return options, columns

    def session(self, **overrides: Any) -> SessionGraph:
        """Build one session graph (no database). Overrides: the options of ``session_graphs()``
        (``learning_key``, ``task``, ``status``, ``review_status``, ``execution_mode``, ``score``,
        ``steps``, ``events``, ``attempts``, ``drift_alert``, ``legacy``, ``created_at``,
        ``metadata``), the traits ``failed``, ``running``, ``quarantined``, ``approved``,
        ``drifting`` (``=True``), and the plain columns ``final_answer``, ``review_notes``,
        ``student_learning``, ``teacher_learning``, ``completed_at``. Any value may be a
        :func:`sequence`."""
        return self._build("session", overrides)

    def _build(self, function: str, overrides: dict[str, Any]) -> SessionGraph:
        options, columns = self._resolve(function, overrides)
        options.setdefault("task", self.next_task())
        options.setdefault("learning_key", self.next_learning_key())
        if options.get("created_at") is None:
            options["created_at"] = self._next_time()
        opts = graph_options(function, **options)
        created = opts.created_at
        assert created is not None
        earlier = self._rewards.get(opts.learning_key, []) if opts.learning_key else []  # None: a new key
        # the key's sessions built before this one and created no later: what Atlas's baseline reads
        end = bisect.bisect_right(earlier, created, key=lambda entry: entry[0])
        history = tuple(entry[2] for entry in reversed(earlier[max(end - _WINDOW + 1, 0) : end]))
        # a key's usual level, unless the caller pinned a range (its scores then spread over all of it)
        level = self._level(opts.learning_key) if opts.learning_key and opts.score is None else None
        graph = build_graph(self._source, dataclasses.replace(opts, drift_history=history, reward_level=level))
        graph.session.update(columns)
        stats = graph.session["reward_stats"]
        metadata = graph.session["metadata"]
        if stats is not None and isinstance(metadata, dict):
            recorded = str(metadata.get("learning_key") or "")
            remembered = self._rewards.setdefault(recorded, [])
            bisect.insort(remembered, (created, next(self._built), stats), key=lambda e: e[:2])
            if len(remembered) > 2 * _REMEMBERED:  # a factory that builds millions holds a window of each key
                del remembered[:-_REMEMBERED]
        return graph

    def sessions(self, n: int, **overrides: Any) -> list[SessionGraph]:
        """Build ``n`` session graphs (see :meth:`session`); sequences advance per session."""
        check_integer("n", n, low=0, expected="a non-negative int", function="sessions")
        with bulk():
            return [self._build("sessions", overrides) for _ in range(n)]

    def create_session(self, conn: psycopg.Connection[Any], **overrides: Any) -> int:
        """Build one session and insert it; returns its ``sessions.id``."""
        return insert_graphs(conn, [self._build("create_session", overrides)])[0]

    def create_sessions(self, conn: psycopg.Connection[Any], n: int, **overrides: Any) -> list[int]:
        """Build ``n`` sessions and insert them with COPY (seven round trips); returns their ids.

        The sessions stream into the database while they are being built."""
        check_integer("n", n, low=0, expected="a non-negative int", function="create_sessions")
        self._check_names("create_sessions", overrides)  # up front, before any row is sent
        conn = check_connection(conn, "create_sessions")
        return insert_stream(conn, n, (self._build("create_sessions", overrides) for _ in range(n)), "create_sessions")
