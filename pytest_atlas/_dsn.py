"""DSNs: checking, building, redacting. A password never leaves this module unredacted in text."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas.errors import ConfigError

__all__ = ["build_url", "check_dsn", "dsn_with_dbname", "redact", "redact_text"]

_URL_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)")
_KW_PASSWORD = re.compile(r"(?P<head>(?<![?&])\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^&\s]*)", re.IGNORECASE)


def redact_text(text: str, *secrets: str | None) -> str:
    """Remove passwords from free text: URL userinfo, ``password=`` pairs and the given secrets."""
    text = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)
    text = _KW_PASSWORD.sub(r"\g<head>***", text)
    text = _QUERY_PASSWORD.sub(r"\g<head>***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def redact(dsn: str) -> str:
    """The DSN as it may be printed: with the password replaced by ``***``."""
    return redact_text(dsn)


def check_dsn(dsn: str, where: str) -> dict[str, str]:
    """Parse a DSN (URL or ``key=value`` form) the way libpq does, or raise ConfigError."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        detail = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "unparsable", dsn)
        raise ConfigError(
            where,
            redact(dsn),
            f"not a valid PostgreSQL connection string ({detail})",
            hint="use a URL such as postgresql://user:password@host:5432/dbname "
            "or key=value pairs such as 'host=localhost dbname=postgres user=me'",
        ) from None
    return {key: str(value) for key, value in params.items() if value is not None}


def dsn_with_dbname(dsn: str, dbname: str) -> str:
    """The same connection parameters, pointed at another database (key=value form)."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def build_url(params: dict[str, str]) -> str:
    """A ``postgresql://`` URL for the given libpq parameters (for asyncpg, SQLAlchemy, Atlas)."""
    params = dict(params)
    user = params.pop("user", "")
    password = params.pop("password", "")
    host = params.pop("host", "")
    port = params.pop("port", "")
    dbname = params.pop("dbname", "")
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    if userinfo:
        userinfo += "@"
    netloc = ""
    if host and not host.startswith("/"):
        netloc = f"[{host}]" if ":" in host else host
    elif host:
        params["host"] = host
    if port:
        netloc += f":{port}"
    url = f"postgresql://{userinfo}{netloc}/{quote(dbname, safe='')}"
    if params:
        url += "?" + urlencode(sorted(params.items()))
    return url
