"""The scratch databases of the benchmarks that measure large tables: built once, reused by the next run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import dsn_with_dbname
from pytest_atlas._resources import schema_path


def scratch_database(dsn: str, name: str, rows: int, fill: Callable[[psycopg.Connection[Any]], object]) -> bool:
    """Make ``name`` on the server of ``dsn`` a database with Atlas's schema whose ``sessions`` holds
    ``rows`` rows, ``fill`` inserting them; a database of that name that already holds exactly
    ``rows`` sessions is reused (another count is an interrupted build: it is dropped and rebuilt).
    Returns whether it was built."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with psycopg.connect(dsn_with_dbname(dsn, name)) as conn:
                try:
                    count = conn.execute("SELECT count(*) FROM sessions").fetchone()
                except psycopg.errors.UndefinedTable:  # interrupted before the schema was loaded
                    count = None
            if count == (rows,):
                return False
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))  # an interrupted build
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dsn_with_dbname(dsn, name), autocommit=True) as conn:
        conn.execute(schema_path().read_text())
        fill(conn)
        conn.execute("VACUUM ANALYZE sessions")
    return True
