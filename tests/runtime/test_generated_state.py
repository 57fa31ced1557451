"""Atlas's runtime reading generated data: a learning registry row drawn by the strategies and
factory sessions on the same learning key are what Atlas finds when it runs on that key. Atlas
reads them (learning state, playbook entries and their usage, learning history, reward baseline)
without an error, and everything it writes on top validates."""

from __future__ import annotations

from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_atlas import check_database
from pytest_atlas.factories import Factory, insert_graphs, insert_rows
from pytest_atlas.runtime import AtlasRuntime
from pytest_atlas.strategies import learning_registry_rows

KEY = "f" * 64


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(row=learning_registry_rows(learning_key=KEY), seed=st.integers(0, 2**16))
def test_atlas_runs_on_generated_state(atlas_dsn: str, row: dict[str, Any], seed: int) -> None:
    with psycopg.connect(atlas_dsn) as conn:  # the runtime writes through its own connections: commit
        conn.execute("TRUNCATE sessions, learning_registry, discovery_runs RESTART IDENTITY CASCADE")
        insert_graphs(conn, Factory(seed).sessions(8, learning_key=KEY))
        insert_rows(conn, "learning_registry", [row])
    runtime = AtlasRuntime(atlas_dsn)
    try:
        runtime.run("Count the rows of orders", learning_key=KEY)
        assert runtime.last.status == "succeeded"
        runtime.run("Count the rows of orders", learning_key=KEY, mode="coach")
        assert runtime.last.status == "succeeded"
    finally:
        runtime.close()
    report = check_database(atlas_dsn)
    assert report.ok, str(report)
