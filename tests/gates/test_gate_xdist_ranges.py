"""A gates run with the contract checks split into id ranges, under pytest-xdist: the gates force
scope scheduling (a marker gate runs on its test's worker), yet the ranges of a column are spread
over the workers, as in a run without gates, not all sent to one of them."""

from __future__ import annotations

import random
import re
from typing import Any

import psycopg
import pytest

from .gates_seed import insert, session_row

HARNESS = """
import pytest


@pytest.mark.atlas_gate("floor", kind="threshold", threshold=0.5)
def test_harness():
    pass
"""


def test_the_ranges_of_a_column_run_on_every_worker_in_a_gates_run(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    rng = random.Random(5)
    insert(atlas_db, [session_row(min(1.0, round(rng.gauss(0.85, 0.05), 4)), minute=i) for i in range(40)])
    atlas_db.commit()
    pytester.makepyfile(test_harness=HARNESS)
    result = pytester.runpytest_subprocess(
        "--atlas-gates",
        "--atlas-contract",
        f"--atlas-target={atlas_dsn}",
        "--atlas-contract-split-rows=4",
        "--atlas-with-tests",
        "-p",
        "no:randomly",
        "-n",
        "2",
        "-v",
    )
    out = result.stdout.str()
    ranges = re.findall(r"\[(gw\d+)\] \[ *\d+%\] \w+ atlas-contract::sessions\.metadata\[(\d+)/(\d+)\]", out)
    assert len(ranges) == int(ranges[0][2]) >= 8, out  # every range ran (40 sessions, 4 a range)
    assert {worker for worker, _, _ in ranges} == {"gw0", "gw1"}, out
    # and the marker gate still runs after its test, on the same worker
    harness = re.findall(r"\[(gw\d+)\] \[ *\d+%\] (\w+) test_harness\.py::(\S+)", out)
    assert [(name, outcome) for _, outcome, name in harness] == [
        ("test_harness", "PASSED"),
        ("atlas_gate[floor]", "PASSED"),
    ], out
    assert len({worker for worker, _, _ in harness}) == 1, out
