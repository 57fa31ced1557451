"""Fast inserts: whole session graphs and plain rows, by COPY, in a fixed number of round trips.

Inserting N graphs costs one ``SELECT nextval(...)`` for the N session ids and one COPY per table
(sessions, plans, step_results, step_attempts, guidance_notes, trajectory_events): seven round
trips whatever N is. Everything runs under a savepoint, so a failing batch leaves nothing behind
and the caller's transaction usable; nothing is committed (commit yourself when you need to).
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.pq import TransactionStatus

from pytest_atlas._arguments import invalid
from pytest_atlas.domain import CATALOGUE, TABLE_COLUMNS, SessionGraph
from pytest_atlas.errors import InsertError, InvalidArgument

__all__ = ["bulk", "check_connection", "insert_graph", "insert_graphs", "insert_rows", "insert_stream"]

_COPY_LINE = re.compile(r"COPY \w+, line (\d+)")


def _json(value: Any, table: str, column: str, row: int) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InsertError(
            table,
            f"column {column} holds NaN or Infinity, which jsonb cannot store",
            row=row,
            hint="replace non-finite numbers (Atlas's own write would fail the same way)",
        ) from None
    except TypeError as exc:
        raise InsertError(
            table,
            f"column {column} is not JSON-serialisable ({exc})",
            row=row,
            hint="convert the value to JSON types first (Atlas stores str() of other objects)",
        ) from None


def _row_maker(table: str, columns: Sequence[str]) -> Any:
    """A function turning a row dict into the tuple COPY writes (JSON serialised, defaults applied)."""
    entry = CATALOGUE.get(table)
    jsonb = entry.json_columns if entry else frozenset()
    defaults = entry.defaults if entry else {}
    now_columns = entry.now if entry else frozenset()
    spec = [(column, column in jsonb, defaults.get(column), column in now_columns) for column in columns]

    def make(values: Mapping[str, Any], origin: int, now: datetime) -> tuple[Any, ...]:
        row: list[Any] = []
        for column, is_json, default, is_now in spec:
            value = values.get(column)
            if value is None:
                value = default if default is not None else (now if is_now else None)
            row.append(_json(value, table, column, origin) if is_json and value is not None else value)
        return tuple(row)

    return make


class _Batch:
    """Rows per table, ready for COPY, with the caller's row number of each."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.origin: dict[str, list[int]] = {}
        self._makers: dict[tuple[str, tuple[str, ...]], Any] = {}

    def add(self, table: str, columns: Sequence[str], values: Mapping[str, Any], origin: int, now: datetime) -> None:
        key = (table, tuple(columns))
        maker = self._makers.get(key)
        if maker is None:
            maker = self._makers[key] = _row_maker(table, columns)
        self.rows.setdefault(table, []).append(maker(values, origin, now))
        self.origin.setdefault(table, []).append(origin)


def check_connection(conn: Any, function: str) -> psycopg.Connection[Any]:
    if not isinstance(conn, psycopg.Connection):
        raise InvalidArgument(
            f"{function}(): invalid connection={conn!r}: expected a psycopg (3) Connection",
            hint="pass the atlas_db or atlas_tx fixture, or psycopg.connect(atlas_dsn)",
        )
    if conn.closed:
        raise InvalidArgument(f"{function}(): the connection is closed", hint="pass an open connection")
    if conn.info.transaction_status == TransactionStatus.INERROR:
        raise InvalidArgument(
            f"{function}(): the connection's transaction has already failed",
            hint="call conn.rollback() (or leave the failing rollback(conn) block) before inserting",
        )
    return conn


def _statement(table: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


def _write(copy: Any, row: tuple[Any, ...], table: str, origin: int) -> None:
    """One COPY row; values psycopg refuses before sending (NUL in text) are reported with their row."""
    try:
        copy.write_row(row)
    except psycopg.DataError as exc:
        raise InsertError(table, str(exc).strip(), row=origin) from exc


def _insert_error(exc: psycopg.Error, table: str, origins: Sequence[int]) -> InsertError:
    message = (exc.diag.message_primary or str(exc)).strip()
    found = _COPY_LINE.search(exc.diag.context or "")
    line = int(found.group(1)) - 1 if found else -1
    return InsertError(table, message, row=origins[line] if 0 <= line < len(origins) else None)


def _copy(conn: psycopg.Connection[Any], batch: _Batch, table: str, columns: Sequence[str]) -> None:
    rows = batch.rows.get(table)
    if not rows:
        return
    try:
        with conn.cursor() as cursor, cursor.copy(_statement(table, columns), writer=QueuedLibpqWriter(cursor)) as copy:
            for row, origin in zip(rows, batch.origin[table], strict=True):
                _write(copy, row, table, origin)
    except psycopg.Error as exc:
        raise _insert_error(exc, table, batch.origin[table]) from exc


def _copy_dicts(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Mapping[str, Any], int]],
    now: datetime,
) -> None:
    if not rows:
        return
    make = _row_maker(table, columns)
    try:
        with conn.cursor() as cursor, cursor.copy(_statement(table, columns), writer=QueuedLibpqWriter(cursor)) as copy:
            for values, origin in rows:
                _write(copy, make(values, origin, now), table, origin)
    except psycopg.Error as exc:
        raise _insert_error(exc, table, [origin for _, origin in rows]) from exc


@contextmanager
def bulk() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while thousands of rows are built and sent.

    Session graphs are trees of dicts and lists (no reference cycles), so nothing is left for the
    collector to find; without the pause its full passes over the growing heap cost about a quarter
    of a large batch. The previous state is restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run(conn: psycopg.Connection[Any], work: Any) -> Any:
    # Inside a transaction conn.transaction() is a savepoint. On an idle non-autocommit connection it
    # would BEGIN and COMMIT, committing for the caller; the first statement of `work` opens the
    # implicit transaction instead, so start it with a harmless query and then take the savepoint.
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        conn.execute("SELECT 1")
    with conn.transaction():
        return work()


_CHILD_TABLES = ("plans", "step_results", "step_attempts", "guidance_notes", "trajectory_events")


def insert_stream(conn: psycopg.Connection[Any], count: int, graphs: Iterator[Any], function: str) -> list[int]:
    """Insert up to ``count`` graphs taken from ``graphs`` as they come (the factories build them lazily).

    The sessions COPY streams while the graphs are being built, so the server parses rows while
    Python makes the next ones; the child tables follow, one COPY each.
    """
    if count <= 0:
        return []
    # the ids first: on a non-autocommit connection this statement opens the transaction, so the
    # savepoint below needs no extra round trip (sequences are not transactional anyway)
    ids_query = sql.SQL("SELECT nextval(pg_get_serial_sequence({}, 'id')) FROM generate_series(1, %s)").format(
        sql.Literal("sessions")
    )
    ids = [row[0] for row in conn.execute(ids_query, (count,)).fetchall()]

    def work() -> list[int]:
        now = datetime.now(timezone.utc)
        # child rows are kept as dicts and serialised while their COPY streams (the server is busy
        # parsing then, and Python would otherwise wait)
        children: dict[str, list[tuple[Mapping[str, Any], int]]] = {table: [] for table in _CHILD_TABLES}
        session_columns = ("id", *TABLE_COLUMNS["sessions"])
        make_session = _row_maker("sessions", session_columns)
        origins: list[int] = []
        used: list[int] = []
        try:
            with (
                conn.cursor() as cursor,
                cursor.copy(_statement("sessions", session_columns), writer=QueuedLibpqWriter(cursor)) as copy,
            ):
                for position, (session_id, graph) in enumerate(zip(ids, graphs, strict=False)):
                    if not isinstance(graph, SessionGraph):
                        raise InvalidArgument(
                            f"{function}(): invalid graphs[{position}]={graph!r}: expected a SessionGraph",
                            hint="build graphs with pytest_atlas.factories.session()/sessions() or draw them "
                            "from session_graphs()",
                        )
                    _write(copy, make_session({**graph.session, "id": session_id}, position, now), "sessions", position)
                    origins.append(position)
                    used.append(session_id)
                    for table in _CHILD_TABLES:
                        rows = graph.plan_rows() if table == "plans" else getattr(graph, table)
                        pending = children[table]
                        for row in rows:
                            pending.append(({**row, "session_id": session_id}, position))
        except psycopg.Error as exc:
            raise _insert_error(exc, "sessions", origins) from exc
        for table in _CHILD_TABLES:
            _copy_dicts(conn, table, _CHILD_COLUMNS[table], children[table], now)
        return used

    with bulk():
        result: list[int] = _run(conn, work)
    return result


_CHILD_COLUMNS: dict[str, tuple[str, ...]] = {table: ("session_id", *TABLE_COLUMNS[table]) for table in _CHILD_TABLES}


def insert_graphs(conn: psycopg.Connection[Any], graphs: Iterable[SessionGraph]) -> list[int]:
    """Insert session graphs with COPY and return their new ``sessions.id`` values, in order.

    Each graph's rows get its session's id; trajectory events get serial ids in the order given
    (so ``ORDER BY id`` is emission order). Works on ``atlas_db``, ``atlas_tx``, inside
    ``rollback(conn)`` and on autocommit connections (then the batch is its own transaction).
    Nothing is committed on a non-autocommit connection: commit when other connections must see the rows.
    Seven round trips whatever the number of graphs. Raises
    :class:`~pytest_atlas.errors.InsertError` naming the table and graph when a row is refused.
    """
    conn = check_connection(conn, "insert_graphs")
    items = list(graphs)
    for position, graph in enumerate(items):
        if not isinstance(graph, SessionGraph):
            raise InvalidArgument(
                f"insert_graphs(): invalid graphs[{position}]={graph!r}: expected a SessionGraph",
                hint="build graphs with pytest_atlas.factories.session()/sessions() or draw them from session_graphs()",
            )
    return insert_stream(conn, len(items), iter(items), "insert_graphs")


def insert_graph(conn: psycopg.Connection[Any], graph: SessionGraph) -> int:
    """Insert one session graph (see :func:`insert_graphs`) and return its ``sessions.id``."""
    return insert_graphs(conn, [graph])[0]


def insert_rows(conn: psycopg.Connection[Any], table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """COPY plain rows (dicts keyed by column) into an Atlas table; returns the number of rows.

    JSONB columns take parsed JSON (dicts, lists, ...); the columns are the union of the rows' keys
    (a row without a key gets NULL, or the column default for ``status``/``review_status``/``source``
    and the current time for ``created_at``/``updated_at``). Use it for ``discovery_runs`` and
    ``learning_registry`` rows, or child rows that already carry a ``session_id``.
    """
    conn = check_connection(conn, "insert_rows")
    if table not in CATALOGUE:
        raise invalid(
            "table",
            table,
            f"one of {', '.join(sorted(CATALOGUE))}",
            hint="insert sessions with their children through insert_graphs()",
            function="insert_rows",
        )
    items = [dict(row) for row in rows]
    if not items:
        return 0
    columns: list[str] = []
    for row in items:
        columns.extend(column for column in row if column not in columns)

    def work() -> int:
        now = datetime.now(timezone.utc)
        batch = _Batch()
        for position, row in enumerate(items):
            batch.add(table, columns, row, position, now)
        _copy(conn, batch, table, columns)
        return len(items)

    count: int = _run(conn, work)
    return count
