"""DSNs: checking, building, redacting. A password never leaves this module unredacted in text.

A DSN that comes from the user's settings (``--atlas-dsn``, ``--atlas-target``, ini, environment) may
carry a password. It is held as a :class:`Dsn`: its ``repr`` and ``str`` are redacted, so it can be
printed, compared in an assertion, shown by ``--showlocals`` or put in a report without leaking the
secret; only :meth:`Dsn.reveal` gives the text a driver needs. The DSNs the plugin hands to tests
(``atlas_dsn``, ``AtlasPostgres.dsn()``) carry no password at all: libpq and asyncpg read it from a
0600 passfile named in the DSN (``passfile=...``).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload
from urllib.parse import quote, urlencode

from pytest_atlas.errors import ConfigError

# psycopg is imported by the functions that parse a DSN, not here: the plugin imports this module on
# every pytest start, and a run that gives no DSN and uses no database never needs psycopg.

__all__ = [
    "Dsn",
    "build_url",
    "check_dsn",
    "dsn_with_dbname",
    "hide_password",
    "passfile_line",
    "redact",
    "redact_text",
    "refusal",
    "secrets_of",
    "unparsable_errors",
]

_T = TypeVar("_T")

# libpq's URI userinfo ends at the first "@" before any "/" (a password may hold spaces, "?" or "#");
# a key=value value is quoted ('...', with \' and \\) or runs to unescaped whitespace ("a\ b")
_URL_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)(?P<pw>[^@/\n]*)(?P<tail>@)")
_KW_PASSWORD = re.compile(
    r"(?P<head>(?<![?&])\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|(?:\\.|[^\s\\])+)", re.IGNORECASE
)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^&\s]*)", re.IGNORECASE)


def secrets_of(dsn: str) -> list[str]:
    """Every form the password of ``dsn`` takes in text, parsable or not: as written in the URL's
    userinfo, query or a ``password=`` pair, and decoded (percent-escapes, quotes, backslashes).
    libpq's messages about a connection string quote its tokens, so each of these is redacted."""
    from urllib.parse import unquote

    found: list[str] = []
    for pattern in (_URL_PASSWORD, _QUERY_PASSWORD):
        for match in pattern.finditer(dsn):
            raw = match.group("pw")
            found += [raw, unquote(raw, errors="replace")]
    for match in _KW_PASSWORD.finditer(dsn):
        raw = match.group("pw")
        inner = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == "'" else raw
        found += [raw, re.sub(r"\\(.)", r"\1", inner)]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact_text(text: str, *secrets: str | None) -> str:
    """Remove passwords from free text: the given secrets (longest first), then URL userinfo and
    ``password=`` pairs."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)
    text = _KW_PASSWORD.sub(r"\g<head>***", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def redact(dsn: str | Dsn) -> str:
    """The DSN as it may be printed: with the password replaced by ``***``."""
    if isinstance(dsn, Dsn):
        return dsn.redacted
    return redact_text(dsn)


class Dsn:
    """A connection string from the settings whose secret does not print.

    ``str()``, ``repr()`` and f-strings give the redacted form (``postgresql://app:***@db/x``);
    :meth:`reveal` gives the full text, for the one place that connects. Two Dsn objects are equal
    when their full texts are.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def reveal(self) -> str:
        """The full connection string, password included: pass it to a driver, never print it."""
        return self._text

    @property
    def redacted(self) -> str:
        try:
            password = self.password
        except unparsable_errors():  # a URL's userinfo can still be found; of key=value pairs, show none
            if self._text.lstrip().startswith(("postgres://", "postgresql://")):
                return redact_text(self._text, *secrets_of(self._text))
            return "(a key=value connection string libpq cannot parse)"
        return redact_text(self._text, password, *secrets_of(self._text))

    @property
    def password(self) -> str | None:
        """The password in the DSN, if it has one (for a passfile)."""
        value = _parse(self._text).get("password")
        return str(value) if value else None

    def params(self) -> dict[str, str]:
        """The libpq parameters (password included)."""
        return {key: str(value) for key, value in _parse(self._text).items() if value is not None}

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"Dsn({self.redacted!r})"

    def __format__(self, spec: str) -> str:
        return format(self.redacted, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dsn) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __reduce__(self) -> Any:  # pickling (xdist) keeps the value; only printing redacts
        return (Dsn, (self._text,))


@overload
def hide_password(value: str | Dsn) -> Dsn: ...
@overload
def hide_password(value: _T) -> _T | Dsn: ...
def hide_password(value: Any) -> Any:
    """``value`` as a :class:`Dsn` when it is a connection string, else unchanged.

    A public function that takes a DSN from the caller's code rebinds its argument with this first:
    its frame, and those of the functions it calls, then hold the redacted form only, which is what
    ``--showlocals`` and ``--full-trace`` print."""
    return Dsn(value) if isinstance(value, str) else value


def refusal(exc: BaseException, dsn: str) -> str:
    """The first line of what libpq or psycopg said about ``dsn``, without its password in any form
    (their messages quote the token they refuse, which may be the password)."""
    text = str(exc).strip()
    return redact_text(text.splitlines()[0] if text else type(exc).__name__, dsn, *secrets_of(dsn))


def unparsable_errors() -> tuple[type[Exception], ...]:
    """What parsing a connection string raises when libpq cannot read it: psycopg's ProgrammingError,
    and ValueError (a percent-escape that is not UTF-8)."""
    import psycopg

    return (psycopg.ProgrammingError, ValueError)


def _parse(dsn: str) -> dict[str, Any]:
    """libpq's parameters of ``dsn`` (raises psycopg.ProgrammingError)."""
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(dsn)


def check_dsn(dsn: str, where: str) -> dict[str, str]:
    """Parse a DSN (URL or ``key=value`` form) the way libpq does, or raise ConfigError."""
    try:
        params = _parse(dsn)
    except unparsable_errors() as exc:
        detail = refusal(exc, dsn)
        raise ConfigError(
            where,
            redact(dsn),
            f"not a valid PostgreSQL connection string ({detail})",
            hint="use a URL such as postgresql://user:password@host:5432/dbname "
            "or key=value pairs such as 'host=localhost dbname=postgres user=me'",
        ) from None
    checked = {key: str(value) for key, value in params.items() if value is not None}
    # libpq parses these only when it connects: a typo would be an error of every item, not a usage error
    for port in checked.get("port", "").split(","):
        if port.strip() and not (_ascii_digits(port.strip()) and 1 <= int(port) <= 65535):
            raise ConfigError(
                where,
                redact(dsn),
                f"port {port.strip()!r} is not a port number (1 to 65535)",
                hint="PostgreSQL's is 5432",
            )
    timeout = checked.get("connect_timeout", "").strip()
    if timeout and not _ascii_digits(timeout.lstrip("-")):
        raise ConfigError(
            where, redact(dsn), f"connect_timeout {timeout!r} is not a number of seconds", hint="connect_timeout=10"
        )
    return checked


def _ascii_digits(text: str) -> bool:
    """Digits as libpq reads them (str.isdigit also takes '²' and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def dsn_with_dbname(dsn: str, dbname: str) -> str:
    """The same connection parameters, pointed at another database (key=value form)."""
    from psycopg.conninfo import make_conninfo

    params = _parse(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def passfile_line(password: str) -> str:
    """A line of a libpq password file that gives ``password`` to any host, port, database and user
    (the file is private to one run and named only by that run's DSNs)."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def build_url(params: dict[str, str]) -> str:
    """A ``postgresql://`` URL for the given libpq parameters (for asyncpg, SQLAlchemy, Atlas).

    A host that is a folder (a unix socket) goes into the query string (``?host=/path``), where
    libpq, asyncpg and SQLAlchemy all read it."""
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
        if port:
            netloc += f":{port}"
    elif host:
        params["host"] = host
        if port:
            params["port"] = port
    elif port:
        netloc = f":{port}"
    url = f"postgresql://{userinfo}{netloc}/{quote(dbname, safe='')}"
    if params:
        url += "?" + urlencode(sorted(params.items()), safe="/")
    return url
