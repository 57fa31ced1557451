"""The SQL every gate kind shares: read-only connections and queries, the selection's WHERE clause,
the learning-key column, the score expressions and the scored-sessions CTEs, counts per value.

All SQL is composed with :mod:`psycopg.sql`; user values travel as parameters. Every query runs in a
READ ONLY transaction that is rolled back: nothing is ever written to the database being gated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from pytest_atlas._dsn import Dsn, hide_password
from pytest_atlas.db import connect_target, query_problem
from pytest_atlas.errors import GateError, InvalidArgument, ProvisioningError
from pytest_atlas.gates import _scores
from pytest_atlas.gates._selection import Selection

__all__ = [
    "ALL_KEYS",
    "BareFailed",
    "connection",
    "filters",
    "key_column",
    "read_only",
    "run",
    "scored",
    "snapshot",
    "tally",
]

#: the "learning key" of a series that pools every key
ALL_KEYS = "*"


@contextlib.contextmanager
def connection(source: psycopg.Connection[Any] | str | Dsn, *, timeout: int = 10) -> Iterator[psycopg.Connection[Any]]:
    """Yield a connection: the one given, or a new read-only one to the DSN given (closed afterwards).

    Queries run inside ``conn.transaction()`` (a savepoint when a transaction is open) that is
    READ ONLY and always rolled back, so a failed query never leaves the caller's transaction
    aborted and nothing is ever written or committed.
    """
    source = hide_password(source)  # frames show a DSN redacted
    if isinstance(source, psycopg.Connection):
        yield source
        return
    if not isinstance(source, str | Dsn):
        raise InvalidArgument(
            f"expected a psycopg connection or a DSN string, got {type(source).__name__}",
            hint="pass atlas_db, or a URL such as postgresql://user@host/dbname",
        )
    try:
        conn = connect_target(source, timeout=timeout)
    except ProvisioningError as exc:
        error = GateError(f"cannot connect to the gate database: {exc.problem}", hint=exc.hint)
        # cut as soon as it was opened (transient): read_again opens another; not "unreachable",
        # which later gates of the run would take as their own failure
        error.transient = exc.transient
        error.unreachable = not exc.transient
        raise error from None
    try:
        yield conn
    finally:
        conn.close()


class BareFailed(Exception):
    """A bare statement (see :func:`._scores.series_statement`) cast a text that is no number, or
    a number float8 cannot hold: the caller reads the exact statement instead. Never leaves the
    gates."""


@contextlib.contextmanager
def read_only(
    conn: psycopg.Connection[Any], *, binary: bool = False, bare: bool = False
) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
    """A cursor in a READ ONLY transaction (a savepoint when one is open) that is always rolled back;
    a failed query raises GateError saying what was wrong (no Atlas tables, no read rights).
    ``binary``: results in PostgreSQL's binary format (a bytea as bytes, without hex text).
    ``bare``: a cast of a text that is no number, or of a number out of float8's range, raises
    :class:`BareFailed` (the savepoint rolled back, the snapshot still usable)."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=tuple_row, binary=binary) as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            # the aggregations hash ~100k groups: without room they sort on disk; compiling the
            # expressions (JIT) costs more than it saves on one scan
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
            yield cursor
    except psycopg.errors.UndefinedTable:
        raise GateError(
            "the database has no 'sessions' table: it is not an Atlas database",
            hint="point --atlas-target at the database your Atlas harness writes to",
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise GateError(
            f"the role {user!r} may not read the Atlas tables: {str(exc).strip().splitlines()[0]}",
            hint=f"grant it read access (GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}), or use a role "
            "that can read them",
        ) from None
    except psycopg.Error as exc:
        if bare and isinstance(exc, (psycopg.errors.NumericValueOutOfRange, psycopg.errors.InvalidTextRepresentation)):
            raise BareFailed from None
        raise _query_error(exc, conn) from None


def _query_error(exc: psycopg.Error, conn: psycopg.Connection[Any], *, statement: str | None = None) -> GateError:
    """The GateError of a failed read: what the server said, a hint for its cause, and whether
    reading again may succeed (``transient``); ``statement``: the text of the query that failed."""
    found = query_problem(exc, conn, statement=statement)
    error = GateError(f"gate query failed: {found.problem}", hint=found.hint)
    error.transient = found.transient
    return error


@contextlib.contextmanager
def snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Every query inside reads one snapshot of the database: on a connection that is in no
    transaction and in autocommit mode (the gates' own connections are), a REPEATABLE READ READ
    ONLY transaction, rolled back after (the queries' own transactions become savepoints of it).
    Inside a caller's transaction nothing changes: that transaction's isolation decides."""
    if not conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    except psycopg.Error as exc:
        raise _query_error(exc, conn) from None
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")


def run(
    conn: psycopg.Connection[Any],
    query: sql.Composed,
    params: Mapping[str, Any],
    *,
    planner: Mapping[str, str] | None = None,
    binary: bool = False,
    bare: bool = False,
) -> list[tuple[Any, ...]]:
    """The rows of ``query``, read in a :func:`read_only` transaction (``binary``, ``bare``: see
    there); ``planner`` settings (such as ``enable_seqscan``) hold for this query alone."""
    with read_only(conn, binary=binary, bare=bare) as cursor:
        for name, value in (planner or {}).items():
            cursor.execute("SELECT set_config(%s, %s, true)", (name, value))
        try:
            cursor.execute(query, params)
        except psycopg.errors.UndefinedColumn as exc:
            # an older schema: named by its table, which only the statement's text tells
            raise _query_error(exc, conn, statement=query.as_string(cursor)) from None
        return list(cursor.fetchall())


def filters(selection: Selection, params: dict[str, Any]) -> sql.Composable:
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    if selection.learning_key is not None:
        clauses.append(sql.SQL("(s.metadata ->> 'learning_key') = ANY(%(learning_keys)s)"))
        params["learning_keys"] = list(selection.learning_key)
    if selection.since is not None:
        clauses.append(sql.SQL("s.created_at >= %(since)s"))
        params["since"] = selection.since
    if selection.until is not None:
        clauses.append(sql.SQL("s.created_at < %(until)s"))
        params["until"] = selection.until
    if selection.status is not None:
        clauses.append(sql.SQL("s.status = ANY(%(statuses)s)"))
        params["statuses"] = list(selection.status)
    if selection.review_status is not None:
        clauses.append(sql.SQL("s.review_status = ANY(%(review_statuses)s)"))
        params["review_statuses"] = list(selection.review_status)
    if selection.excludes_quarantined():
        clauses.append(sql.SQL("s.review_status IS DISTINCT FROM 'quarantined'"))
    if selection.metadata is not None:
        clauses.append(sql.SQL("s.metadata @> %(metadata)s"))
        params["metadata"] = Jsonb(dict(selection.metadata))
    if selection.task is not None:
        clauses.append(sql.SQL("s.task = ANY(%(tasks)s)"))
        params["tasks"] = list(selection.task)
    return sql.SQL(" AND ").join(clauses)


def key_column(by_key: bool) -> sql.Composable:
    return sql.SQL("COALESCE(s.metadata ->> 'learning_key', '')") if by_key else sql.Literal(ALL_KEYS)


def scored(selection: Selection, by_key: bool, params: dict[str, Any]) -> sql.Composable:
    """CTEs ``matched`` (every selected session with its score or NULL) and ``scored`` (the scored
    ones, limited to the newest ``last`` per key)."""
    params["number_pattern"] = _scores.NUMBER_PATTERN
    matched = sql.SQL(
        "matched AS (SELECT s.id, s.task, s.created_at, {key} AS lk, {score} AS score, "
        "{uncertainty} AS uncertainty FROM sessions AS s WHERE {where})"
    ).format(
        key=key_column(by_key),
        score=_scores.score(),
        uncertainty=_scores.number("reward_stats", "uncertainty_mean"),
        where=filters(selection, params),
    )
    usable = sql.SQL("score IS NOT NULL")
    if selection.max_uncertainty is not None:
        params["max_uncertainty"] = selection.max_uncertainty
        usable = sql.SQL("score IS NOT NULL AND (uncertainty IS NULL OR uncertainty <= %(max_uncertainty)s)")
    if selection.last is None:
        scored = sql.SQL("scored AS (SELECT * FROM matched WHERE {usable})").format(usable=usable)
    else:
        params["last"] = selection.last
        scored = sql.SQL(
            "scored AS (SELECT * FROM (SELECT m.*, row_number() OVER "
            "(PARTITION BY lk ORDER BY created_at DESC, id DESC) AS recency FROM matched AS m "
            "WHERE {usable}) AS ranked WHERE recency <= %(last)s)"
        ).format(usable=usable)
    return sql.SQL("WITH {matched}, {scored} ").format(matched=matched, scored=scored)


def tally(
    conn: psycopg.Connection[Any], selection: Selection, column: sql.Composable, *, by_key: bool, worst: int, name: str
) -> dict[str, dict[str, Any]]:
    """Per key: ``total``, and per value of ``column``: a count (under ``name``) and up to ``worst``
    session ids, newest first (under ``ids``)."""
    params: dict[str, Any] = {"worst": worst}
    query = sql.SQL(
        "SELECT lk, value, count(*), (array_agg(id ORDER BY id DESC))[1:%(worst)s] FROM "
        "(SELECT {key} AS lk, {column} AS value, s.id FROM sessions AS s WHERE {where}) AS r "
        "GROUP BY lk, value"
    ).format(key=key_column(by_key), column=column, where=filters(selection, params))
    out: dict[str, dict[str, Any]] = {}
    for key, value, count, ids in run(conn, query, params):
        entry = out.setdefault(key, {"total": 0, name: {}, "ids": {}})
        entry["total"] += int(count)
        entry[name][value] = int(count)
        entry["ids"][value] = [int(i) for i in ids]
    return out
