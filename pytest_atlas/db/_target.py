"""The checked database (``--atlas-target``): every connection to it is opened here, read-only.

Contract checks and gates only ever read the database they check. That is enforced at the server,
not only by our SQL: the connection starts with ``default_transaction_read_only=on`` (so even a
statement that tried to write would fail), and the queries themselves run in READ ONLY
transactions. The client encoding is UTF8, so a ``SQL_ASCII`` database hands out text, not bytes.

This module is the one place that turns a target DSN into a connection or into printable text
(:func:`connect_target`, :func:`describe_target`); keep it that way, so that the DSN's type can
change in one place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas._dsn import Dsn, dsn_problem, hide_password, redact, refusal, unparsable_errors
from pytest_atlas.db._connect import TARGET_SETTING, Backoff, connect_clearly, is_transient, one_line, unset_pgpassword
from pytest_atlas.errors import AtlasError, ProvisioningError

__all__ = [
    "READ_AGAIN_FOR",
    "READ_ONLY_OPTION",
    "QueryProblem",
    "connect_target",
    "describe_target",
    "query_problem",
    "read_again",
]

#: the server setting every target connection starts with
READ_ONLY_OPTION = "-c default_transaction_read_only=on"
#: how long a read of the checked database that the server cut is tried again (seconds): a restart
#: or a terminated backend passes within it; a fault that lasts longer is reported
READ_AGAIN_FOR = 10.0

_T = TypeVar("_T")


def connect_target(dsn: str | Dsn, *, timeout: int = 10) -> psycopg.Connection[Any]:
    """An autocommit connection to the checked database that cannot write (read-only at the server).

    ``dsn`` is a connection string, or the :class:`~pytest_atlas._dsn.Dsn` of the settings (revealed
    here, and only here).

    Raises :class:`~pytest_atlas.errors.ProvisioningError` with a clear message when the database
    cannot be reached (password redacted), marked ``transient`` when the server cut the connection
    as soon as it was opened (a restart, ``pg_terminate_backend``): :func:`read_again` opens another.
    """
    dsn = hide_password(dsn)
    shown = describe_target(dsn)
    problem = dsn_problem(dsn.reveal())
    if problem is not None:  # libpq would read it otherwise (a scheme it does not know, an unencoded "@")
        raise ProvisioningError(f"{shown} is not a valid PostgreSQL connection string: {problem[0]}", hint=problem[1])
    try:
        params = conninfo_to_dict(dsn.reveal())
    except unparsable_errors() as exc:
        raise ProvisioningError(
            f"{shown} is not a valid PostgreSQL connection string ({refusal(exc, dsn.reveal())})",
            hint="use a URL such as postgresql://user:password@host:5432/dbname, or key=value pairs such as "
            "'host=db dbname=atlas user=ci'",
        ) from None
    params.setdefault("connect_timeout", timeout)
    params["client_encoding"] = "UTF8"
    stashed = unset_pgpassword()
    if stashed is not None and not params.get("password") and not params.get("passfile"):
        # the test server's start unset $PGPASSWORD; libpq would have sent it to the target. A DSN
        # naming a passfile (every DSN this run hands out does) logs in with that file instead.
        params["password"] = stashed
    plain = dict(params)
    params["options"] = f"{params.get('options') or ''} {READ_ONLY_OPTION}".strip()
    try:
        conn = connect_clearly(make_conninfo("", **params), setting=TARGET_SETTING, shown=shown, autocommit=True)
    except ProvisioningError as exc:
        if "startup parameter" not in exc.problem.lower():
            raise
        # a connection pooler that refuses startup options: set the same thing once connected
        conn = connect_clearly(make_conninfo("", **plain), setting=TARGET_SETTING, shown=shown, autocommit=True)
    del params, plain, stashed  # they hold the password: not in this frame's locals if a query below fails
    try:
        row = conn.execute("SHOW default_transaction_read_only").fetchone()
        if not row or row[0] != "on":  # a pooler that refused the option, or a server that ignored it
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    except psycopg.Error as exc:  # the server cut the new connection (a restart, pg_terminate_backend)
        found = query_problem(exc, conn)
        conn.close()
        what = "was cut as soon as it was opened" if found.transient else "failed its first statement"
        error = ProvisioningError(f"{shown}: the connection {what}: {found.problem}", hint=found.hint)
        error.transient = found.transient  # a cut that may pass: read_again opens another
        raise error from None
    return conn


def describe_target(dsn: str | Dsn) -> str:
    """The target DSN as it may be printed (password replaced by ``***``)."""
    return dsn.redacted if isinstance(dsn, Dsn) else redact(dsn)


@dataclass(frozen=True)
class QueryProblem:
    """What a failed read of the checked database means: the ``problem`` (the server's first line),
    a ``hint`` that matches the cause, and whether reading again may succeed (``transient``)."""

    problem: str
    hint: str
    transient: bool


#: the server's words for a qualified column the table lacks: ``column s.reward_stats does not exist``
_MISSING_COLUMN = re.compile(r'column "?([A-Za-z_][\w$]*)"?\."?([A-Za-z_][\w$]*)"? does not exist')


def _table_of(alias: str, statement: str) -> str | None:
    """The table the statement names ``alias`` for (``FROM sessions AS s``, ``JOIN plans p``); a
    table the statement names without an alias is its own."""
    named = re.finditer(r'\b(?:FROM|JOIN)\s+"?(\w+)"?(?:\s+(?:AS\s+)?"?(\w+)"?)?', statement, flags=re.IGNORECASE)
    for found in named:
        table, name = found.group(1), found.group(2)
        if alias.lower() in (table.lower(), (name or "").lower()):
            return table
    return None


def _missing_column(problem: str, statement: str | None) -> tuple[str, str | None, str | None]:
    """``problem`` with a query's alias replaced by the table it stands for (``column
    sessions.reward_stats does not exist``), and that table and column when they are known."""
    found = _MISSING_COLUMN.search(problem)
    if found is None:
        return problem, None, None
    alias, column = found.groups()
    table = _table_of(alias, statement) if statement else None
    if table is None:
        return problem, None, column
    named = f"column {table}.{column} does not exist"
    return problem[: found.start()] + named + problem[found.end() :], table, column


def query_problem(
    exc: psycopg.Error, conn: psycopg.Connection[Any] | None = None, *, statement: str | None = None
) -> QueryProblem:
    """The meaning of ``exc``, raised by a query on a connection to the checked database (``conn``,
    if given, tells a connection the server cut from a refused statement). ``statement``, the text
    of the query that failed, lets a missing column be named by its table rather than by the
    query's alias for it."""
    problem = one_line(exc)
    state = getattr(exc, "sqlstate", None)
    if state == "57014":  # query_canceled: a statement timeout (or a cancel request): again, it would time out again
        return QueryProblem(
            problem,
            "the read took longer than the server's statement_timeout allows: raise it for this role "
            "(ALTER ROLE ... SET statement_timeout = '10min', or options=-c statement_timeout=10min in "
            f"{TARGET_SETTING}), or read fewer rows (a gate's since, last or learning_key; --atlas-contract-since "
            "or --atlas-contract-limit)",
            transient=False,
        )
    if (conn is not None and conn.broken) or is_transient(exc):
        return QueryProblem(
            problem,
            "the server cut the connection or refused the read for a while (a restart, an administrator, "
            "a conflict): run again once it is back; if it keeps happening, check the server's log",
            transient=True,
        )
    if state == "42703":  # undefined_column
        problem, table, column = _missing_column(problem, statement)
        lacks = f"the {table} table has no column {column}, so " if table and column else ""
        return QueryProblem(
            problem,
            f"{lacks}the database has an older (or another) Atlas schema than the one this check reads: upgrade "
            "it with the schema of the Atlas version your harness runs (pytest-atlas ships Atlas's as schema.sql, "
            "whose ALTER TABLE ... ADD COLUMN IF NOT EXISTS statements add the columns newer versions read), or "
            "point --atlas-target at the database your Atlas harness writes to",
            transient=False,
        )
    return QueryProblem(
        problem,
        "check that the database has Atlas's schema (pytest-atlas ships it as schema.sql); the query is read-only",
        transient=False,
    )


def read_again(
    source: str | Dsn | psycopg.Connection[Any], read: Callable[[], _T], *, cut: Callable[[_T], bool] | None = None
) -> _T:
    """``read()`` of the checked database ``source``, called again while the server cut it (for
    :data:`READ_AGAIN_FOR` seconds, with :class:`~pytest_atlas.db.Backoff`'s delays): while it raises
    an :class:`~pytest_atlas.errors.AtlasError` marked ``transient`` (a :class:`QueryProblem` that
    is), or returns a result for which ``cut`` is true. Then the last error is raised, or the last
    result returned (it reports its own problem).

    Only when ``source`` is a DSN, whose every ``read`` opens a connection of its own: a connection
    the server cut stays broken, and a caller's connection is the caller's to replace, so on one
    ``read`` runs once."""
    if isinstance(source, psycopg.Connection):
        return read()
    backoff = Backoff(READ_AGAIN_FOR)
    while True:
        try:
            result = read()
        except AtlasError as exc:
            delay = backoff.next_delay() if getattr(exc, "transient", False) else None
            if delay is None:
                raise
        else:
            delay = backoff.next_delay() if cut is not None and cut(result) else None
            if delay is None:
                return result
        time.sleep(delay)
