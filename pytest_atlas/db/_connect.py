"""Connecting: the one place where a failed PostgreSQL connection becomes a clear message.

:func:`connection_error` maps what libpq reports (a wrong password, an unknown database or role, a
server that is not listening, a host that does not resolve) to a
:class:`~pytest_atlas.errors.ProvisioningError` whose message names the cause and whose hint names
the setting to fix. The test-database server (``--atlas-dsn``) and the checked database
(``--atlas-target``) both go through it; passwords never appear in what it says.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import build_url, redact, redact_text
from pytest_atlas.errors import ProvisioningError

__all__ = ["SERVER_SETTING", "TARGET_SETTING", "connect_clearly", "connection_error"]

#: where the server for test databases is configured (for hints)
SERVER_SETTING = "--atlas-dsn / $ATLAS_TEST_DSN / ini atlas_dsn"
#: where the checked database is configured (for hints)
TARGET_SETTING = "--atlas-target / $ATLAS_TARGET_DSN / ini atlas_target"

_UNREACHABLE = (
    "connection refused",
    "timeout",
    "timed out",
    "could not translate",
    "no route",
    "name or service",
    "network is unreachable",
    "no such file or directory",  # a unix socket that does not exist
    "server closed the connection unexpectedly",
)


def connect_clearly(
    conninfo: str, *, setting: str = SERVER_SETTING, shown: str | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """``psycopg.connect`` whose failures are ProvisioningErrors naming the cause (password redacted).

    ``shown`` is the DSN the message names (default ``conninfo``): the one the user gave, without
    parameters added for the connection.
    """
    params = conninfo_to_dict(conninfo)
    params.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(make_conninfo("", **params), **kwargs)
    except psycopg.OperationalError as exc:
        raise connection_error(
            exc, shown or conninfo, setting=setting, secret=str(params.get("password") or "")
        ) from None


def connection_error(
    exc: psycopg.Error, conninfo: str, *, setting: str = SERVER_SETTING, secret: str = ""
) -> ProvisioningError:
    """The clear form of a failed connection to ``conninfo``; ``setting`` names where it is configured.
    Neither the DSN's password nor ``secret`` appears in the message."""
    params = conninfo_to_dict(conninfo)
    password = str(params.get("password") or "")
    user = str(params.get("user") or "")
    where = redact(build_url({k: str(v) for k, v in params.items() if v is not None}))
    text = redact_text(str(exc).strip(), password, secret)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq's first line says what failed ("... failed: FATAL:  password authentication failed ...")
    first = lines[0] if lines else type(exc).__name__
    lowered = text.lower()
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "28P01" or "password authentication failed" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} rejected the password{f' of user {user!r}' if user else ''}: {first}",
            hint=f"check the user name and the password in {setting} (or in ~/.pgpass / $PGPASSWORD)",
        )
    if "no password supplied" in lowered or "password is required" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} asks for a password and none was given: {first}",
            hint=f"add the password to {setting}, or put it in ~/.pgpass or $PGPASSWORD",
        )
    if "pg_hba.conf" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where} does not accept this connection (pg_hba.conf): {first}",
            hint="connect as a user, from a host and to a database the server's pg_hba.conf allows",
        )
    if sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return ProvisioningError(
            f"PostgreSQL at {where}: {first}",
            hint=f"check the database name in {setting}",
        )
    if "role" in lowered and "does not exist" in lowered:
        return ProvisioningError(
            f"PostgreSQL at {where}: {first}",
            hint=f"check the user name in {setting}",
        )
    if any(word in lowered for word in _UNREACHABLE) or "could not connect" in lowered:
        return ProvisioningError(
            f"cannot reach PostgreSQL at {where}: {first}",
            hint=f"is the server running and listening there? check the host and port in {setting}",
        )
    return ProvisioningError(
        f"cannot connect to PostgreSQL at {where}: {first}",
        hint=f"check {setting} and that the server accepts this connection",
    )
