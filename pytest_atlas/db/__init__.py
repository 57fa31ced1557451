"""PostgreSQL for tests: finding binaries, starting (cached, root-safe, private) or attaching to a
server, templates and per-test clones. The public names are re-exported from :mod:`pytest_atlas`."""

from __future__ import annotations

from pytest_atlas._dsn import redact
from pytest_atlas.db._account import server_account
from pytest_atlas.db._clones import ClonePool, DatabaseManager
from pytest_atlas.db._connect import SERVER_SETTING, TARGET_SETTING, Backoff, connect_clearly, connection_error
from pytest_atlas.db._external import attach_server
from pytest_atlas.db._fs import (
    NoSpaceError,
    UnsafePathError,
    UnusableFolderError,
    append_output,
    check_output,
    write_output,
)
from pytest_atlas.db._isolation import rollback
from pytest_atlas.db._janitor import (
    cache_report,
    clear_cache_lines,
    drop_kept_databases,
    kept_databases,
    kept_runs,
    remove_kept,
    write_kept_manifest,
)
from pytest_atlas.db._postgres import AtlasPostgres
from pytest_atlas.db._reset import choose_isolation, data_on_tmpfs, reset_refusal
from pytest_atlas.db._runtime import check_data_dir, remove_private_base
from pytest_atlas.db._seed import Seed
from pytest_atlas.db._server import ServerPlan, plan_server, refuse_crowded, start_server
from pytest_atlas.db._target import (
    READ_AGAIN_FOR,
    QueryProblem,
    connect_target,
    describe_target,
    query_problem,
    read_again,
)

__all__ = [
    "READ_AGAIN_FOR",
    "SERVER_SETTING",
    "TARGET_SETTING",
    "AtlasPostgres",
    "Backoff",
    "ClonePool",
    "DatabaseManager",
    "NoSpaceError",
    "QueryProblem",
    "Seed",
    "ServerPlan",
    "UnsafePathError",
    "UnusableFolderError",
    "append_output",
    "attach_server",
    "cache_report",
    "check_data_dir",
    "check_output",
    "choose_isolation",
    "clear_cache_lines",
    "connect_clearly",
    "connect_target",
    "connection_error",
    "data_on_tmpfs",
    "describe_target",
    "drop_kept_databases",
    "kept_databases",
    "kept_runs",
    "plan_server",
    "query_problem",
    "read_again",
    "redact",
    "refuse_crowded",
    "remove_kept",
    "remove_private_base",
    "reset_refusal",
    "rollback",
    "server_account",
    "start_server",
    "write_kept_manifest",
    "write_output",
]
