"""A factory bound to one database connection (what the ``atlas_factory`` fixture returns)."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import Any

import psycopg

from pytest_atlas.domain import SessionGraph
from pytest_atlas.factories._build import Factory
from pytest_atlas.factories._export import load_export
from pytest_atlas.factories._insert import check_connection, insert_graphs

__all__ = ["BoundFactory"]


class BoundFactory:
    """Creates sessions in one database: ``session()``/``sessions(n)`` insert and return ids,
    ``build()``/``build_many(n)`` return graphs without inserting.

    With ``commit=True`` (the fixture's setting on ``atlas_db``) every create commits, so code under
    test that opens its own connection (``atlas_dsn``) sees the rows; the database is the test's
    own and is dropped afterwards.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], *, seed: int | None = 0, commit: bool = True, learning_keys: int = 3
    ) -> None:
        self.conn = check_connection(conn, "BoundFactory")
        self.factory = Factory(seed, learning_keys=learning_keys)
        self.commit = commit

    @property
    def learning_keys(self) -> list[str]:
        """The keys sessions are spread over when no ``learning_key`` is given."""
        return self.factory.learning_keys

    def _done(self, ids: list[int]) -> list[int]:
        if self.commit and not self.conn.autocommit:
            self.conn.commit()
        return ids

    def session(self, **overrides: Any) -> int:
        """Create one session (overrides as in :meth:`Factory.session`); returns its ``sessions.id``."""
        return self._done([self.factory.create_session(self.conn, **overrides)])[0]

    def sessions(self, n: int, **overrides: Any) -> list[int]:
        """Create ``n`` sessions with COPY; returns their ids (``created_at`` ascending)."""
        return self._done(self.factory.create_sessions(self.conn, n, **overrides))

    def build(self, **overrides: Any) -> SessionGraph:
        """Build one session graph without inserting it."""
        return self.factory.session(**overrides)

    def build_many(self, n: int, **overrides: Any) -> list[SessionGraph]:
        """Build ``n`` session graphs without inserting them."""
        return self.factory.sessions(n, **overrides)

    def insert(self, graphs: SessionGraph | Iterable[SessionGraph]) -> list[int]:
        """Insert graphs you built or drew (e.g. a reward scenario's ``graphs``); returns their ids."""
        items = [graphs] if isinstance(graphs, SessionGraph) else list(graphs)
        return self._done(insert_graphs(self.conn, items))

    def load_export(
        self, path_or_lines: str | PathLike[str] | Iterable[Any], *, keep_export_keys: bool = False
    ) -> list[int]:
        """Insert the sessions of an ``arc-atlas export`` file (see :func:`load_export`)."""
        return self._done(load_export(self.conn, path_or_lines, keep_export_keys=keep_export_keys))
