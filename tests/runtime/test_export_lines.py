"""Atlas's own exporter (``arc-atlas export``: atlas.cli.jsonl_writer.export_sessions) on sessions
Atlas's runtime wrote: every line it writes validates against the export-trace schema, and
load_export() reads Atlas's file back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg

from pytest_atlas import iter_errors, rollback
from pytest_atlas.factories import load_export
from pytest_atlas.runtime import AtlasRuntime, ProviderError
from tests.factories.test_export import atlas_export

from .corpus import CALLER, RICH_CALLER


def test_atlas_export_of_runtime_sessions_is_valid(
    atlas_dsn: str, atlas_tx: psycopg.Connection[Any], tmp_path: Path
) -> None:
    runtime = AtlasRuntime(atlas_dsn)
    try:
        for score in (0.82, 0.8, 0.85, 0.79, 0.81, 0.15):
            runtime.run("Summarise the payments incident", score=score, metadata=CALLER)
        runtime.run("Summarise the payments incident", mode="coach", guidance="Name the failing service.")
        runtime.run("Summarise the payments incident", mode="paired", escalate=True, guidance="Cite the logs.")
        runtime.run("Draft the reply", answer={"status": "ok", "result": {"deliverable": "Draft."}})
        runtime.run("Crash early", fail=True)
        runtime.run("Triage a rich request", metadata=RICH_CALLER)
        runtime.run("Judges down", responses={"judge": ProviderError("rate limited")})
    finally:
        runtime.close()
    path = tmp_path / "export.jsonl"
    asyncio.run(atlas_export(atlas_dsn, path))
    lines = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12
    problems = [
        f"line {number}: {violation.format()}"
        for number, line in enumerate(lines, 1)
        for violation in iter_errors(line, "export-trace")
    ]
    assert problems == []
    with rollback(atlas_tx):
        assert len(load_export(atlas_tx, path)) == 12
