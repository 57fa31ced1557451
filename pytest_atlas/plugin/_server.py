"""pytest hooks of the database server: report header, keep-db and clean-up summary, clean exit."""

from __future__ import annotations

import contextlib
import shlex
from typing import Any

import pytest

from pytest_atlas._dsn import hide_dsn_passwords
from pytest_atlas._table import render_table
from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures import HOT_DECISION, ROOM_DECISION, existing_run_state, run_state

_KEPT = "atlas_kept"
_NOTES = "atlas_notes"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--atlas-cache-info / --atlas-cache-clear: the janitor's report instead of a test run."""
    if not (config.getoption("atlas_cache_info", None) or config.getoption("atlas_cache_clear", None)):
        return None
    from pytest_atlas.db import cache_report, clear_cache_lines
    from pytest_atlas.plugin import _read_settings

    try:
        settings = _read_settings(config)
    except AtlasError as exc:
        from pytest_atlas.plugin._scrub import usage_error

        raise usage_error(exc) from None
    status = 0
    if settings.cache_clear:
        lines, status = clear_cache_lines(settings.cache_dir, settings.data_dir)
    else:
        lines = cache_report(settings.cache_dir, settings.data_dir).lines()
    for line in lines:
        print(hide_dsn_passwords(line))  # (a folder given may be a DSN pasted into the wrong place)
    return status


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before any test (on a pytest-xdist run's controller): the run decides on its data folder and
    reserves its room there, so that another run of the account starting at once counts it. A data
    folder without room for the servers of all its workers is a usage error (each worker alone
    would see room for its own server, start it, and the run would run out of space mid-run), and
    so is one whose room another live run holds."""
    if hasattr(config, "workerinput") or config.getoption("collectonly", False) or config.getoption("help", False):
        return
    state = run_state(config)
    settings = state.settings
    if settings.dsn is not None:
        return
    from pytest_atlas.db import NoSpaceError, refuse_crowded

    try:
        plan = state.plan()
    except AtlasError:
        return  # no server can start at all: the header and every test that needs one say why
    where = settings.sources.get("data_dir", "--atlas-data-dir") if settings.data_dir is not None else "data folder"
    try:
        refuse_crowded(plan, where)
    except NoSpaceError as exc:
        from pytest_atlas.plugin._scrub import usage_error

        raise usage_error(exc) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand each worker the run's decision on the in-memory cache tier (made for
    the servers of all workers), so that no worker weighs the copy against its own server only, and
    the data folder it chose with its reservation there (the workers' servers are counted in it)."""
    state = existing_run_state(node.config)
    plan = state.planned if state is not None else None
    if plan is not None and plan.hot_decision is not None:
        node.workerinput[HOT_DECISION] = plan.hot_decision
    if plan is not None and plan.base is not None and not plan.base.private and plan.room_token is not None:
        node.workerinput[ROOM_DECISION] = {"base": str(plan.base.path), "token": plan.room_token}


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = run_state(config)
    try:
        lines = state.plan().header()
    except AtlasError as exc:
        lines = [f"atlas: no server: {exc.problem.splitlines()[0]} (tests that use the database will fail)"]
    # the folders it names are the settings' (a DSN given as --atlas-data-dir shows no password)
    return [hide_dsn_passwords(line) for line in lines]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = existing_run_state(config)
    if state is not None:
        state.close()
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_KEPT] = _kept_lines(config)
        workeroutput[_NOTES] = state.notes if state is not None else []


def pytest_unconfigure(config: pytest.Config) -> None:
    state = existing_run_state(config)
    if state is not None:
        state.close()


def _kept_lines(config: pytest.Config) -> list[str]:
    """How to reach what --atlas-keep-db kept: a table test id -> database -> a command that works
    when pasted by the same user (the DSNs carry no password; a TCP server's or a password DSN's
    passfile is named in them), and how to remove it all. Also written to the run folder, where
    ``python -m pytest_atlas kept`` finds it."""
    state = existing_run_state(config)
    server = state.started if state is not None else None
    if state is None or server is None or not state.settings.keep_db:
        return []
    rows = [
        [state.owners.get(name, "(a template or a spare clone)"), name, f"psql {shlex.quote(server.dsn(name))}"]
        for name in state.kept
    ]
    lines = [f"server: {server.redacted_dsn()} ({server.source})"]
    if rows:
        lines += render_table([["test", "database", "connect"], *rows]).splitlines()
    run_dir = server.run_dir
    if run_dir is not None:
        from pytest_atlas.db import write_kept_manifest

        with contextlib.suppress(OSError):
            write_kept_manifest(run_dir, rows)
    if server.owned and server.data_dir is not None and run_dir is not None:
        lines.append("  remove every kept server of yours with: python -m pytest_atlas kept --remove")
        # not a shell line that signals the id in postmaster.pid: the server's account writes that
        # file, and a root who pasted the line would signal (and print) whatever it names
        lines.append(f"  or just this one with: python -m pytest_atlas kept --remove {shlex.quote(str(run_dir))}")
    elif not server.owned:
        lines.append(
            "  drop them with: python -m pytest_atlas kept --remove --dsn DSN (or DROP DATABASE; "
            "later runs never touch kept databases)"
        )
        if run_dir is not None:
            lines.append(f"  then remove the passfile's folder: rm -rf {shlex.quote(str(run_dir))}")
    return lines


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what each worker kept and noted."""
    output = getattr(node, "workeroutput", {})
    node.config.stash.setdefault(_WORKER_KEPT, []).extend(output.get(_KEPT, []))
    node.config.stash.setdefault(_WORKER_NOTES, []).extend(output.get(_NOTES, []))


_WORKER_KEPT = pytest.StashKey[list[str]]()
_WORKER_NOTES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = _kept_lines(config) + config.stash.get(_WORKER_KEPT, [])
    if lines:
        terminalreporter.section("pytest-atlas: kept databases (--atlas-keep-db)")
        for line in lines:
            terminalreporter.write_line(hide_dsn_passwords(line))
    state = existing_run_state(config)
    notes = (state.notes if state is not None else []) + config.stash.get(_WORKER_NOTES, [])
    if notes:
        terminalreporter.section("pytest-atlas: clean-up")
        for note in dict.fromkeys(notes):
            terminalreporter.write_line(hide_dsn_passwords(note))
