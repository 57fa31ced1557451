"""Schema files: reading ``schema.sql`` and extra SQL, fingerprinting them, loading them with errors
that name the file, the line and the failing statement.

A file is split into statements here (quotes, dollar quotes, comments and nested block comments are
respected) and executed statement by statement inside one transaction, so that a broken statement is
reported as ``schema.sql:42: syntax error at or near "TABL"`` instead of a bare psycopg traceback.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_atlas._dsn import scrub
from pytest_atlas._resources import schema_path
from pytest_atlas.errors import AtlasError, SchemaLoadError

if TYPE_CHECKING:  # imported by load_sources: the plugin reads schema files without a database
    import psycopg

__all__ = [
    "SqlSource",
    "Statement",
    "default_sources",
    "fingerprint",
    "load_sources",
    "read_source",
    "split_statements",
]


@dataclass(frozen=True)
class SqlSource:
    """One SQL file's text and where it came from (for messages and the cache key)."""

    path: str
    text: str


@dataclass(frozen=True)
class Statement:
    """One statement of a file: its text and the 1-based line where it starts."""

    line: int
    text: str


def read_source(path: Path | str) -> SqlSource:
    """Read an SQL file as UTF-8, with a clear error when it cannot be read."""
    path = Path(path)
    try:
        return SqlSource(str(path), path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AtlasError(f"SQL file not found: {path}", hint="check --atlas-schema and atlas_extra_sql") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AtlasError(f"cannot read SQL file {path}: {exc}", hint="the file must be readable UTF-8 text") from None


def default_sources(schema: Path | None = None, extra_sql: Iterable[Path] = ()) -> tuple[SqlSource, ...]:
    """The schema file (the shipped Atlas schema unless another is given) followed by extra SQL files."""
    return (read_source(schema or schema_path()), *(read_source(path) for path in extra_sql))


def fingerprint(sources: Sequence[SqlSource]) -> str:
    """A hex digest of the content of every source, in order (the cache key's schema part)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(text: str) -> list[Statement]:
    """Split SQL text into statements at top-level semicolons.

    Semicolons inside single-quoted strings (including ``E''`` escapes), double-quoted identifiers,
    dollar-quoted bodies, ``--`` comments and (nested) ``/* */`` comments do not split. Statements
    that hold only comments or whitespace are dropped.
    """
    statements: list[Statement] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and text.startswith("/*", i):
            i = _skip_block_comment(text, i, n)
        elif ch == "'":
            escapes = i > 0 and text[i - 1] in "eE" and not _is_word_char(text, i - 2)
            i += 1
            while i < n:
                if escapes and text[i] == "\\":
                    i += 2
                elif text[i] == "'":
                    if text.startswith("''", i):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            while end >= 0 and text.startswith('""', end):
                end = text.find('"', end + 2)
            i = n if end < 0 else end + 1
        elif ch == "$" and not _is_word_char(text, i - 1):
            match = _DOLLAR_TAG.match(text, i)
            if match:
                end = text.find(match.group(0), match.end())
                i = n if end < 0 else end + len(match.group(0))
            else:
                i += 1
        elif ch == ";":
            _append(statements, text, start, i)
            i += 1
            start = i
        else:
            i += 1
    _append(statements, text, start, n)
    return statements


def _is_word_char(text: str, pos: int) -> bool:
    return pos >= 0 and (text[pos].isalnum() or text[pos] == "_")


def _append(statements: list[Statement], text: str, start: int, end: int) -> None:
    offset = _skip_trivia(text, start, end)
    if offset >= end:
        return
    statements.append(Statement(text.count("\n", 0, offset) + 1, text[offset:end].rstrip()))


def _skip_block_comment(text: str, pos: int, end: int) -> int:
    """The position just after the (nested) block comment that starts at ``pos``."""
    depth, pos = 1, pos + 2
    while pos < end and depth:
        if text.startswith("/*", pos):
            depth, pos = depth + 1, pos + 2
        elif text.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _skip_trivia(text: str, pos: int, end: int) -> int:
    """The position of the first character after leading whitespace and comments."""
    while pos < end:
        if text[pos].isspace():
            pos += 1
        elif text.startswith("--", pos):
            newline = text.find("\n", pos, end)
            pos = end if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            pos = _skip_block_comment(text, pos, end)
        else:
            break
    return pos


def load_sources(conn: psycopg.Connection[object], sources: Sequence[SqlSource]) -> None:
    """Execute every statement of every source in one transaction on ``conn``.

    Raises :class:`SchemaLoadError` naming the file, the line and the statement that failed; the
    transaction is rolled back, so a failed load leaves nothing behind.
    """
    import psycopg

    with conn.transaction():
        for source in sources:
            for statement in split_statements(source.text):
                try:
                    conn.execute(statement.text.encode("utf-8"))
                except psycopg.Error as exc:
                    raise _schema_error(source, statement, exc) from None


def _schema_error(source: SqlSource, statement: Statement, exc: psycopg.Error) -> SchemaLoadError:
    line = statement.line
    position = exc.diag.statement_position
    if position and position.isdigit():
        # PostgreSQL counts characters from 1 within the statement it was sent.
        line += statement.text.count("\n", 0, int(position) - 1)
    message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
    if exc.sqlstate:
        message = f"{message} (SQLSTATE {exc.sqlstate})"
    if exc.diag.message_detail:
        message += f"; {exc.diag.message_detail}"
    # a statement may set a password (CREATE ROLE ... PASSWORD '...', a subscription's CONNECTION
    # string) and PostgreSQL's message may quote it: neither is shown with it
    return SchemaLoadError(source.path, line, scrub(statement.text), scrub(message))
