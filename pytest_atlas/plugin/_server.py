"""pytest hooks of the database server: report header, keep-db and clean-up summary, clean exit."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures import existing_run_state, run_state

_KEPT = "atlas_kept"
_NOTES = "atlas_notes"


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = run_state(config)
    try:
        return state.plan().header()
    except AtlasError as exc:
        return [f"atlas: no server: {exc.problem.splitlines()[0]} (tests that use the database will fail)"]


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
    """How to reach what --atlas-keep-db kept: commands that work when pasted by the same user (the
    DSNs carry no password; a TCP server's or a password DSN's passfile is named in them)."""
    state = existing_run_state(config)
    server = state.started if state is not None else None
    if state is None or server is None or not state.settings.keep_db:
        return []
    lines = [f"server: {server.redacted_dsn()} ({server.source})"]
    lines += [f"  psql {shlex.quote(server.dsn(name))}" for name in state.kept]
    run_dir = server.run_dir
    if server.owned and server.data_dir is not None and run_dir is not None:
        pid = shlex.quote(str(server.data_dir / "postmaster.pid"))
        lines.append(f"  stop it with: kill -INT $(head -1 {pid}) && rm -rf {shlex.quote(str(run_dir))}")
    elif not server.owned:
        lines.append("  drop them with DROP DATABASE when done (later runs never touch kept databases)")
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
            terminalreporter.write_line(line)
    state = existing_run_state(config)
    notes = (state.notes if state is not None else []) + config.stash.get(_WORKER_NOTES, [])
    if notes:
        terminalreporter.section("pytest-atlas: clean-up")
        for note in dict.fromkeys(notes):
            terminalreporter.write_line(note)
