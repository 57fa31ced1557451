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
from collections.abc import Iterable
from typing import Any, TypeVar, overload
from urllib.parse import quote, urlencode

from pytest_atlas.errors import ConfigError, InvalidArgument

# psycopg is imported by the functions that parse a DSN, not here: the plugin imports this module on
# every pytest start, and a run that gives no DSN and uses no database never needs psycopg.

__all__ = [
    "ASYNCPG_PARAMS",
    "Dsn",
    "asyncpg_dsn",
    "build_url",
    "check_dsn",
    "dsn_problem",
    "dsn_with_dbname",
    "hide_dsn_passwords",
    "hide_password",
    "known_secrets",
    "passfile_line",
    "redact",
    "redact_text",
    "refusal",
    "remember_secret",
    "scrub",
    "secret_pattern",
    "secrets_of",
    "unparsable_errors",
]

_T = TypeVar("_T")

# A URL's password is hidden conservatively, whatever the scheme (SQLAlchemy's postgresql+psycopg://, a
# typo): everything after the user name's ":" through the LAST "@" of the text, since a password may
# hold "/", "@", "?" or "#" unencoded and no parser can tell where it ends. In free text (a message),
# through the last "@" of the line. A key=value value is quoted ('...', with \' and \\) or runs to
# unescaped whitespace ("a\ b").
_SCHEME = re.compile(r"\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_LIBPQ_SCHEMES = ("postgresql", "postgres")
_SAFE_USER = re.compile(r"[^/?#@&=\s:'\"\\]*")
_QUERY_KEY = re.compile(r"(?<=[?&])(?P<key>[^=&?]*)=")
#: where a URL of any scheme begins in free text
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://")
#: a query parameter in free text: its key (percent-decoded, libpq decodes keys) and value
_TEXT_QUERY = re.compile(r"[?&](?P<key>[^=&?#\s]*)=(?P<pw>[^&\s'\"]*)")
#: an SQL password literal (CREATE/ALTER ROLE ... PASSWORD '...', E'...' too), as a statement or a
#: server's message quotes it
_SQL_PASSWORD = re.compile(r"(?P<head>\bpassword\s+[Ee]?)(?P<pw>'(?:[^'\\]|''|\\.)*')", re.IGNORECASE)
_KW_PASSWORD = re.compile(
    r"(?P<head>(?<![?&])\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|(?:\\.|[^\s\\])+)", re.IGNORECASE
)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<pw>[^&\s]*)", re.IGNORECASE)
#: what a connection string's redacted form is when libpq cannot parse it and it is not a URL
UNPARSABLE = "(a connection string libpq cannot parse)"
UNPARSABLE_PAIRS = "(a key=value connection string libpq cannot parse)"


def _url_start(text: str) -> int | None:
    """Where a URL's part after ``scheme://`` begins (any scheme), or None when ``text`` is no URL."""
    match = _SCHEME.match(text)
    return match.end() if match else None


def _query_password_spans(text: str, start: int) -> list[tuple[int, int]]:
    """The values of the ``password`` parameters of a URL's query (libpq decodes the keys too)."""
    from urllib.parse import unquote

    spans = []
    for match in _QUERY_KEY.finditer(text, start):
        if unquote(match.group("key"), errors="replace").strip().lower() == "password":
            end = text.find("&", match.end())
            spans.append((match.end(), len(text) if end < 0 else end))
    return spans


def _url_secret_spans(text: str, start: int) -> list[tuple[int, int]]:
    """The spans of a URL (its part after ``://`` begins at ``start``) that may hold a password:
    the userinfo after the user name through the last "@", and the query's password values."""
    spans = _query_password_spans(text, start)
    at = text.rfind("@", start)
    if at >= 0:
        user, colon, _ = text[start:at].partition(":")
        if not _SAFE_USER.fullmatch(user):  # a "/", "@", ... before any ":": all of it may be the password
            spans.append((start, at))
        elif colon:
            spans.append((start + len(user) + 1, at))
    return [(begin, end) for begin, end in spans if end > begin]


def _hide_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each (merged) span replaced by ``***``."""
    out, last = [], 0
    for begin, end in sorted(spans):
        if begin < last:  # overlaps the span before: extend it
            if end > last:
                last = end
            continue
        out += [text[last:begin], "***"]
        last = end
    return "".join(out) + text[last:]


def _redact_url(text: str, start: int) -> str:
    return _hide_spans(text, _url_secret_spans(text, start))


def secrets_of(dsn: str) -> list[str]:
    """Every form the password of ``dsn`` takes in text, parsable or not: as written in the URL's
    userinfo, query or a ``password=`` pair, and decoded (percent-escapes, quotes, backslashes).
    libpq's messages about a connection string quote its tokens, so each of these is redacted."""
    from urllib.parse import unquote

    found: list[str] = []
    start = _url_start(dsn)
    if start is not None:
        for begin, end in _url_secret_spans(dsn, start):
            raw = dsn[begin:end]
            found += [raw, unquote(raw, errors="replace")]
    for match in _QUERY_PASSWORD.finditer(dsn):
        raw = match.group("pw")
        found += [raw, unquote(raw, errors="replace")]
    for match in _KW_PASSWORD.finditer(dsn):
        raw = match.group("pw")
        inner = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == "'" else raw
        found += [raw, re.sub(r"\\(.)", r"\1", inner)]
    if start is None and dsn.strip():
        try:
            _parse(dsn)
        except unparsable_errors():  # no URL, no pairs libpq reads: where a password ends is unknown
            found.append(dsn.strip())
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact_text(text: str, *secrets: str | None) -> str:
    """Remove passwords from free text: the given secrets (longest first), then URL userinfo (of any
    scheme, through the line's last "@") and ``password=`` pairs."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = "".join(_redact_urls_in_line(line) for line in text.splitlines(keepends=True))
    text = _SQL_PASSWORD.sub(r"\g<head>'***'", text)
    text = _KW_PASSWORD.sub(r"\g<head>***", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


def _redact_urls_in_line(line: str) -> str:
    """One line of free text with the userinfo of each URL in it hidden as :class:`Dsn` hides it:
    after the user name's ":" through the line's last "@" (a password may hold "@" unencoded), or
    all of it when the user part holds a character no user name has ("/", "?", "#", "@", a space,
    a quote: then no parser can tell where the user ends and the password begins), when a ":"
    says it may hold a password at all; and the values of query parameters whose key, decoded, is
    ``password``."""
    from urllib.parse import unquote

    spans: list[tuple[int, int]] = []
    for match in _URL_IN_TEXT.finditer(line):
        start = match.end()
        if spans and start < spans[-1][1]:  # inside the userinfo already hidden
            continue
        at = line.rfind("@", start)
        if at < 0:
            continue
        region = line[start:at]
        user, colon, _ = region.partition(":")
        if not colon:
            continue
        if _SAFE_USER.fullmatch(user):
            spans.append((start + len(user) + 1, at))
        else:
            spans.append((start, at))
    if "://" in line:
        for match in _TEXT_QUERY.finditer(line):
            if unquote(match.group("key"), errors="replace").strip().lower() == "password":
                spans.append(match.span("pw"))
    spans = [(begin, end) for begin, end in spans if end > begin and line[begin:end] != "***"]
    return _hide_spans(line, spans) if spans else line


#: where a URL's part after the scheme begins in a message: ``scheme://`` (any scheme), a
#: PostgreSQL scheme with one slash (a URL a path option normalised: ``postgresql:/u:pw@h/db``), or a
#: bare ``//`` that starts a word (a URL whose scheme a parser cut off)
_MESSAGE_URL = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*://"
    r"|(?<![A-Za-z0-9_])postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?:/(?!/)"
    r"|(?<![^\s'\"(\[{=,])//",
    re.IGNORECASE,
)
#: a query parameter of a URL: its key (libpq decodes it) and its value, up to the next "&"
_MESSAGE_QUERY = re.compile(r"[?&](?P<key>[^=&?#]*)=(?P<pw>[^&]*)")
#: a ``password=`` (or ``sslpassword=``) pair of a key=value connection string: a value in libpq's
#: quotes ('...', with \' and \\; a run of backslashes before a quote escapes it too, as a value
#: quoted with ``!r`` doubles them) or one that runs to unescaped whitespace
_MESSAGE_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.\-?&%])(?:ssl)?password\s*=\s*(?P<pw>'(?:[^'\\\n]|\\+[^\n])*'|(?:\\[^\n]|[^\s\\])+)",
    re.IGNORECASE,
)
#: the keys whose values are secrets
_SECRET_KEYS = ("password", "sslpassword")


def hide_dsn_passwords(text: str) -> str:
    """``text`` (a message the plugin prints) with the password of every connection string in it
    replaced by ``***``, whether this process knows the password or not; nothing else changed (the
    user name, the host, the rest of the line stay).

    A URL (``postgresql://user:PASSWORD@host/db``, any scheme) is read as one word: from its
    scheme to the first whitespace or quote, or, when a quote opens it (a value quoted with
    ``!r``), to the same quote. Its userinfo ends at the last "@" of that word before its query
    (the word's first "?" with a "=" after it), so an "@" further on in the line (an address, a
    second URL) is never taken for it, while a password with an unencoded "@", "/", "?" or "#" is
    hidden whole. When the user part itself holds "/", "?" or "#" (no parser can tell where the
    user ends) the whole userinfo is hidden. The values of the query's ``password`` and
    ``sslpassword`` parameters (under a percent-encoded key too) are hidden, and so is the value of
    a ``password=`` / ``sslpassword=`` pair of a key=value string, quoted or not (an unquoted value
    runs to whitespace, or to the quote that closes a value the message opened with a quote).
    Punctuation glued to the end of an unquoted password (``password=x),``) is hidden with it: no
    parser can tell it from the password's last characters."""
    spans: list[tuple[int, int]] = []
    for match in _MESSAGE_URL.finditer(text):
        spans += _message_url_spans(text, match.start(), match.end())
    for match in _MESSAGE_PAIR.finditer(text):
        begin, end = match.span("pw")
        if text[begin] != "'":
            before = text[: match.start()]
            for quote_char in "'\"":  # a quote the message opened before the pair closes it
                if before.count(quote_char) % 2 and quote_char in text[begin:end]:
                    end = text.index(quote_char, begin, end)
        spans.append((begin, end))
    spans = [(begin, end) for begin, end in spans if end > begin and text[begin:end] != "***"]
    return _hide_spans(text, spans) if spans else text


def _message_url_spans(text: str, scheme_start: int, start: int) -> list[tuple[int, int]]:
    """The spans of the URL whose scheme begins at ``scheme_start`` (its part after the slashes at
    ``start``) that hold a password: see :func:`hide_dsn_passwords`."""
    from urllib.parse import unquote

    quote_char = text[scheme_start - 1] if scheme_start > 0 and text[scheme_start - 1] in "'\"" else ""
    # quoted: to the same quote (a space may be part of the password); else to whitespace or a quote
    stop = re.compile(rf"[{quote_char}\n]") if quote_char else re.compile(r"[\s'\"]")
    found = stop.search(text, start)
    word = text[start : found.start() if found else len(text)]
    query = re.search(r"\?[^=]*=", word)
    head = word[: query.start()] if query else word
    spans = []
    at = head.rfind("@")
    if at >= 0:
        user, colon, _ = head[:at].partition(":")
        if colon and re.search(r"[/?#]", user):
            spans.append((start, start + at))
        elif colon:
            spans.append((start + len(user) + 1, start + at))
    for match in _MESSAGE_QUERY.finditer(word):
        if unquote(match.group("key"), errors="replace").strip().lower() in _SECRET_KEYS:
            spans.append((start + match.start("pw"), start + match.end("pw")))
    return spans


#: the shortest secret :func:`scrub` replaces wherever it stands in text: a shorter one would blank
#: out ordinary words (its URL and ``password=`` forms are redacted all the same)
SHORTEST_SCRUBBED = 4
#: the passwords of this process: of every :class:`Dsn` made (the settings' DSNs, a DSN given to the
#: public API) and those :func:`remember_secret` was given ($PGPASSWORD, a password made for a run)
_SECRETS: set[str] = set()
_DSN_TEXTS: set[str] = set()
_DSN_TEXTS_READ: set[str] = set()


def remember_secret(*secrets: str | None) -> None:
    """Remember passwords this process knows, so that :func:`scrub` removes them from any text
    (reports of failed tests, their captured output, written report files)."""
    from urllib.parse import quote

    for secret in secrets:
        if secret and len(secret) >= SHORTEST_SCRUBBED:
            _SECRETS.update({secret, quote(secret, safe="")})


def known_secrets() -> tuple[str, ...]:
    """Every secret this process knows (in each form it takes in text), longest first."""
    for text in _DSN_TEXTS - _DSN_TEXTS_READ:
        _DSN_TEXTS_READ.add(text)
        try:
            remember_secret(*secrets_of(text), Dsn(text).password)
        except unparsable_errors():
            remember_secret(*secrets_of(text))
    return tuple(sorted(_SECRETS, key=len, reverse=True))


_SCRUB_PATTERN: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)


def _spellings(secret: str) -> str:
    """A regular expression of every percent-encoded spelling of ``secret``: each character as itself
    or as the %XX escapes of its UTF-8 bytes, each hex digit in either case (``/``, ``%2F``, ``%2f``)."""
    parts = []
    for char in secret:
        try:  # (a byte $PGPASSWORD held that is no UTF-8 is that byte again)
            data = char.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate: no escape spells it
            parts.append(re.escape(char))
            continue
        hexes = ("".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}") for byte in data)
        parts.append(f"(?:{re.escape(char)}|{''.join('%' + pair for pair in hexes)})")
    return "".join(parts)


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """The pattern that finds each of ``secrets`` (longest first) in any percent-encoded spelling,
    where it stands as a word of its own; None when there is none."""
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not ordered:
        return None
    words = "|".join(_spellings(secret) for secret in ordered)
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{words})(?![A-Za-z0-9_])")


def scrub(text: str, *, urls: bool = True) -> str:
    """``text`` without any secret this process knows (:func:`known_secrets`), in any percent-encoded
    spelling (:func:`secret_pattern`), where it stands as a word of its own (not inside a longer
    word: a password ``postgres`` leaves ``postgresql://`` alone) and, with ``urls``, without the
    passwords of URLs and ``password=`` pairs in it (:func:`redact_text`: for the plugin's own
    messages; a test's own text is only cleared of the known secrets, its URLs and addresses left
    as written)."""
    global _SCRUB_PATTERN
    secrets = known_secrets()
    if secrets != _SCRUB_PATTERN[0]:
        _SCRUB_PATTERN = (secrets, secret_pattern(secrets))
    pattern = _SCRUB_PATTERN[1]
    known = pattern.sub("***", text) if pattern is not None else text
    return redact_text(known) if urls else known


def redact(dsn: str | Dsn) -> str:
    """The DSN as it may be printed: with the password replaced by ``***``."""
    return dsn.redacted if isinstance(dsn, Dsn) else Dsn(dsn).redacted


def dsn_problem(dsn: str) -> tuple[str, str] | None:
    """What makes a URL unusable before libpq reads it, as (problem, how to fix), naming nothing of
    the password: a scheme that is not libpq's (SQLAlchemy's ``postgresql+psycopg://``, a typo), or
    an "@" that is not the one before the host (an unencoded "@" or "/" in the password, which libpq
    would read as part of the host or the database name, and echo). None for anything else."""
    match = _SCHEME.match(dsn)
    if match is None:
        return None
    scheme = match.group("scheme")
    if scheme not in _LIBPQ_SCHEMES:
        base, plus, driver = scheme.partition("+")
        if plus and base.lower() in _LIBPQ_SCHEMES:
            return (
                f"{scheme}:// is SQLAlchemy's form of a URL (a dialect and a driver), not libpq's",
                f"pass postgresql://... (without '+{driver}'); add the driver in your own code where "
                "SQLAlchemy needs it",
            )
        if scheme.lower() in _LIBPQ_SCHEMES:
            return f"{scheme}:// is not a scheme libpq knows (it is case-sensitive)", f"write {scheme.lower()}://"
        return (
            f"{scheme}:// is not a PostgreSQL URL scheme",
            "start the URL with postgresql:// (or postgres://), or give key=value pairs such as "
            "'host=db dbname=atlas user=ci'",
        )
    start = match.end()
    in_query_password = _query_password_spans(dsn, start)
    ats = [
        index
        for index in range(start, len(dsn))
        if dsn[index] == "@" and not any(begin <= index < end for begin, end in in_query_password)
    ]
    slash = dsn.find("/", start)
    first = dsn.find("@", start)
    userinfo_end = first if first >= 0 and (slash < 0 or first < slash) else None  # libpq's reading
    if any(index != userinfo_end for index in ats):
        return (
            "the URL has an '@' that libpq does not read as the end of the user name and password "
            "(an unencoded '@' or '/' in the password, or an '@' after the host)",
            "percent-encode them in the password and the rest of the URL: '@' as %40, '/' as %2F "
            "(urllib.parse.quote(password, safe=''))",
        )
    return None


class Dsn:
    """A connection string from the settings whose secret does not print.

    ``str()``, ``repr()`` and f-strings give the redacted form (``postgresql://app:***@db/x``);
    :meth:`reveal` gives the full text, for the one place that connects. Two Dsn objects are equal
    when their full texts are.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text
        _DSN_TEXTS.add(text)  # its password is one :func:`scrub` removes (read when first needed)

    def reveal(self) -> str:
        """The full connection string, password included: pass it to a driver, never print it."""
        return self._text

    @property
    def redacted(self) -> str:
        start = _url_start(self._text)
        if start is not None:  # any scheme: what libpq takes for the password is always in what is hidden
            return redact_text(_redact_url(self._text, start))
        try:
            password = self.password
        except unparsable_errors():  # of pairs libpq cannot read (or text that is no DSN), show none
            return UNPARSABLE_PAIRS if "=" in self._text else UNPARSABLE
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
    line = redact_text(text.splitlines()[0] if text else type(exc).__name__, dsn, *secrets_of(dsn))
    # a token libpq quotes is shown only when the redacted DSN shows it too (as a whole part of it):
    # one from a password libpq read in pieces ("a b" unquoted, an unencoded "/") would leak
    shown = redact(dsn)
    if shown in (UNPARSABLE, UNPARSABLE_PAIRS):
        shown = ""

    def token(match: re.Match[str]) -> str:
        word = match.group(1)
        edge = r"\s?&=/:@,\[\]()'\""
        if word in ("***", "=") or (word and re.search(rf"(?<![^{edge}]){re.escape(word)}(?![^{edge}])", shown)):
            return match.group(0)
        return '"***"'

    return re.sub(r'"([^"]*)"', token, line)


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
    """Parse a DSN (URL or ``key=value`` form) the way libpq does, or raise ConfigError (which shows
    the DSN redacted only)."""
    problem = dsn_problem(dsn)
    if problem is not None:
        raise ConfigError(where, redact(dsn), problem[0], hint=problem[1])
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
    secrets = (checked.get("password"), *secrets_of(dsn))
    # libpq parses these only when it connects: a typo would be an error of every item, not a usage error
    for port in checked.get("port", "").split(","):
        if port.strip() and not (_ascii_digits(port.strip()) and 1 <= int(port) <= 65535):
            raise ConfigError(
                where,
                redact(dsn),
                redact_text(f"port {port.strip()!r} is not a port number (1 to 65535)", *secrets),
                hint="PostgreSQL's is 5432",
            )
    timeout = checked.get("connect_timeout", "").strip()
    if timeout and not _ascii_digits(timeout.lstrip("-")):
        raise ConfigError(
            where,
            redact(dsn),
            redact_text(f"connect_timeout {timeout!r} is not a number of seconds", *secrets),
            hint="connect_timeout=10",
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

    A host that is a folder (a unix socket), or a list of hosts, goes into the query string
    (``?host=/path``, ``?host=a,b&port=5432,5433``), where libpq, asyncpg and SQLAlchemy all read
    it. Every part is percent-encoded (a space as ``%20``: libpq reads a ``+`` in a query as a ``+``)."""
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
    if host and not host.startswith("/") and "," not in host:
        netloc = f"[{host}]" if ":" in host else quote(host, safe="")
        if port:
            netloc += f":{quote(port, safe=',')}"
    elif host:
        params["host"] = host
        if port:
            params["port"] = port
    elif port:
        netloc = f":{quote(port, safe=',')}"
    url = f"postgresql://{userinfo}{netloc}/{quote(dbname, safe='')}"
    if params:
        url += "?" + urlencode(sorted(params.items()), safe="/,", quote_via=quote)
    return url


#: the libpq parameters asyncpg (0.29 and later) reads from a URL, and reads as libpq does
ASYNCPG_PARAMS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        # not read by asyncpg: it sends them to the server at start-up, as libpq does
        "application_name",
        "options",
    }
)
#: libpq parameters that only say how long libpq waits: asyncpg has its own wait (60 s), and would
#: send them to the server as settings it does not know
_DROPPED_FOR_ASYNCPG = frozenset({"connect_timeout"})
#: how to do without a parameter asyncpg cannot take
_WITHOUT = {
    "service": "write the service's parameters (host, port, dbname, user: its section of pg_service.conf) "
    "into the DSN instead of service=",
    "servicefile": "write the service's parameters (host, port, dbname, user) into the DSN instead",
    "hostaddr": "give the address as host= instead of hostaddr=",
    "client_encoding": "remove client_encoding= (asyncpg always talks UTF8)",
}


def asyncpg_dsn(dsn: Dsn, where: str) -> Dsn:
    """``dsn`` as asyncpg (the driver of Atlas's storage) reads it: libpq's ``key=value`` pairs,
    which asyncpg cannot read, become the equivalent ``postgresql://`` URL (:func:`build_url`: a
    socket folder in ``?host=``, every part percent-encoded); a URL stays as it is. Both lose
    ``connect_timeout`` (asyncpg waits 60 s, and would send it to the server as a setting, which the
    server refuses: atlas_dsn carries it when --atlas-dsn does). Raises
    :class:`~pytest_atlas.errors.InvalidArgument`, naming ``where``, for pairs libpq cannot parse or
    with a parameter asyncpg cannot take (``service=``, ``hostaddr=``, ...). Neither the message nor
    this frame (``--showlocals``) holds the password: the parameters are read where they are used,
    never kept in a variable."""
    if not dsn.reveal().strip():
        return dsn
    detail = _unparsable(dsn)
    if _url_start(dsn.reveal()) is not None:
        if detail is not None or not _DROPPED_FOR_ASYNCPG & set(dsn.params()):
            return dsn  # (one libpq cannot read is asyncpg's to read, as before)
    elif detail is not None:
        raise InvalidArgument(
            f"{where}: the DSN is not a connection string libpq can parse ({detail})",
            hint="use a URL such as postgresql://user:password@host:5432/dbname or key=value pairs "
            "such as 'host=/run/postgresql dbname=atlas user=me'",
        )
    elif unknown := sorted(key for key in dsn.params() if key not in ASYNCPG_PARAMS | _DROPPED_FOR_ASYNCPG):
        names = ", ".join(f"{key}=" for key in unknown)
        raise InvalidArgument(
            f"{where}: the DSN's {names} cannot be handed to asyncpg, which Atlas's storage connects with "
            f"(of libpq's parameters it reads {', '.join(sorted(ASYNCPG_PARAMS))}; connect_timeout is left out)",
            hint="; ".join(_WITHOUT.get(key, f"remove {key}=") for key in unknown),
        )
    return Dsn(build_url({key: value for key, value in dsn.params().items() if key not in _DROPPED_FOR_ASYNCPG}))


def _unparsable(dsn: Dsn) -> str | None:
    """Why libpq cannot parse ``dsn`` (without its password), or None when it can."""
    try:
        _parse(dsn.reveal())
    except unparsable_errors() as exc:
        return refusal(exc, dsn.reveal())
    return None
