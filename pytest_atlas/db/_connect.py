"""Connecting to a server, telling faults that pass from faults that stay, and the one place that
turns a connection failure into a message a person can act on (password redacted)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import build_url, redact, redact_text
from pytest_atlas.errors import ProvisioningError, ServerUnavailable

__all__ = ["STARTED_SERVER_LOGIN", "Backoff", "connect_clearly", "connection_error", "is_transient", "one_line"]

#: the hint for a login a server pytest-atlas started refused
STARTED_SERVER_LOGIN = (
    "a server pytest-atlas starts admits the account that runs pytest and the server's account as its "
    "superuser 'postgres' (peer), and other roles with their password; connect as one of them"
)

#: SQLSTATEs of faults that pass: a backend killed or the server restarting (57P0x), too many
#: connections, an object briefly in use, lock and serialization conflicts, a cancelled statement,
#: lost connections (08xxx)
_TRANSIENT_STATES = frozenset(
    {"57P01", "57P02", "57P03", "53300", "55006", "55P03", "40001", "40P01", "57014", "08000", "08003", "08006"}
)
#: what libpq says (no SQLSTATE) when a server is restarting or a connection was cut
_TRANSIENT_TEXT = (
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
    "server closed the connection unexpectedly",
    "terminating connection",
    "connection is lost",
    "consuming input failed",
    "the connection is closed",
    "sorry, too many clients already",
)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault that passes on its own (retry it) rather than one that stays."""
    if isinstance(exc, ServerUnavailable):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = getattr(exc, "sqlstate", None)
    if state in _TRANSIENT_STATES:
        return True
    if state is None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        lowered = str(exc).lower()
        return any(text in lowered for text in _TRANSIENT_TEXT)
    return False


class Backoff:
    """Delays for retrying a fault that passes: 50 ms doubling to 2 s, for at most ``budget``
    seconds from the first failure of a streak; :meth:`reset` after a success."""

    def __init__(self, budget: float = 30.0, *, first: float = 0.05, cap: float = 2.0) -> None:
        self.budget = budget
        self.first = first
        self.cap = cap
        self.reset()

    def reset(self) -> None:
        self._since: float | None = None
        self._delay = self.first

    def next_delay(self) -> float | None:
        """The pause before the next attempt, or None when the streak has lasted ``budget``."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        if now - self._since >= self.budget:
            return None
        delay = min(self._delay, self.cap, max(self.budget - (now - self._since), 0.0))
        self._delay = min(self._delay * 2, self.cap)
        return delay


def connect_clearly(
    conninfo: str,
    *,
    retry_for: float = 10.0,
    alive: Callable[[], bool] | None = None,
    shown: str | None = None,
    login_hint: str | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """``psycopg.connect`` whose failures are ProvisioningErrors naming the cause (password redacted).

    A fault that passes (the server starting up or in recovery after a crashed backend, a full
    connection table) is retried for up to ``retry_for`` seconds, unless ``alive`` says the server
    process is gone. ``shown`` is how messages name the server (default: the conninfo, redacted);
    ``login_hint`` replaces the hint for a refused login."""
    # keyword arguments that are connection parameters (user=..., dbname=...) join the conninfo, so
    # that a message names what was really tried
    options = {key: value for key, value in kwargs.items() if key in _CONNECTION_OPTIONS}
    params = {**conninfo_to_dict(conninfo), **{k: v for k, v in kwargs.items() if k not in _CONNECTION_OPTIONS}}
    params.setdefault("connect_timeout", 10)
    target = make_conninfo("", **params)
    backoff = Backoff(retry_for)
    while True:
        try:
            return psycopg.connect(target, **options)
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay() if is_transient(exc) and (alive is None or alive()) else None
            if delay is None:
                raise connection_error(exc, target, shown=shown, login_hint=login_hint) from None
            time.sleep(delay)


#: keyword arguments of psycopg.connect that are not connection parameters
_CONNECTION_OPTIONS = frozenset({"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"})


def connection_error(
    exc: psycopg.Error, conninfo: str, *, shown: str | None = None, login_hint: str | None = None
) -> ProvisioningError:
    """The one mapping from a failed connection to a message: what failed, where, and a hint that
    matches the cause."""
    params = conninfo_to_dict(conninfo)
    password = str(params.get("password") or "")
    where = shown or redact(
        build_url({k: str(v) for k, v in params.items() if v is not None and k not in ("connect_timeout", "passfile")})
    )
    text = redact_text(str(exc).strip(), password)
    first = text.splitlines()[-1] if text else type(exc).__name__
    lowered = text.lower()
    transient = ServerUnavailable if is_transient(exc) else ProvisioningError
    for alternatives, problem, stays, hint in _CAUSES:
        if any(all(word in lowered for word in words) for words in alternatives):
            kind = ProvisioningError if stays else transient
            if login_hint is not None and "rejected the login" in problem:
                hint = login_hint
            return kind(problem.format(where=where, first=first), hint=hint)
    return transient(
        f"cannot connect to PostgreSQL at {where}: {first}",
        hint="check the DSN and that the server accepts this connection",
    )


#: causes, first match wins: (alternatives, each the words a message must all contain; the problem;
#: whether the fault stays whatever its kind; the hint)
_CAUSES: tuple[tuple[tuple[tuple[str, ...], ...], str, bool, str], ...] = (
    (
        (("password authentication failed",), ("no password supplied",)),
        "PostgreSQL at {where} rejected the login: {first}",
        True,
        "check the user and password in --atlas-dsn / $ATLAS_TEST_DSN / ini atlas_dsn",
    ),
    (
        (("peer authentication failed",), ("no pg_hba.conf entry",)),
        "PostgreSQL at {where} rejected the login: {first}",
        True,
        "check the user in --atlas-dsn / $ATLAS_TEST_DSN / ini atlas_dsn, and that the server admits it from here",
    ),
    (
        (("does not exist", "database"),),
        "PostgreSQL at {where}: {first}",
        True,
        "the DSN must name an existing database to connect to (usually 'postgres')",
    ),
    (
        (("the database system is",), ("too many clients",)),
        "PostgreSQL at {where} is not accepting connections: {first}",
        False,
        "the server is starting, recovering from a crashed backend or full; it was retried for a while: "
        "see the server's log",
    ),
    (
        tuple(
            (word,)
            for word in (
                "refused",
                "timeout",
                "timed out",
                "could not translate",
                "no route",
                "could not connect",
                "name or service",
                "no such file",
            )
        ),
        "cannot reach PostgreSQL at {where}: {first}",
        True,
        "is the server running and listening there? check the host and port of the DSN",
    ),
)
