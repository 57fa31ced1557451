"""Rolled-back blocks: the isolation used by ``atlas_tx`` and by each Hypothesis example."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, overload

import psycopg
from psycopg.transaction import AsyncTransaction, Transaction

__all__ = ["rollback"]


@overload
def rollback(conn: psycopg.Connection[Any]) -> AbstractContextManager[Transaction]: ...
@overload
def rollback(conn: psycopg.AsyncConnection[Any]) -> AbstractAsyncContextManager[AsyncTransaction]: ...
def rollback(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
) -> AbstractContextManager[Transaction] | AbstractAsyncContextManager[AsyncTransaction]:
    """A block whose changes are always rolled back: ``with rollback(conn): ...``.

    Inside a transaction (``atlas_tx``, or after any statement on a non-autocommit connection) it is
    a savepoint; otherwise a transaction. Use it to run each Hypothesis example in isolation, since
    function-scoped fixtures are not reset between the examples of one ``@given`` test::

        @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(graph=session_graphs())
        def test_export(atlas_tx, graph):
            with rollback(atlas_tx):
                insert_graph(atlas_tx, graph)
                ...

    For an ``AsyncConnection`` use ``async with rollback(aconn):``. Inside the block, calling
    ``commit()`` on the connection raises ``psycopg.ProgrammingError``.
    """
    return conn.transaction(force_rollback=True)
