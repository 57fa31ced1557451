"""Connecting to a server, telling faults that pass from faults that stay, and the one place that
turns a connection failure into a message a person can act on.

:func:`connection_error` maps what libpq reports (a wrong password, no password, a login pg_hba.conf
refuses, an unknown database or role, a server that is not listening or is restarting) to a
:class:`~pytest_atlas.errors.ProvisioningError` whose message names the cause and whose hint names
the setting to fix. The test-database server (``--atlas-dsn``) and the checked database
(``--atlas-target``) both go through it; passwords never appear in what it says.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import build_url, redact, redact_text, refusal, remember_secret, secrets_of, unparsable_errors
from pytest_atlas.errors import ProvisioningError, ServerUnavailable

__all__ = [
    "SERVER_SETTING",
    "STARTED_SERVER_LOGIN",
    "TARGET_SETTING",
    "Backoff",
    "connect_clearly",
    "connection_error",
    "is_transient",
    "one_line",
    "passfile_first",
    "unset_pgpassword",
]

#: where the server for test databases is configured (for hints)
SERVER_SETTING = "--atlas-dsn / $ATLAS_TEST_DSN / ini atlas_dsn"
#: where the checked database is configured (for hints)
TARGET_SETTING = "--atlas-target / $ATLAS_TARGET_DSN / ini atlas_target"

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
    "the database system is not accepting connections",  # a standby without hot standby, until promoted
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
    setting: str = SERVER_SETTING,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """``psycopg.connect`` whose failures are ProvisioningErrors naming the cause (password redacted).

    A fault that passes (the server starting up or in recovery after a crashed backend, a full
    connection table) is retried for up to ``retry_for`` seconds, unless ``alive`` says the server
    process is gone. ``shown`` is how messages name the server (default: the conninfo, redacted);
    ``login_hint`` replaces the hint for a refused login; ``setting`` names where the DSN is configured
    (for hints)."""
    # keyword arguments that are connection parameters (user=..., dbname=...) join the conninfo, so
    # that a message names what was really tried
    options = {key: value for key, value in kwargs.items() if key in _CONNECTION_OPTIONS}
    try:
        params = {**conninfo_to_dict(conninfo), **{k: v for k, v in kwargs.items() if k not in _CONNECTION_OPTIONS}}
    except unparsable_errors() as exc:
        raise _unusable(exc, conninfo, shown, setting) from None
    params.setdefault("connect_timeout", 10)
    target = make_conninfo("", **params)
    del params  # holds the password: keep it out of this frame's locals
    backoff = Backoff(retry_for)
    while True:
        try:
            return psycopg.connect(target, **options)
        except (psycopg.ProgrammingError, psycopg.InterfaceError, ValueError) as exc:  # a value psycopg refuses
            raise _unusable(exc, target, shown, setting) from None
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay() if is_transient(exc) and (alive is None or alive()) else None
            if delay is None:
                raise connection_error(exc, target, shown=shown, login_hint=login_hint, setting=setting) from None
            time.sleep(delay)


def passfile_first() -> list[str]:
    """Make the passfile that this run's DSNs name the password libpq uses.

    libpq takes a password from the DSN, then from ``$PGPASSWORD``, and only then from the passfile.
    The DSNs pytest-atlas hands out carry no password but name a passfile, so a ``$PGPASSWORD`` left in
    the environment (a CI job's, for another role) would be sent instead, by this process and by
    every program a test starts. It is removed from this process's environment; the returned note
    says so (never its value)."""
    global _unset_pgpassword
    value = os.environ.pop("PGPASSWORD", None)
    if value is None:
        return []
    _unset_pgpassword = value
    remember_secret(value)
    return [
        "$PGPASSWORD was unset for this run: the DSNs handed to tests name a passfile, "
        "which libpq reads only when $PGPASSWORD is not set (the plugin's connections to "
        "--atlas-target still use it)"
    ]


#: the $PGPASSWORD :func:`passfile_first` took out of the environment (never shown)
_unset_pgpassword: str | None = None


def unset_pgpassword() -> str | None:
    """The ``$PGPASSWORD`` this run removed from the environment, if it did and none is set again:
    what libpq would have sent to a server whose DSN has no password (the target's)."""
    return _unset_pgpassword if "PGPASSWORD" not in os.environ else None


#: libpq's prefix naming the server it tried; the DSN shown already says where
_TRIED = re.compile(r"^(?:connection failed:\s*)?(?:connection to server (?:at|on) .*? failed:\s*)?", re.IGNORECASE)


def server_words(text: str) -> str:
    """libpq's message without the prefix naming the address it tried, on one line: the cause
    ("Connection refused") and the server's own words ("FATAL:  password authentication failed ...")."""
    parts = [_TRIED.sub("", line.strip()) for line in text.splitlines()]
    return "; ".join(part for part in parts if part)


#: keyword arguments of psycopg.connect that are not connection parameters
_CONNECTION_OPTIONS = frozenset({"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory"})


def _unusable(exc: Exception, conninfo: str, shown: str | None, setting: str) -> ProvisioningError:
    """A connection string that cannot be used as given (libpq cannot parse it, or psycopg refuses
    one of its values, such as ``connect_timeout=abc``): what was wrong, never the password."""
    where = shown if shown is not None else redact_text(conninfo, *secrets_of(conninfo))
    return ProvisioningError(
        f"{where} cannot be used as a connection string: {refusal(exc, conninfo)}",
        hint=f"check the parameters of {setting} (a URL such as postgresql://user:password@host:5432/dbname, "
        "or key=value pairs such as 'host=db dbname=atlas user=ci connect_timeout=10')",
    )


def connection_error(
    exc: psycopg.Error,
    conninfo: str,
    *,
    shown: str | None = None,
    login_hint: str | None = None,
    setting: str = SERVER_SETTING,
    secret: str = "",
) -> ProvisioningError:
    """The one mapping from a failed connection to a message: what failed, where, and a hint that
    matches the cause. Neither the conninfo's password nor ``secret`` appears in it. A fault that
    passes is a :class:`~pytest_atlas.errors.ServerUnavailable` (retried by its callers)."""
    params = conninfo_to_dict(conninfo)
    password = str(params.get("password") or "")
    user = str(params.get("user") or "")
    where = shown or redact(
        build_url({k: str(v) for k, v in params.items() if v is not None and k not in ("connect_timeout", "passfile")})
    )
    text = redact_text(str(exc).strip(), password, secret)
    first = server_words(text) or type(exc).__name__
    lowered = text.lower()
    sqlstate = getattr(exc, "sqlstate", None)
    of_user = f" of user {user!r}" if user else ""
    if sqlstate == "28P01" or "password authentication failed" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} rejected the password{of_user}: {first}",
            hint=login_hint or f"check the user name and the password in {setting} (or in ~/.pgpass / $PGPASSWORD)",
        )
    if "no password supplied" in lowered or "password is required" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} asks for a password{of_user} and none was given: {first}",
            hint=login_hint or f"add the password to {setting}, or put it in ~/.pgpass or $PGPASSWORD",
        )
    if "peer authentication failed" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} rejected the login{of_user} (peer authentication): {first}",
            hint=login_hint or f"check the user name in {setting}; peer logins must come from the matching OS account",
        )
    if "pg_hba.conf" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} does not accept this connection (pg_hba.conf): {first}",
            hint=login_hint or "connect as a user, from a host and to a database the server's pg_hba.conf allows",
        )
    if sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return ProvisioningError(f"PostgreSQL at {where}: {first}", hint=f"check the database name in {setting}")
    if "role" in lowered and "does not exist" in lowered:
        return ProvisioningError(f"PostgreSQL at {where}: {first}", hint=f"check the user name in {setting}")
    if is_transient(exc) and any(word in lowered for word in _NOT_ACCEPTING):
        return ServerUnavailable(
            f"PostgreSQL at {where} is not accepting connections: {first}",
            hint="the server is starting, recovering from a crashed backend or full; it was retried for a while: "
            "see the server's log",
        )
    if any(word in lowered for word in _UNREACHABLE):
        return ProvisioningError(
            f"cannot reach PostgreSQL at {where}: {first}",
            hint=f"is the server running and listening there? check the host and port in {setting}",
        )
    kind = ServerUnavailable if is_transient(exc) else ProvisioningError
    return kind(
        f"cannot connect to PostgreSQL at {where}: {first}",
        hint=f"check {setting} and that the server accepts this connection",
    )


#: what libpq says when a server is up but not taking connections yet (or any more)
_NOT_ACCEPTING = ("the database system is", "too many clients")
#: what libpq says when nothing answers where the DSN points
_UNREACHABLE = (
    "refused",
    "timeout",
    "timed out",
    "could not translate",
    "no route",
    "could not connect",
    "name or service",
    "network is unreachable",
    "no such file or directory",  # a unix socket that does not exist
)
