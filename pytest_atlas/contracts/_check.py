"""``check_database``: stream every Atlas JSON column through the validators, inside a READ ONLY transaction."""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format, TransactionStatus
from psycopg.rows import tuple_row

from pytest_atlas._arguments import check_date, check_integer, check_positive_int
from pytest_atlas._dsn import Dsn, hide_password
from pytest_atlas.contracts._accumulate import ColumnAccumulator
from pytest_atlas.contracts._relations import CHECKS, check_relations, relation_names
from pytest_atlas.contracts._result import ColumnReport, ContractReport, RelationReport
from pytest_atlas.contracts._switch import switching_often
from pytest_atlas.contracts._targets import Column, Table, resolve_targets
from pytest_atlas.db import connect_target, describe_target, query_problem, read_again
from pytest_atlas.errors import AtlasError, InvalidArgument, ProvisioningError
from pytest_atlas.validation import MAX_DEPTH, Violation, validator_for
from pytest_atlas.validation import preview as _preview

if TYPE_CHECKING:
    from pytest_atlas.contracts._split import IdRange

__all__ = ["check_database", "has_rows", "run_checks", "run_ranges"]

_cursor_names = itertools.count(1)


def check_database(
    conninfo_or_connection: str | Dsn | psycopg.Connection[Any],
    tables: Iterable[str] | str | None = None,
    since: date | datetime | str | None = None,
    limit: int | None = None,
    schemas: Mapping[str, str | Mapping[str, Any] | None] | None = None,
    *,
    batch_size: int = 500,
    samples: int = 5,
) -> ContractReport:
    """Check every JSON column of every Atlas table against its JSON Schema.

    ``conninfo_or_connection``: a libpq DSN/URL, or an open psycopg connection (left as it was found:
    its transaction, if any, is untouched; the check runs in a rolled-back savepoint).
    ``tables``: only these tables (``"sessions"``) or columns (``"sessions.metadata"``).
    ``since``: only rows created on or after this date (tables without a date use their session's).
    ``limit``: at most this many rows per table, newest first (``None`` or 0: all).
    ``schemas``: ``{"table.column": schema}`` merged over :data:`ATLAS_COLUMNS` (``None`` drops one).

    Rows are read through a server-side cursor in batches of ``batch_size`` inside a READ ONLY
    transaction, so memory stays flat however big the table. Returns a :class:`ContractReport`;
    raises :class:`~pytest_atlas.errors.AtlasError` only when the database cannot be reached.
    """
    conninfo_or_connection = hide_password(conninfo_or_connection)  # frames show it redacted
    since_date = _since(since)
    if limit is not None:
        check_integer("limit", limit, low=0, example=1000, expected="a non-negative integer or None")
    check_positive_int("batch_size", batch_size, example=5000)
    check_integer("samples", samples, low=0, example=3, expected="a non-negative integer")
    targets = resolve_targets(tables, schemas)
    return run_checks(
        conninfo_or_connection,
        targets,
        relation_names(_whole_tables(tables)),
        since_date,
        limit or None,
        batch_size=batch_size,
        samples=samples,
    )


def run_checks(
    conninfo_or_connection: str | Dsn | psycopg.Connection[Any],
    columns: Iterable[Column],
    relations: Iterable[str],
    since: date | None,
    limit: int | None,
    *,
    batch_size: int = 500,
    samples: int = 5,
    require_rows: bool = True,
    id_range: IdRange | None = None,
) -> ContractReport:
    """Check exactly these columns and relational checks (``table[check]``); arguments already validated.

    With ``require_rows`` (the default) the checks without evidence are marked as such
    (:attr:`ContractReport.empty`, see :meth:`ContractReport.mark_empty`): the JSON columns when none
    held a document (rows the relational checks read are no evidence for the JSON schemas), every
    check when no check read anything. A check of nothing proves nothing, so it is not ``ok``.
    With ``id_range`` (from :func:`~pytest_atlas.contracts.plan_ranges`) only that range of each
    column's rows is read, and each column report carries what :func:`merge_parts` needs
    (:attr:`ColumnReport.part`); it cannot be combined with ``limit``.
    """
    conninfo_or_connection = hide_password(conninfo_or_connection)  # frames show it redacted
    if id_range is not None and limit is not None:
        raise InvalidArgument(
            "an id range scan reads every row of its range; it cannot also take the newest `limit` rows",
            hint="pass either id_range or limit",
        )
    checks: list[Callable[[psycopg.Connection[Any]], Sequence[ColumnReport | RelationReport]]] = [
        functools.partial(
            _check_ranges,
            target=target,
            since=since,
            limit=limit,
            batch_size=batch_size,
            samples=samples,
            ranges=[id_range],
        )
        for target in columns
    ]
    # one read per relational check (in their order): one the server cut is read again alone
    wanted = set(relations)
    checks += [
        functools.partial(check_relations, names={name}, since=since, limit=limit, samples=samples)
        for name in relation_names({check.table for check in CHECKS})
        if name in wanted
    ]
    label, found = _read_each(conninfo_or_connection, checks)
    report = ContractReport(database=label, since=since, limit=limit)
    for reports in found:
        for item in reports:
            if isinstance(item, ColumnReport):
                if id_range is not None and item.part is None:  # it could not be scanned: the problem alone
                    item.part = {"range": id_range.to_dict(), "state": ColumnAccumulator(item).state()}
                report.columns.append(item)
            else:
                report.relations.append(item)
    if require_rows:
        report.mark_empty()
    return report


def run_ranges(
    conninfo_or_connection: str | Dsn | psycopg.Connection[Any],
    column: Column,
    ranges: Sequence[IdRange],
    since: date | None,
    *,
    batch_size: int = 500,
    samples: int = 5,
) -> list[ColumnReport]:
    """The report of each range of ``column``'s plan (every range :func:`~pytest_atlas.contracts.plan_ranges`
    made for its table, in order), each what ``run_checks(..., id_range=range)`` gives, from one read
    of the column: a process that checks every range pays for one scan, not one per range."""
    conninfo_or_connection = hide_password(conninfo_or_connection)  # frames show it redacted
    ordered = list(ranges)
    contiguous = all(a.high is not None and a.high == b.low for a, b in itertools.pairwise(ordered))
    keyed = all(id_range.key == column.table.key[0] for id_range in ordered)
    if not ordered or ordered[0].low is not None or ordered[-1].high is not None or not contiguous or not keyed:
        raise InvalidArgument(
            f"run_ranges needs every range of a plan of {column.table.name}'s {column.table.key[0]}, in order: "
            "from no lower bound to no upper one, each starting where the one before ends",
            hint="pass the ranges plan_ranges() made for the column's table",
        )
    read = functools.partial(
        _check_ranges, target=column, since=since, limit=None, batch_size=batch_size, samples=samples, ranges=ordered
    )
    _, (reports,) = _read_each(conninfo_or_connection, [read])
    for report, id_range in zip(reports, ordered, strict=True):
        if report.part is None:  # it could not be scanned: the problem alone
            report.part = {"range": id_range.to_dict(), "state": ColumnAccumulator(report).state()}
    return list(reports)


def has_rows(
    conninfo_or_connection: str | Dsn | psycopg.Connection[Any],
    columns: Iterable[Column],
    relations: Iterable[str],
    since: date | None,
) -> bool:
    """Whether any of these checks has a row to read (``EXISTS`` per table: cheap on any size)."""
    wanted: list[tuple[str, str | None]] = [(c.table.name, c.column) for c in columns]
    names = set(relations)
    wanted += [(check.table, None) for check in CHECKS if f"{check.table}[{check.name}]" in names]

    def read() -> tuple[bool, bool]:
        """(a row was found, a read was cut: then the answer may be wrong)"""
        cut = False
        with _read_only(conninfo_or_connection) as (conn, _):
            for table_name, column in dict.fromkeys(wanted):
                try:
                    with conn.transaction():
                        if not _column_type(conn, table_name, column or "ctid")[0]:
                            continue
                        query, params = _scope_query(table_name, column, since)
                        row = conn.cursor(row_factory=tuple_row).execute(query, params).fetchone()
                except psycopg.Error as exc:
                    cut = cut or query_problem(exc, conn).transient
                    continue  # that check reports its own problem
                if row and row[0]:
                    return True, False
        return False, cut

    return read_again(conninfo_or_connection, read, cut=lambda found: found[1])[0]


def _scope_query(table_name: str, column: str | None, since: date | None) -> tuple[sql.Composed, list[Any]]:
    from pytest_atlas.contracts._targets import TABLES

    table = TABLES[table_name]
    conditions, params = _since_condition(table, since)
    if column is not None:
        conditions.append(sql.SQL("{} IS NOT NULL").format(sql.Identifier(column)))
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(sql.Identifier(table.name), where)
    return query, params


def _whole_tables(tables: Iterable[str] | str | None) -> set[str]:
    """Tables whose relational checks run: every table, or those named whole (not ``table.column``)."""
    from pytest_atlas.contracts._targets import TABLES

    if tables is None:
        return set(TABLES)
    names = [tables] if isinstance(tables, str) else list(tables)
    return {name for name in names if "." not in name}


def _since(value: date | datetime | str | None) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_date("since", value)


_Report = TypeVar("_Report", bound=ColumnReport | RelationReport)


def _read_each(
    source: str | Dsn | psycopg.Connection[Any],
    checks: Sequence[Callable[[psycopg.Connection[Any]], Sequence[_Report]]],
) -> tuple[str, list[Sequence[_Report]]]:
    """The database's label and each check's reports, read on one connection (in a READ ONLY
    transaction). On a connection of our own (``source`` a DSN), the checks whose read the server
    cut (a report marked ``transient``: a restart, a terminated backend) are read again on a new
    one, for a while (:func:`~pytest_atlas.db.read_again`); the caller's connection is the caller's,
    so there a cut read is reported."""
    found: list[Sequence[_Report] | None] = [None] * len(checks)
    label = ""

    def cut(reports: Sequence[_Report] | None) -> bool:
        return reports is None or any(report.transient for report in reports)

    def read() -> list[Sequence[_Report] | None]:
        nonlocal label
        with _read_only(source) as (conn, label):
            for index, check in enumerate(checks):
                if cut(found[index]):
                    found[index] = check(conn)
        return found

    read_again(source, read, cut=lambda reports: any(cut(item) for item in reports))
    return label, [reports or [] for reports in found]


@contextmanager
def _read_only(target: str | Dsn | psycopg.Connection[Any]) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    if isinstance(target, str | Dsn):
        try:
            conn = connect_target(target)
        except ProvisioningError as exc:
            error = AtlasError(f"cannot check the contracts: {exc.problem}", hint=exc.hint)
            error.transient = exc.transient
            raise error from None
        try:
            opened = False
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    opened = True
                    yield conn, describe_target(target)
            except psycopg.Error as exc:
                if opened:  # the checks' own reads report their problems
                    raise
                # the server cut the connection before the first check: a read like any other
                found = query_problem(exc, conn)
                error = AtlasError(f"cannot check the contracts: {found.problem}", hint=found.hint)
                error.transient = found.transient
                raise error from None
        finally:
            conn.close()
        return
    if isinstance(target, psycopg.AsyncConnection) or not isinstance(target, psycopg.Connection):
        raise InvalidArgument(
            f"check_database needs a DSN string or a psycopg (sync) Connection, got {type(target).__name__}",
            hint="pass the DSN, e.g. check_database(atlas_dsn), or a psycopg.Connection",
        )
    if target.closed:
        raise InvalidArgument("the connection given to check_database is closed", hint="pass an open connection")
    status = target.info.transaction_status
    if status == TransactionStatus.INERROR:
        raise AtlasError(
            "the connection given to check_database is in a failed transaction",
            hint="roll the transaction back first (conn.rollback())",
        )
    if status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
        raise AtlasError(
            f"the connection given to check_database is busy (transaction status {status.name})",
            hint="finish the running query or pass a DSN",
        )
    # a savepoint (or a transaction) rolled back at the end: READ ONLY is undone with it
    with target.transaction(force_rollback=True):
        target.execute("SET TRANSACTION READ ONLY")
        yield target, _label(target)


def _label(conn: psycopg.Connection[Any]) -> str:
    info = conn.info
    host = info.host or "localhost"
    return f"postgresql://{info.user}@{host}:{info.port}/{info.dbname}"


def _column_type(conn: psycopg.Connection[Any], table: str, column: str) -> tuple[bool, str | None]:
    """(table exists, the column's SQL type or None when the column is missing)."""
    cursor = conn.cursor(row_factory=tuple_row)  # whatever row factory the caller's connection uses
    row = cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
    if not row or not row[0]:
        return False, None
    found = cursor.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        [table, column],
    ).fetchone()
    return True, (str(found[0]) if found else None)


def _check_ranges(
    conn: psycopg.Connection[Any],
    target: Column,
    since: date | None,
    limit: int | None,
    batch_size: int,
    samples: int,
    ranges: Sequence[IdRange | None],
) -> list[ColumnReport]:
    """The report of each of ``ranges`` (``[None]``: the whole column), from one read of the column."""
    table = target.table
    reports = [ColumnReport(table=table.name, column=target.column, schema=target.schema_name) for _ in ranges]

    def problem(text: str) -> list[ColumnReport]:
        for report in reports:
            report.problem = text
        return reports

    try:
        with conn.transaction():
            exists, kind = _column_type(conn, table.name, target.column)
            if not exists:
                return problem(
                    f"table {table.name} does not exist in this database (is the Atlas schema "
                    "loaded, and is it on the search_path?)"
                )
            if kind is None:
                return problem(
                    f"column {table.name}.{target.column} does not exist (a database created by an "
                    "Atlas older than the column?)"
                )
            if kind not in ("jsonb", "json"):
                return problem(
                    f"column {table.name}.{target.column} has type {kind}; Atlas stores this payload as jsonb"
                )
            missing = [
                name
                for name in (*table.key, table.created or "session_id")
                if _column_type(conn, table.name, name)[1] is None
            ]
            if missing:
                return problem(f"table {table.name} lacks the column(s) {', '.join(missing)} needed to key rows")
            accumulators = [ColumnAccumulator(report, samples=samples) for report in reports]
            # one range: its rows only; several (every range of a plan, in order): all rows, each to its range
            only = ranges[0] if len(ranges) == 1 else None
            bounds = [int(r.low) for r in ranges[1:] if r is not None and r.low is not None]
            _stream(conn, target, since, limit, batch_size, accumulators, bounds, jsonb=kind == "jsonb", id_range=only)
            for report, accumulator, id_range in zip(reports, accumulators, ranges, strict=True):
                accumulator.finish()
                if id_range is not None:
                    report.part = {"range": id_range.to_dict(), "state": accumulator.state()}
    except psycopg.errors.InsufficientPrivilege as exc:
        problem(
            f"the role {conn.info.user!r} may not read {table.name}: {str(exc).strip().splitlines()[0]} "
            f"(GRANT SELECT ON ALL TABLES IN SCHEMA public TO {conn.info.user})"
        )
    except psycopg.Error as exc:
        found = query_problem(exc, conn)
        problem(f"the query failed: {found.problem} ({found.hint})")
        for report in reports:
            report.transient = found.transient
    return reports


def _since_condition(table: Table, since: date | None) -> tuple[list[sql.Composable], list[Any]]:
    """The rows of ``table`` created on or after ``since`` (tables without a date: their session's)."""
    if since is None:
        return [], []
    if table.created:
        return [sql.SQL("{} >= %s").format(sql.Identifier(table.created))], [since]
    return [sql.SQL("session_id IN (SELECT id FROM sessions WHERE created_at >= %s)")], [since]


def _rows_query(
    target: Column,
    since: date | None,
    limit: int | None,
    id_range: IdRange | None = None,
    *,
    raw_jsonb: bool = False,
) -> tuple[sql.Composed, list[Any]]:
    table = target.table
    keys = [sql.Identifier(name) for name in table.key]
    conditions, params = _since_condition(table, since)
    if id_range is not None:
        in_range, bounds = id_range.conditions()
        conditions += in_range
        params += bounds
    if raw_jsonb:  # jsonb's binary form: the server sends its text (in UTF-8, the client encoding) as it is
        column: sql.Composable = sql.Identifier(target.column)
    else:
        # the JSON text as bytes: UTF-8 (converted by the server) in a database with a real encoding,
        # the stored bytes unconverted in a SQL_ASCII one, whose non-UTF-8 bytes then become a
        # violation of their row instead of an encoding error that stops the whole column
        column = sql.SQL(
            "convert_to({}::text, CASE current_setting('server_encoding') WHEN 'SQL_ASCII' THEN 'SQL_ASCII' "
            "ELSE 'UTF8' END)"
        ).format(sql.Identifier(target.column))
    query = sql.SQL("SELECT {keys}, {column} FROM {table}").format(
        keys=sql.SQL(", ").join(keys), column=column, table=sql.Identifier(table.name)
    )
    if conditions:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(conditions))
    if limit is not None:
        order = [sql.SQL("{} DESC").format(sql.Identifier(table.created))] if table.created else []
        order += [sql.SQL("{} DESC").format(key) for key in keys]
        query = sql.SQL("{} ORDER BY {} LIMIT %s").format(query, sql.SQL(", ").join(order))
        params.append(limit)
    return query, params


def _stream(
    conn: psycopg.Connection[Any],
    target: Column,
    since: date | None,
    limit: int | None,
    batch_size: int,
    accumulators: Sequence[ColumnAccumulator],
    bounds: Sequence[int] = (),
    *,
    jsonb: bool = False,
    id_range: IdRange | None = None,
) -> None:
    """Validate every row of ``target`` (in ``id_range``, when given) into ``accumulators[0]``, or,
    with ``bounds`` (the lower ends of the second and later id ranges), into the accumulator of the
    range its key falls in.

    A document is parsed from its UTF-8 bytes by orjson (no ``str`` of the whole text; its dicts
    carry cached key hashes, which also halves jsonschema-rs's time on them). Text that orjson
    cannot read exactly -- a run of 19 or more digits (orjson turns integers beyond 64 bits into
    floats), nesting near :data:`MAX_DEPTH`, or anything it rejects -- goes through ``json`` as
    before, so its verdict and messages do not change. A ``jsonb`` value holds no NaN, Infinity,
    NUL or lone surrogate, and orjson reads it only when it has fewer brackets than MAX_DEPTH and
    no number that overflows to infinity (``json`` reads ``1e400``'s full digits as ``inf``), so
    what orjson read from a ``jsonb`` value is known to be storable: its storability walk is
    skipped."""
    validator = validator_for(target.schema)
    # jsonb straight from its binary form (a sixth less work for the server than converting its text)
    # when the database and the connection are both UTF-8 (a SQL_ASCII database's bytes are unchecked:
    # they keep the convert_to path, where bytes that are not UTF-8 are their row's violation)
    raw_jsonb = jsonb and _encodings(conn) == ("UTF8", "UTF8")
    query, params = _rows_query(target, since, limit, id_range, raw_jsonb=raw_jsonb)
    key_names = target.table.key
    width = len(key_names)
    with conn.cursor(name=f"atlas_contract_{next(_cursor_names)}", row_factory=tuple_row, binary=True) as cursor:
        if raw_jsonb:
            cursor.adapters.register_loader("jsonb", _JsonbBytes)
        cursor.itersize = batch_size
        cursor.execute(query, params)
        check = validator.check
        accumulator = accumulators[0]
        for batch in _prefetched(cursor, batch_size):
            clean = [0] * len(accumulators)  # rows without any finding: only counted (per batch)
            part = 0
            try:
                for row in batch:
                    if bounds:
                        part = bisect.bisect_right(bounds, row[0])
                        accumulator = accumulators[part]
                    raw = row[width]
                    if raw is None:
                        accumulator.add_null()
                        continue
                    data = bytes(raw)
                    classes = data.translate(_CLASSES)
                    shallow = classes.count(b"[") < MAX_DEPTH
                    document: Any = _UNREAD
                    if shallow and _LONG_NUMBER not in classes:
                        try:  # noqa: SIM105 (contextlib.suppress costs more than the parse, on every row)
                            document = orjson.loads(data)
                        except orjson.JSONDecodeError:
                            pass
                    parsed = document is not _UNREAD
                    if not parsed:
                        loaded = _load_exactly(data, validator.name)
                        if isinstance(loaded, Violation):
                            accumulator.add_violations([loaded], dict(zip(key_names, row[:width], strict=True)))
                            continue
                        document = loaded
                    # orjson refuses a number that overflows to infinity (json reads it as inf: unstorable)
                    result = check(document, census=True, storable=jsonb and parsed)
                    if result.errors or result.warnings:
                        accumulator.add(result, dict(zip(key_names, row[:width], strict=True)))
                    elif result.unknown_fields:
                        accumulator.add(result, _NO_KEY)
                    else:
                        clean[part] += 1
            finally:
                for counted, rows in zip(accumulators, clean, strict=True):
                    counted.add_clean(rows)
            del batch


def _encodings(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    row = (
        conn.cursor(row_factory=tuple_row)
        .execute("SELECT current_setting('server_encoding'), current_setting('client_encoding')")
        .fetchone()
    )
    return (str(row[0]), str(row[1])) if row else ("", "")


class _JsonbBytes(Loader):
    """jsonb's binary form as the bytes of its JSON text (no parsing: :func:`_stream` parses)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        raw = bytes(data)
        if raw[:1] != b"\x01":
            raise psycopg.DataError(f"unknown jsonb binary format version {raw[:1]!r}")
        return raw[1:]


#: the byte classes _stream looks for in a document's text: digits become 0, opening brackets [
_CLASSES = bytes(48 if 48 <= byte <= 57 else 91 if byte in (91, 123) else 32 for byte in range(256))
#: a run of digits orjson may not read exactly (integers beyond 64 bits become floats there)
_LONG_NUMBER = b"0" * 19
_UNREAD = object()
#: the key of a row without violations (the accumulator only reads keys of rows with violations)
_NO_KEY: Mapping[str, Any] = {}


def _load_exactly(data: bytes, schema: str) -> Any:
    """``json.loads`` of a document's bytes, or the :class:`Violation` saying why it cannot be read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unloadable(
            schema,
            data.decode("utf-8", "backslashreplace"),
            "x-parse",
            f"not UTF-8 text ({exc.reason} at byte {exc.start}): the database "
            "(server_encoding SQL_ASCII) stores bytes unchecked",
        )
    try:
        return json.loads(text)
    except RecursionError:
        return _unloadable(
            schema,
            text,
            "x-depth",
            f"nested deeper than Python's json module can load (pytest-atlas reports documents deeper than "
            f"{MAX_DEPTH} levels)",
        )
    except ValueError as exc:
        return _unloadable(schema, text, "x-parse", f"not parsable as JSON: {exc}")


def _prefetched(cursor: psycopg.ServerCursor[Any], batch_size: int) -> Iterator[list[Any]]:
    """The cursor's rows in batches; a helper thread fetches the next batch while the caller checks
    this one (the server serialises rows while Python parses and validates). At most two batches wait,
    so memory stays flat; the thread is stopped and joined before this generator ends.

    While it runs, the interpreter's thread switch interval is at most
    :data:`~pytest_atlas.contracts._switch.SWITCH_INTERVAL` (process-wide, counted: put back when the
    last scan of any thread ends): when the server's answer arrives, the helper needs the GIL to ask
    for the next batch, and at the default 5 ms it waited so long for the checking thread that the server sat idle (a
    200,000-row scan pinned to one core: 3.5 s wall at 5 ms, 2.5 s at 0.5 ms, same CPU time)."""
    waiting: queue.Queue[list[Any] | BaseException] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                batch = cursor.fetchmany(batch_size)
                while not stop.is_set():
                    try:
                        waiting.put(batch, timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if not batch:
                    return
        except BaseException as exc:  # handed to the caller, raised there
            waiting.put(exc)

    helper = threading.Thread(target=fetch, name="pytest-atlas-contract-fetch", daemon=True)
    with switching_often():
        helper.start()
        try:
            while True:
                item = waiting.get()
                if isinstance(item, BaseException):
                    raise item
                if not item:
                    return
                yield item
        finally:
            stop.set()
            while helper.is_alive():
                with contextlib.suppress(queue.Empty):
                    waiting.get(timeout=0.05)
            helper.join()


def _unloadable(schema: str, text: str, keyword: str, message: str) -> Violation:
    return Violation(schema=schema, path="$", keyword=keyword, message=message, value=_preview(text[:200], 60))
