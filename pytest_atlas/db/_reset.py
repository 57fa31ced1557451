"""Reset isolation: a used test database is proved equal to a fresh clone of its template, then
emptied and handed to the next test, instead of being dropped and cloned again.

A clone creates a few hundred files; on a disk that charges for file creation (CI containers)
that is most of a test's cost. A reset creates none: it deletes rows and moves sequences back.

The proof uses no statistics views (they are asynchronous) and no machinery inside the template
(the tests see exactly the template). It rests on transaction ids: every row version that a test
wrote carries, as ``xmin``, the id of a transaction that began after the database was handed out.
The pool notes ``txid_current()`` (the *mark*) just before handing a database out; after the test,
with nobody connected any more (no open connection, no prepared transaction), a relation whose
visible rows include none newer than the mark and whose row count equals the template's holds
exactly the template's rows (every older visible row was visible at the mark, when the state was
the template's). So, after each test, in one transaction:

* every table of the database's catalogs (``pg_class``, ``pg_attribute``, ``pg_proc``,
  ``pg_largeobject_metadata``, ``pg_extension``, ...; ``pg_statistic`` aside, which only
  ``ANALYZE`` writes) must be unchanged: DDL of any kind, ``TRUNCATE`` (a new file for the
  table), grants, comments, large objects, extensions, even direct writes to a catalog, change one;
* every table that has rows in the template (seeded data) and every materialized view must be
  unchanged: such a table is not restored by copying, the database is replaced by a fresh clone;
* every other table is emptied with ``DELETE`` under ``session_replication_role = replica``, so
  no foreign key and no ordinary trigger runs (when the template has a rule or an ``ENABLE
  ALWAYS`` trigger on such a table, the whole check runs again after the deletes);
* every sequence gets the template's ``last_value`` and ``is_called`` back (``setval``), so a
  sequence moved by hand or by an insert is restored alike;
* cluster-wide: the database's own ``pg_database`` row (``ALTER DATABASE``), its settings
  (``ALTER DATABASE ... SET``), its comment and security label must be as after the clone, no
  role may have been created, changed or dropped, and no replication slot may use it.

The database is renamed before the check (``ALTER DATABASE ... RENAME`` fails while anyone is
connected, so the check is race-free, and code that kept the previous test's DSN cannot reach the
next test's database). Whatever cannot be proved (anything above, a session still connected, an
error) sends the database to be dropped and a fresh clone is made instead: the promise of the
database fixtures (each test starts from exactly the template's state) holds either way.

What a reset does not restore, because no test can see it through SQL data: the physical place of
rows (``ctid``), the sequences' ``log_cnt``, and the statistics (``pg_stat_*``, ``relpages``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

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
    existing server, whose storage is unknown. In memory a clone costs less than the reset's proof
    (benchmarks/bench_server.py), so ``auto`` clones there. ``--atlas-keep-db`` always clones: its
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
        return "clone", f"a fresh clone per test (auto: {where}, where cloning is cheaper than a reset)"
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


@dataclass
class _Baseline:
    """The template's state as a reset compares with it, read once from a fresh clone."""

    relations: list[_Relation]
    sequences: list[_Sequence]
    database: Any
    #: a rule or an ENABLE ALWAYS/REPLICA trigger on a cleared table: deletes may have effects
    delete_effects: bool
    count_query: sql.Composed = field(init=False)
    sequence_query: sql.Composed | None = field(init=False)

    def __post_init__(self) -> None:
        self.count_query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}::int, count(*), count(*) FILTER (WHERE age(xmin) < age(%(mark)s::xid)) FROM {}").format(
                sql.Literal(i), rel.ident
            )
            for i, rel in enumerate(self.relations)
        )
        self.sequence_query = None
        if self.sequences:
            self.sequence_query = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {}::int, last_value, is_called FROM {}").format(sql.Literal(i), seq.ident)
                for i, seq in enumerate(self.sequences)
            )


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

_DATABASE = sql.SQL(
    "SELECT to_jsonb(d) - {volatile},"
    " (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = d.oid)"
    " + (SELECT count(*) FROM pg_shdescription WHERE objoid = d.oid AND classoid = 'pg_database'::regclass)"
    " + (SELECT count(*) FROM pg_shseclabel WHERE objoid = d.oid AND classoid = 'pg_database'::regclass)"
    " FROM pg_database d WHERE datname = %s"
).format(volatile=_DB_VOLATILE)

_ROLES = "SELECT (SELECT count(*) FROM pg_authid) + (SELECT count(*) FROM pg_auth_members)"
_ROLES_CHANGED = (
    "SELECT (SELECT count(*) FROM pg_authid WHERE age(xmin) < age(%(mark)s::xid))"
    " + (SELECT count(*) FROM pg_auth_members WHERE age(xmin) < age(%(mark)s::xid))"
)


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
    """Resets the used databases of one template (see the module docstring). Used by one thread."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._baseline: _Baseline | None = None
        self._marks: dict[str, _Mark] = {}
        self._uses: dict[str, int] = {}
        self._dirty: dict[str, set[int]] = {}
        self.resets = 0
        self.fallbacks: Counter[str] = Counter()

    # -- a fresh clone -------------------------------------------------------------------------------

    def fresh(self, admin: psycopg.Connection[Any], name: str) -> None:
        """Note a database just cloned from the template (before anyone else knows its name)."""
        if self._baseline is None:
            self._baseline = self._read_baseline(admin, name)
        self._marks[name] = self._mark(admin)
        self._uses[name] = 0
        self._dirty[name] = set()

    def forget(self, name: str) -> None:
        self._marks.pop(name, None)
        self._uses.pop(name, None)
        self._dirty.pop(name, None)

    def _mark(self, admin: psycopg.Connection[Any]) -> _Mark:
        row = admin.execute(sql.SQL("SELECT txid_current(), ({})").format(sql.SQL(_ROLES))).fetchone()
        assert row is not None
        return _Mark(xid=int(row[0]), roles=int(row[1]))

    def _read_baseline(self, admin: psycopg.Connection[Any], name: str) -> _Baseline:
        database = admin.execute(_DATABASE, (name,)).fetchone()
        with self.server.admin_connect(name, autocommit=True, retry_for=0) as conn:
            listed = conn.execute(_RELATIONS).fetchall()
            relations = [
                _Relation(sql.Identifier(nsp, rel), f"{nsp}.{rel}", 0, clearable=False) for nsp, rel, _, _ in listed
            ]
            counts = _Baseline(relations, [], None, delete_effects=False).count_query
            rows = {i: n for i, n, _ in conn.execute(counts, {"mark": "0"}).fetchall()}
            relations = [
                _Relation(rel.ident, rel.name, rows[i], clearable=kind == "r" and not catalog and rows[i] == 0)
                for i, (rel, (_, _, kind, catalog)) in enumerate(zip(relations, listed, strict=True))
            ]
            sequences = []
            for oid, nsp, rel in conn.execute(_SEQUENCES).fetchall():
                ident = sql.Identifier(nsp, rel)
                value = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(ident)).fetchone()
                assert value is not None
                sequences.append(_Sequence(int(oid), ident, int(value[0]), bool(value[1])))
            names = [rel.name for rel in relations if rel.clearable]
            effects = conn.execute(_DELETE_EFFECTS, {"oids": names}).fetchone()
        return _Baseline(relations, sequences, database, delete_effects=bool(effects and effects[0]))

    # -- a used database -----------------------------------------------------------------------------

    def reset(self, admin: psycopg.Connection[Any], name: str, new_name: str) -> Outcome:
        """Reset used database ``name`` as ``new_name``, or say why it must be dropped instead.
        A fault of the admin connection itself is raised (the pool retries)."""
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
            self._reset_content(new_name, mark, dirty)
            if uses + 1 >= _VACUUM_EVERY and dirty:
                self._vacuum(new_name, dirty)
                dirty, uses = set(), -1
        except _Fallback as exc:
            self.fallbacks[str(exc)] += 1
            return Outcome(None, drop=current, reason=str(exc))
        except psycopg.Error as exc:
            if admin.broken or admin.closed:
                raise
            self.fallbacks[f"an error during the reset ({type(exc).__name__})"] += 1
            return Outcome(None, drop=current, reason=str(exc))
        except ProvisioningError as exc:  # could not connect to the database itself
            self.fallbacks["could not connect to the database to reset it"] += 1
            return Outcome(None, drop=current, reason=exc.problem)
        self._marks[new_name] = self._mark(admin)
        self._uses[new_name] = uses + 1
        self._dirty[new_name] = dirty
        self.resets += 1
        return Outcome(new_name)

    def _wait_alone(self, admin: psycopg.Connection[Any], name: str) -> None:
        """Wait (briefly) for the backends of the test's closed connections to exit."""
        deadline = time.monotonic() + _SESSION_WAIT
        delay = 0.001
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
        with admin.transaction():
            try:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(new_name))
                )
            except psycopg.errors.ObjectInUse:
                raise _Fallback("a connection to the database was left open") from None
            row = admin.execute(_DATABASE, (new_name,)).fetchone()
            if row is None or row != self._baseline.database:
                raise _Fallback("the database's settings changed (ALTER DATABASE, COMMENT ON DATABASE)")
            query = sql.SQL("SELECT ({}), ({})").format(sql.SQL(_ROLES), sql.SQL(_ROLES_CHANGED))
            roles = admin.execute(query, {"mark": _xid(mark)}).fetchone()
            if roles is None or roles[0] != mark.roles or roles[1]:
                raise _Fallback("roles were created, changed or dropped")

    def _reset_content(self, name: str, mark: _Mark, dirty: set[int]) -> None:
        baseline = self._baseline
        assert baseline is not None
        params = {"mark": _xid(mark)}
        with self.server.admin_connect(name, retry_for=0) as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            cleared = self._check(conn, baseline, params)
            for i in cleared:
                conn.execute(sql.SQL("DELETE FROM {}").format(baseline.relations[i].ident))
            if cleared and baseline.delete_effects and self._check(conn, baseline, params):
                raise _Fallback("deleting the rows left rows behind (a rule or trigger of the schema)")
            self._restore_sequences(conn, baseline)
            conn.commit()
        dirty.update(cleared)

    def _check(self, conn: psycopg.Connection[Any], baseline: _Baseline, params: dict[str, str]) -> list[int]:
        """The clearable tables that have rows; raises _Fallback when anything else differs."""
        cleared: list[int] = []
        for i, count, newer in conn.execute(baseline.count_query, params).fetchall():
            rel = baseline.relations[i]
            if rel.clearable:
                if count:
                    cleared.append(i)
            elif count != rel.rows or newer:
                if rel.name.startswith(("pg_catalog.", "information_schema.")):
                    raise _Fallback(f"the catalog changed (DDL, TRUNCATE, grants, large objects...: {rel.name})")
                raise _Fallback(f"a table with rows in the template, or a materialized view, changed ({rel.name})")
        return cleared

    def _restore_sequences(self, conn: psycopg.Connection[Any], baseline: _Baseline) -> None:
        if baseline.sequence_query is None:
            return
        for i, last_value, is_called in conn.execute(baseline.sequence_query).fetchall():
            seq = baseline.sequences[i]
            if (last_value, is_called) != (seq.last_value, seq.is_called):
                conn.execute("SELECT setval(%s::oid::regclass, %s, %s)", (seq.oid, seq.last_value, seq.is_called))

    def _vacuum(self, name: str, tables: set[int]) -> None:
        """Reclaim the deleted rows of the cleared tables (autovacuum is off on a started server);
        a vacuum writes no catalog row and no data row, so the next check is not disturbed."""
        assert self._baseline is not None
        with self.server.admin_connect(name, autocommit=True, retry_for=0) as conn:
            idents = [self._baseline.relations[i].ident for i in sorted(tables)]
            conn.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(idents)))

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


def _xid(mark: _Mark) -> str:
    """The 32-bit transaction id of a mark, as ``age()`` takes it."""
    return str(mark.xid % 2**32)
