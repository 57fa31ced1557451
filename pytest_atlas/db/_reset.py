"""Reset isolation: a used test database is proved equal to a fresh clone of its template, then
emptied and handed to the next test, instead of being dropped and cloned again.

A clone creates a few hundred files; on a disk that charges for file creation (CI containers)
that is most of a test's cost. A reset creates none: it deletes rows and moves sequences back.

The proof uses no statistics views (they are asynchronous) and no machinery inside the template
(the tests see exactly the template). It rests on transaction ids: every row version that a test
wrote carries, as ``xmin``, the id of a transaction that began after the database was handed out.
The pool notes a transaction id (the *mark*) before a database is handed out: ``txid_current()``
just after the clone, or the id of the transaction that reset it (every later transaction has a
greater one). After the test, with nobody connected any more (no open connection, no prepared
transaction), a relation whose visible rows include none newer than the mark and whose row count
equals the template's holds exactly the template's rows (every older visible row was visible at
the mark, when the state was the template's). So, after each test, in one transaction:

* every table of the database's catalogs (``pg_class``, ``pg_attribute``, ``pg_proc``,
  ``pg_largeobject_metadata``, ``pg_extension``, ...; ``pg_statistic`` aside, which only
  ``ANALYZE`` writes) must be unchanged: DDL of any kind, ``TRUNCATE`` (a new file for the
  table), grants, comments, large objects, extensions, even direct writes to a catalog, change one;
* every table that has rows in the template (seeded data) and every materialized view must be
  unchanged: such a table is not restored by copying, the database is replaced by a fresh clone;
* every other table is emptied with ``DELETE`` under ``session_replication_role = replica``, so
  no foreign key and no ordinary trigger runs, before the check, in the same transaction (when
  the template has a rule or an ``ENABLE ALWAYS`` trigger on such a table, only tables with rows
  are emptied, and the whole check runs before and after the deletes: the emptied tables must
  then be empty);
* every sequence gets the template's ``last_value`` and ``is_called`` back (``setval``), so a
  sequence moved by hand or by an insert is restored alike;
* cluster-wide: the database's own ``pg_database`` row (``ALTER DATABASE``), its settings
  (``ALTER DATABASE ... SET``), its comment and security label must be as after the clone, no
  role may have been created, changed or dropped, and no replication slot may use it.

A reset takes few round trips, since each may wait for the interpreter lock while a test runs
in the main thread: a poll or two for the test's backends to be gone, the rename and its checks
in one string, a connection to the renamed database, and the deletes, check, sequences and next
mark in one string (its statements composed once per template; the mark is a setting of the
transaction), each followed by its commit. Both commits wait for their WAL to be written (a
started server commits asynchronously, and a crash restart would lose them after the database
was handed out).

The database is renamed before the check (``ALTER DATABASE ... RENAME`` fails while anyone is
connected, so the check is race-free, and code that kept the previous test's DSN cannot reach the
next test's database). Whatever cannot be proved (anything above, a session still connected, an
error) sends the database to be dropped and a fresh clone is made instead: the promise of the
database fixtures (each test starts from exactly the template's state) holds either way.

What a reset does not restore, because no test can see it through SQL data: the physical place of
rows (``ctid``), the sequences' ``log_cnt``, and the statistics (``pg_stat_*``, ``relpages``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from pytest_atlas.db._cache import is_tmpfs
from pytest_atlas.errors import ProvisioningError

__all__ = ["ISOLATIONS", "Outcome", "Resetter", "choose_isolation", "isolation_header", "reset_refusal"]

#: the values of --atlas-isolation
ISOLATIONS = ("auto", "clone", "reset")

#: how long a reset waits for the backends of connections the test closed to exit
_SESSION_WAIT = 0.5
#: a cleared table is vacuumed after this many resets (autovacuum is off on a started server)
_VACUUM_EVERY = 25

#: columns of a pg_database row that change without anyone asking (freezing) or by our own rename
_DB_VOLATILE = sql.SQL("ARRAY['oid', 'datname', 'datfrozenxid', 'datminmxid']")


def choose_isolation(requested: str, *, tmpfs: bool | None, keep: bool) -> tuple[str, str]:
    """The isolation of a run (``"clone"`` or ``"reset"``) and why, for the report header.

    ``tmpfs`` is whether the server's data lies in memory (None: unknown, an existing server).
    On disk a clone is mostly file creation, which a reset avoids: ``auto`` resets there, and on an
    existing server, whose storage is unknown. In memory both are cheap and ``auto`` clones, the
    plainer of the two (benchmarks/bench_server.py measures both). ``--atlas-keep-db`` always clones: its
    point is one database per test."""
    where = "data in memory" if tmpfs else "data on disk" if tmpfs is not None else "an existing server"
    if keep:
        if requested == "reset":
            return "clone", "--atlas-keep-db keeps every test's database, so none is reset"
        return "clone", "one database per test, kept (--atlas-keep-db)"
    if requested == "clone":
        return "clone", "a fresh clone per test (--atlas-isolation=clone)"
    if requested == "reset":
        return "reset", f"reset and reuse when proved exact, else a fresh clone (--atlas-isolation=reset; {where})"
    if tmpfs:
        return "clone", f"a fresh clone per test (auto: {where}, where cloning is cheap)"
    return "reset", f"reset and reuse when proved exact, else a fresh clone (auto: {where})"


def isolation_header(requested: str, *, data_dir: Path | None, keep: bool) -> str:
    """The report header's line for the isolation a run will use."""
    strategy, why = choose_isolation(requested, tmpfs=data_on_tmpfs(data_dir), keep=keep)
    return f"atlas: isolation: {strategy}: {why}"


def reset_refusal(server: Any) -> str | None:
    """Why databases on ``server`` cannot be reset (a reset reads ``pg_authid`` and deletes under
    ``session_replication_role``, both for superusers only), or None."""
    with server.admin_connect(autocommit=True) as admin:
        row = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if row is not None and row[0]:
        return None
    return f"the role {server.user!r} of the existing server is not a superuser"


def data_on_tmpfs(data_dir: Path | None) -> bool | None:
    """Whether a started server's data is in memory (None when the plugin did not start it)."""
    return None if data_dir is None else is_tmpfs(data_dir)


@dataclass(frozen=True)
class _Relation:
    ident: sql.Composable
    name: str
    rows: int
    #: a user table empty in the template: reset by deleting its rows
    clearable: bool


@dataclass(frozen=True)
class _Sequence:
    oid: int
    ident: sql.Composable
    last_value: int
    is_called: bool


@dataclass(frozen=True)
class _Mark:
    """What was true when a database was handed out: the transaction id every later write exceeds,
    and the role count (roles are cluster-wide)."""

    xid: int
    roles: int


@dataclass(frozen=True)
class _Texts:
    """The statements of a reset, composed once per template (composing the check of every
    relation costs more than the server takes to run it); the mark is a setting of the reset's
    transaction, so it is the one value each reset adds."""

    #: one row per checked relation: its index, row count, and rows newer than the mark
    check: sql.SQL
    #: the relations ``check`` lists, in its order
    checked: list[int]
    #: ``DELETE`` of each clearable relation, by relation index
    deletes: dict[int, sql.SQL]
    #: the template's state of every sequence back (``setval``), or None without sequences
    restore: sql.SQL | None


@dataclass
class _Baseline:
    """The template's state as a reset compares with it, read once from a fresh clone."""

    relations: list[_Relation]
    sequences: list[_Sequence]
    database: Any
    #: a rule or an ENABLE ALWAYS/REPLICA trigger on a cleared table: deletes may have effects
    delete_effects: bool
    texts: _Texts


#: a row version written after the mark (the mark is the batch's setting: one value per statement)
_NEWER = "age(xmin) < (SELECT age(current_setting('pytest_atlas.mark')::xid))"

_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind, n.nspname IN ('pg_catalog', 'information_schema')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND NOT c.relisshared AND c.relpersistence <> 't'
  AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
  AND (c.relkind <> 'm' OR c.relispopulated)
  AND NOT (n.nspname = 'pg_catalog' AND c.relname IN ('pg_statistic', 'pg_statistic_ext_data'))
ORDER BY c.oid
"""

_SEQUENCES = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND c.relpersistence <> 't'
ORDER BY c.oid
"""

_DELETE_EFFECTS = """
SELECT EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = ANY(%(oids)s::regclass[]) AND ev_type = '4')
    OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = ANY(%(oids)s::regclass[]) AND tgenabled IN ('A', 'R'))
"""

#: roles, memberships and settings of a role in every database (ALTER ROLE ... SET): cluster-wide, so
#: neither a reset nor a fresh clone undoes them; counted so that the summary says a test made them
_ROLES = (
    "(SELECT count(*) FROM pg_authid) + (SELECT count(*) FROM pg_auth_members)"
    " + (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = 0)"
)
_ROLES_CHANGED = (
    "(SELECT count(*) FROM pg_authid WHERE age(xmin) < age({mark}::xid))"
    " + (SELECT count(*) FROM pg_auth_members WHERE age(xmin) < age({mark}::xid))"
    " + (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = 0 AND age(xmin) < age({mark}::xid))"
)

#: a database's own row, settings, comment, label and subscriptions (as the baseline has them), then
#: the role count and the roles written after the mark, the prepared transactions and replication slots
_DATABASE = sql.SQL(
    "SELECT to_jsonb(d) - {volatile},"
    " (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = d.oid)"
    " + (SELECT count(*) FROM pg_shdescription WHERE objoid = d.oid AND classoid = 'pg_database'::regclass)"
    " + (SELECT count(*) FROM pg_shseclabel WHERE objoid = d.oid AND classoid = 'pg_database'::regclass)"
    " + (SELECT count(*) FROM pg_subscription WHERE subdbid = d.oid)"
).format(volatile=_DB_VOLATILE)
_AFTER_RENAME = sql.SQL(
    "{database}, {roles}, {changed},"
    " (SELECT count(*) FROM pg_prepared_xacts WHERE database = d.datname),"
    " (SELECT count(*) FROM pg_replication_slots WHERE database = d.datname)"
    " FROM pg_database d WHERE datname = {name}"
)


def _compose_texts(
    relations: list[_Relation], sequences: list[_Sequence], delete_effects: bool, conn: psycopg.Connection[Any]
) -> _Texts:
    """The statements of a reset for a template (see :meth:`Resetter._reset_content`). The check
    lists every relation but the clearable ones, which it lists too when deleting may have effects
    (their rows are then deleted only where there are some, and the check runs again)."""

    def text(composed: sql.Composable) -> sql.SQL:
        return sql.SQL(composed.as_string(conn))

    checked = [i for i, rel in enumerate(relations) if delete_effects or not rel.clearable]
    check = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::int, count(*), count(*) FILTER (WHERE {}) FROM {}").format(
            sql.Literal(i), sql.SQL(_NEWER), relations[i].ident
        )
        for i in checked
    )
    restore = None
    if sequences:
        values = sql.SQL(", ").join(
            sql.SQL("({}::oid, {}::bigint, {}::bool)").format(
                sql.Literal(seq.oid), sql.Literal(seq.last_value), sql.Literal(seq.is_called)
            )
            for seq in sequences
        )
        # a sequence the test dropped is not there to set: the check refuses the database for it
        restore = text(
            sql.SQL(
                "SELECT setval(c.oid::regclass, v.last_value, v.is_called) FROM (VALUES {}) AS v(oid, last_value,"
                " is_called) JOIN pg_class c ON c.oid = v.oid AND c.relkind = 'S'"
            ).format(values)
        )
    deletes = {i: text(sql.SQL("DELETE FROM {}").format(rel.ident)) for i, rel in enumerate(relations) if rel.clearable}
    return _Texts(check=text(check), checked=checked, deletes=deletes, restore=restore)


@dataclass(frozen=True)
class Outcome:
    """What a reset did: ``ready`` is the database (renamed) to hand out next, or None; then
    ``drop`` names the database to drop and ``reason`` says why it could not be reset."""

    ready: str | None
    drop: str | None = None
    reason: str | None = None


class _Fallback(Exception):
    """Raised inside a reset when the database cannot be proved equal to a fresh clone."""


class Resetter:
    """Resets the used databases of one template (see the module docstring). The pool's threads
    reset different databases at once; what they share is kept under a lock."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._baseline: _Baseline | None = None
        self._marks: dict[str, _Mark] = {}
        self._uses: dict[str, int] = {}
        self._dirty: dict[str, set[int]] = {}
        self.resets = 0
        self.fallbacks: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- a fresh clone -------------------------------------------------------------------------------

    def fresh(self, admin: psycopg.Connection[Any], name: str) -> None:
        """Note a database just cloned from the template (before anyone else knows its name)."""
        if self._baseline is None:
            self._baseline = self._read_baseline(admin, name)
        mark = self._mark(admin)
        with self._lock:
            self._marks[name] = mark
            self._uses[name] = 0
            self._dirty[name] = set()

    def _mark(self, admin: psycopg.Connection[Any]) -> _Mark:
        row = admin.execute(sql.SQL("SELECT txid_current(), {}").format(sql.SQL(_ROLES))).fetchone()
        assert row is not None
        return _Mark(xid=int(row[0]), roles=int(row[1]))

    def _read_baseline(self, admin: psycopg.Connection[Any], name: str) -> _Baseline:
        database = admin.execute(sql.SQL("{} FROM pg_database d WHERE datname = %s").format(_DATABASE), (name,))
        database_row = database.fetchone()
        with self.server.admin_connect(name, autocommit=True, retry_for=0) as conn:
            listed = conn.execute(_RELATIONS).fetchall()
            idents = [sql.Identifier(nsp, rel) for nsp, rel, _, _ in listed]
            counts = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {}::int, count(*) FROM {}").format(sql.Literal(i), ident)
                for i, ident in enumerate(idents)
            )
            rows = dict(conn.execute(counts).fetchall())
            relations = [
                _Relation(ident, f"{nsp}.{rel}", rows[i], clearable=kind == "r" and not catalog and rows[i] == 0)
                for i, (ident, (nsp, rel, kind, catalog)) in enumerate(zip(idents, listed, strict=True))
            ]
            sequences = []
            for oid, nsp, rel in conn.execute(_SEQUENCES).fetchall():
                ident = sql.Identifier(nsp, rel)
                value = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(ident)).fetchone()
                assert value is not None
                sequences.append(_Sequence(int(oid), ident, int(value[0]), bool(value[1])))
            names = [rel.name for rel in relations if rel.clearable]
            effects = conn.execute(_DELETE_EFFECTS, {"oids": names}).fetchone()
            delete_effects = bool(effects and effects[0])
            texts = _compose_texts(relations, sequences, delete_effects, conn)
        return _Baseline(relations, sequences, database_row, delete_effects, texts)

    # -- a used database -----------------------------------------------------------------------------

    def reset(self, admin: psycopg.Connection[Any], name: str, new_name: str) -> Outcome:
        """Reset used database ``name`` as ``new_name``, or say why it must be dropped instead.
        A fault of the admin connection itself is raised (the pool retries)."""
        with self._lock:
            mark = self._marks.pop(name, None)
            uses = self._uses.pop(name, 0)
            dirty = self._dirty.pop(name, set())
        current = name
        try:
            if mark is None or self._baseline is None:
                raise _Fallback("it was not handed out fresh")
            self._wait_alone(admin, name)
            self._rename(admin, name, new_name, mark)
            current = new_name
            next_mark, dirty, uses = self._reset_content(new_name, mark, dirty, uses)
        except _Fallback as exc:
            return self._fell_back(str(exc), current, str(exc))
        except psycopg.errors.UndefinedTable as exc:  # a DELETE of a table the test dropped or renamed
            return self._fell_back("the catalog changed (a table of the template is gone)", current, str(exc))
        except psycopg.Error as exc:
            if admin.broken or admin.closed:
                raise
            return self._fell_back(f"an error during the reset ({type(exc).__name__})", current, str(exc))
        except ProvisioningError as exc:  # could not connect to the database itself
            return self._fell_back("could not connect to the database to reset it", current, exc.problem)
        with self._lock:
            self._marks[new_name] = next_mark
            self._uses[new_name] = uses
            self._dirty[new_name] = dirty
            self.resets += 1
        return Outcome(new_name)

    def failed(self, exc: Exception) -> None:
        """Count a reset that a fault that is no database error (a bug of ours) failed: its database
        is dropped instead, as one that cannot be proved."""
        with self._lock:
            self.fallbacks[f"a fault of pytest-atlas's own during the reset ({type(exc).__name__})"] += 1

    def _fell_back(self, kind: str, name: str, reason: str) -> Outcome:
        with self._lock:
            self.fallbacks[kind] += 1
        return Outcome(None, drop=name, reason=reason)

    def _wait_alone(self, admin: psycopg.Connection[Any], name: str) -> None:
        """Wait (briefly) for the backends of the test's closed connections to exit."""
        deadline = time.monotonic() + _SESSION_WAIT
        delay = 0.0005
        while True:
            row = admin.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s),"
                " (SELECT count(*) FROM pg_prepared_xacts WHERE database = %(db)s),"
                " (SELECT count(*) FROM pg_replication_slots WHERE database = %(db)s)",
                {"db": name},
            ).fetchone()
            assert row is not None
            sessions, prepared, slots = row
            if prepared:
                self._roll_back_prepared(name)
                raise _Fallback("a prepared transaction was left in the database")
            if slots:
                raise _Fallback("a replication slot uses the database")
            if not sessions:
                return
            if time.monotonic() > deadline:
                raise _Fallback("a connection to the database was left open")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _roll_back_prepared(self, name: str) -> None:
        """Roll back the prepared transactions a test left in its database (they would keep the
        database from being dropped; they are the test's own, in a database this run made)."""
        with self.server.admin_connect(name, autocommit=True, retry_for=0) as conn:
            for (gid,) in conn.execute(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()"
            ).fetchall():
                conn.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))

    def _rename(self, admin: psycopg.Connection[Any], name: str, new_name: str, mark: _Mark) -> None:
        """Rename the database (refused while anyone is connected) and check what ALTER DATABASE,
        roles and comments may have changed, in one transaction: on a failed check it stays."""
        assert self._baseline is not None
        changed = sql.SQL(_ROLES_CHANGED).format(mark=sql.Literal(_xid(mark)))
        batch = sql.SQL("BEGIN; SET LOCAL synchronous_commit = on; ALTER DATABASE {} RENAME TO {}; {}").format(
            sql.Identifier(name),
            sql.Identifier(new_name),
            _AFTER_RENAME.format(
                database=_DATABASE, roles=sql.SQL(_ROLES), changed=changed, name=sql.Literal(new_name)
            ),
        )
        committed = False
        try:
            try:
                rows = _results(admin.execute(batch))[-1][1]
            except psycopg.errors.ObjectInUse:
                raise _Fallback("a connection to the database was left open") from None
            row = rows[0] if rows else None
            if row is None or tuple(row[:2]) != tuple(self._baseline.database):
                raise _Fallback(
                    "the database's settings changed or it holds a subscription "
                    "(ALTER DATABASE, COMMENT ON DATABASE, CREATE SUBSCRIPTION)"
                )
            roles, roles_changed, prepared, slots = row[2:]
            if roles != mark.roles or roles_changed:
                raise _Fallback("roles were created, changed or dropped")
            if slots:
                raise _Fallback("a replication slot uses the database")
            if prepared:
                admin.execute("ROLLBACK")
                self._roll_back_prepared(name)
                raise _Fallback("a prepared transaction was left in the database")
            admin.execute("COMMIT")
            committed = True
        finally:
            if not committed and not admin.closed and admin.info.transaction_status != TransactionStatus.IDLE:
                admin.execute("ROLLBACK")

    def _reset_content(self, name: str, mark: _Mark, dirty: set[int], uses: int) -> tuple[_Mark, set[int], int]:
        """Empty, check and restore the renamed database in one transaction, sent as one string:
        every table empty in the template is emptied (under ``session_replication_role = replica``:
        no foreign key action, no ordinary trigger runs), every other relation checked (its row
        count and its rows newer than the mark), every sequence set back, and the next mark read
        (the id of this transaction: every later write has a greater one). When deleting may have
        effects, the check comes first and the deletes, a second check and the sequences follow.
        Returns the next mark, the tables emptied since the last vacuum, and the uses since then."""
        baseline = self._baseline
        assert baseline is not None
        texts = baseline.texts
        head = sql.Composed([_BEGIN, sql.Literal(_xid(mark))])
        with self.server.admin_connect(name, autocommit=True, retry_for=0) as conn:
            if baseline.delete_effects:
                results = _results(conn.execute(_join([head, texts.check, _NEXT_MARK])))
                rows = results[-2][1] or []
                self._check(baseline, rows, emptied=False)
                cleared = [i for i, count, _ in rows if baseline.relations[i].clearable and count]
                tail: list[sql.Composable] = [texts.deletes[i] for i in cleared]
                after = _results(conn.execute(_join([*tail, texts.check, *([texts.restore] if texts.restore else [])])))
                self._check(baseline, after[len(cleared)][1] or [], emptied=True)
            else:
                cleared = list(texts.deletes)
                statements = [head, *texts.deletes.values(), texts.check]
                results = _results(
                    conn.execute(_join([*statements, *([texts.restore] if texts.restore else []), _NEXT_MARK]))
                )
                deleted = results[_HEAD : _HEAD + len(cleared)]
                cleared = [i for i, (count, _) in zip(cleared, deleted, strict=True) if count]
                self._check(baseline, results[_HEAD + len(texts.deletes)][1] or [], emptied=True)
            next_row = (results[-1][1] or [None])[0]
            assert next_row is not None
            conn.execute("COMMIT")
            dirty.update(cleared)
            uses += 1
            if uses >= _VACUUM_EVERY and dirty:
                # reclaim the deleted rows (autovacuum is off on a started server); a vacuum writes
                # no catalog row and no data row, so the next check is not disturbed
                idents = [baseline.relations[i].ident for i in sorted(dirty)]
                conn.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(idents)))
                dirty, uses = set(), 0
        return _Mark(xid=int(next_row[0]), roles=int(next_row[1])), dirty, uses

    def _check(self, baseline: _Baseline, rows: list[Any], *, emptied: bool) -> None:
        """Raises _Fallback when a checked relation differs from the template (``emptied``: the
        clearable tables have been emptied, so they must have no rows)."""
        if len(rows) != len(baseline.texts.checked):
            raise _Fallback("the check of the database's relations returned an unexpected result")
        for i, count, newer in rows:
            rel = baseline.relations[i]
            if rel.clearable:
                if emptied and count:
                    raise _Fallback("deleting the rows left rows behind (a rule or trigger of the schema)")
            elif count != rel.rows or newer:
                if rel.name.startswith(("pg_catalog.", "information_schema.")):
                    raise _Fallback(f"the catalog changed (DDL, TRUNCATE, grants, large objects...: {rel.name})")
                raise _Fallback(f"a table with rows in the template, or a materialized view, changed ({rel.name})")

    def summary(self) -> list[str]:
        """One line for the terminal summary when some databases could not be reset."""
        if not self.fallbacks:
            return []
        reasons = "; ".join(f"{reason}: {n}" for reason, n in self.fallbacks.most_common())
        total = sum(self.fallbacks.values())
        return [
            f"isolation: {self.resets} database(s) reset for the next test, {total} replaced by a fresh clone "
            f"instead ({reasons})"
        ]


def _results(cur: psycopg.Cursor[Any]) -> list[tuple[int, list[Any] | None]]:
    """Each statement's row count and rows (None for a statement without rows) of a
    multi-statement string, in order."""
    found: list[tuple[int, list[Any] | None]] = []
    while True:
        found.append((cur.rowcount, cur.fetchall() if cur.description is not None else None))
        if not cur.nextset():
            return found


#: how the statements of a reset begin (then comes the mark). Its commit, like the rename's, waits
#: for its WAL to be written: a started server commits asynchronously, and a crash (a killed
#: backend restarts the server) would lose the reset after its database was handed out
_BEGIN = sql.SQL(
    "BEGIN; SET LOCAL synchronous_commit = on; SET LOCAL session_replication_role = replica;"
    " SET LOCAL pytest_atlas.mark = "
)
#: the statements of ``_BEGIN``
_HEAD = 4
#: the mark for the next test: this transaction's id, and the roles
_NEXT_MARK = sql.SQL("SELECT txid_current(), {}").format(sql.SQL(_ROLES))


def _join(statements: list[sql.Composable]) -> sql.Composed:
    return sql.SQL("; ").join(statements)


def _xid(mark: _Mark) -> str:
    """The 32-bit transaction id of a mark, as ``age()`` takes it."""
    return str(mark.xid % 2**32)
