"""pytest hooks of the database server: report header, keep-db summary, clean exit."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_atlas.errors import AtlasError
from pytest_atlas.fixtures._state import existing_run_state, run_state

_KEPT = "atlas_kept"


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


def pytest_unconfigure(config: pytest.Config) -> None:
    state = existing_run_state(config)
    if state is not None:
        state.close()


def _kept_lines(config: pytest.Config) -> list[str]:
    state = existing_run_state(config)
    server = state.started if state is not None else None
    if state is None or server is None or not state.settings.keep_db:
        return []
    lines = [f"server: {server.redacted_dsn()} ({server.source})"]
    lines += [f"  psql '{server.redacted_dsn(name)}'" for name in state.kept]
    if server.owned and server.data_dir is not None:
        lines.append(
            f"  stop it with: kill -INT $(head -1 {server.data_dir}/postmaster.pid) && rm -rf {server.data_dir.parent}"
        )
    elif not server.owned:
        lines.append("  drop them with DROP DATABASE when done (later runs never touch kept databases)")
    return lines


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what each worker kept."""
    lines = getattr(node, "workeroutput", {}).get(_KEPT, [])
    if lines:
        node.config.stash.setdefault(_WORKER_KEPT, []).extend(lines)


_WORKER_KEPT = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = _kept_lines(config) + config.stash.get(_WORKER_KEPT, [])
    if lines:
        terminalreporter.section("pytest-atlas: kept databases (--atlas-keep-db)")
        for line in lines:
            terminalreporter.write_line(line)
