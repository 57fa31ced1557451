"""Seeded templates: a family's template with the rows a user's ``fill(conn)`` wrote.

A seeded template is made once per server (once per run, and per xdist worker, since each worker
has its own server) the first time a test of the family needs a database: a plain clone of the
schema template, then ``fill(conn)`` on a connection to it, one commit, and the database closed to
connections. Every database of the family is then a clone of it, at the cost of a plain clone.

It is never stored across runs, so it can never be stale: a changed ``fill``, or a changed file
that ``fill`` reads, takes effect in the next run. Its identity within a run is the seed key: the
one the user gives (``seed_key=``), else the fill function's module and qualified name together
with the function object itself, so two families share a seeded template only when they name the
same fill (or the same key) on the same schema files.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import scrub
from pytest_atlas.db._connect import is_transient, one_line
from pytest_atlas.db._postgres import AtlasPostgres, clone_database, drop_database
from pytest_atlas.errors import SeedError, ServerUnavailable

__all__ = ["Seed", "create_seeded_template"]

#: a user's seed function: it gets a connection (autocommit off) to the family's template
Fill = Callable[[psycopg.Connection[Any]], object]


@dataclass(frozen=True)
class Seed:
    """A seed function and the key that names what it writes."""

    fill: Fill = field(compare=False)
    #: the user's key, or "" (then the fill function itself is the identity)
    user_key: str = ""

    @property
    def name(self) -> str:
        """The fill function as messages name it (``conftest.fill_sessions``)."""
        module = getattr(self.fill, "__module__", None) or "?"
        qualname = getattr(self.fill, "__qualname__", None) or type(self.fill).__name__
        return f"{module}.{qualname}"

    @property
    def key(self) -> str:
        """What tells two seeds apart within a run (part of the template's name)."""
        identity = f"key:{self.user_key}" if self.user_key else f"fn:{self.name}@{id(self.fill)}"
        return hashlib.sha256(identity.encode()).hexdigest()[:16]


def create_seeded_template(
    server: AtlasPostgres, name: str, base_template: str, seed: Seed, *, keep: bool = False
) -> None:
    """Create ``name`` as a clone of ``base_template``, run the seed's fill on it, commit, and close
    it to connections. A fill that raises, or leaves the transaction failed, drops the database
    again and raises :class:`~pytest_atlas.errors.SeedError` with the fill's traceback (or, when the
    connection itself was cut, :class:`~pytest_atlas.errors.ServerUnavailable`: not the fill's fault)."""
    with server.admin_connect(autocommit=True) as admin:
        clone_database(admin, server, name, base_template, keep=keep)
        try:
            _fill(server, name, seed)
        except BaseException:
            drop_database(admin, name, server.version_num, connect=server.drop_connect)
            raise
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
    server.made_template(name)


def _fill(server: AtlasPostgres, name: str, seed: Seed) -> None:
    with server.connect(name) as conn:
        try:
            seed.fill(conn)
            conn.commit()
        except Exception as exc:
            if isinstance(exc, psycopg.Error) and (conn.broken or is_transient(exc)):
                # the server's fault, not the fill's: it may pass, so it is not remembered
                raise ServerUnavailable(
                    f"the connection to the family's template was cut while the seed function {seed.name} "
                    f"ran: {scrub(one_line(exc))}",
                    hint="the next test of the family tries again; if it keeps happening, see the server's log",
                ) from None
            # the fill's traceback, its exceptions chained, without a secret this run knows (the fill
            # may quote the DSN it was configured with) nor any URL's or password= pair's password
            shown = scrub("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[1:]).rstrip())
            raise SeedError(
                f"the seed function {seed.name} failed on the family's template: {scrub(one_line(exc))}\n{shown}",
                hint="fix the seed function (it runs once per run and worker, before the family's first "
                "test; the traceback above starts in it)",
            ) from None
