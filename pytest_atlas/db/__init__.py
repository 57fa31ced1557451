"""PostgreSQL for tests: finding binaries, starting (cached, root-safe, private) or attaching to a
server, templates and per-test clones. The public names are re-exported from :mod:`pytest_atlas`."""

from __future__ import annotations

from pytest_atlas._dsn import redact
from pytest_atlas.db._account import server_account
from pytest_atlas.db._clones import ClonePool, DatabaseManager
from pytest_atlas.db._connect import SERVER_SETTING, TARGET_SETTING, connect_clearly, connection_error
from pytest_atlas.db._external import attach_server
from pytest_atlas.db._isolation import rollback
from pytest_atlas.db._postgres import AtlasPostgres
from pytest_atlas.db._server import ServerPlan, plan_server, start_server
from pytest_atlas.db._target import connect_target, describe_target

__all__ = [
    "SERVER_SETTING",
    "TARGET_SETTING",
    "AtlasPostgres",
    "ClonePool",
    "DatabaseManager",
    "ServerPlan",
    "attach_server",
    "connect_clearly",
    "connect_target",
    "connection_error",
    "describe_target",
    "plan_server",
    "redact",
    "rollback",
    "server_account",
    "start_server",
]
