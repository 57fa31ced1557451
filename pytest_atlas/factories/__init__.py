"""Factories: realistic Atlas sessions in one line, as plain data or inserted rows.

Build (no database) or create (inserted with COPY, ids returned)::

    from pytest_atlas import factories

    graph = factories.session(failed=True)                 # a SessionGraph of plain dicts
    graphs = factories.sessions(20, learning_key="k")      # twenty, created_at ascending
    ids = factories.create_sessions(conn, 1000)            # drift assessed as Atlas does, in time order
    factories.session(learning_key="k", drifting=True)     # an alert against k's twenty earlier sessions
    factories.insert_graphs(conn, graphs)                   # any graphs, e.g. drawn by Hypothesis
    factories.load_export(conn, "export.jsonl")             # replay `arc-atlas export` output

The module-level functions share one :class:`Factory` seeded with 0 whose sequences (task numbers,
learning keys, times) continue from call to call; create a ``Factory(seed)`` of your own, or use the
``atlas_factory`` fixture (one per test, bound to the test's database), for repeatable data.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pytest_atlas.domain import SessionGraph, to_export
from pytest_atlas.factories._bound import BoundFactory
from pytest_atlas.factories._build import TRAITS, Factory, Sequence, sequence
from pytest_atlas.factories._export import graph_from_export, load_export, read_export
from pytest_atlas.factories._insert import insert_graph, insert_graphs, insert_rows

__all__ = [
    "TRAITS",
    "BoundFactory",
    "Factory",
    "Sequence",
    "SessionGraph",
    "create_session",
    "create_sessions",
    "graph_from_export",
    "insert_graph",
    "insert_graphs",
    "insert_rows",
    "load_export",
    "read_export",
    "sequence",
    "session",
    "sessions",
    "to_export",
]

_default = Factory(seed=0)


def session(**overrides: Any) -> SessionGraph:
    """Build one session graph with the shared factory (see :meth:`Factory.session`)."""
    return _default.session(**overrides)


def sessions(n: int, **overrides: Any) -> list[SessionGraph]:
    """Build ``n`` session graphs with the shared factory (see :meth:`Factory.sessions`)."""
    return _default.sessions(n, **overrides)


def create_session(conn: psycopg.Connection[Any], **overrides: Any) -> int:
    """Build and insert one session; returns its ``sessions.id``."""
    return _default.create_session(conn, **overrides)


def create_sessions(conn: psycopg.Connection[Any], n: int, **overrides: Any) -> list[int]:
    """Build and insert ``n`` sessions with COPY; returns their ids."""
    return _default.create_sessions(conn, n, **overrides)
