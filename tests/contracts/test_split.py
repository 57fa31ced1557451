"""A big table's scan split into id-range items (``--atlas-contract-split-rows``): the ranges merge into
exactly the report of one scan, with or without pytest-xdist, and a range never passes a check alone."""

from __future__ import annotations

import collections
import itertools
import json
import re
from datetime import date
from typing import Any

import psycopg
import pytest

from pytest_atlas.contracts import IdRange, merge_parts, plan_ranges, resolve_targets, run_checks

from . import contract_documents as D
from . import fill

Conn = psycopg.Connection[Any]

METADATA = resolve_targets(["sessions.metadata"], None)


def _sessions(conn: Conn) -> dict[str, Any]:
    """Sessions with ids 1-… and, after a gap, 1001-…: errors, quirks, unknown keys (600 distinct in
    one row, past the census's listing cap), an integer too long for 64 bits; what a report must say."""
    fill.clean_database(conn)
    bad_score = D.session_metadata()
    bad_score["reward_stats"]["score"] = "0.9"
    first_bad = fill.session(conn, bad_score)
    for index in range(4):
        fill.session(conn, {**D.session_metadata(), "tags": "latency", "team": "sre" if index % 2 else 7})
    huge = fill.session(conn, {**D.session_metadata(), "ticket": 123456789012345678901234567890})
    fill.session(conn, {**D.session_metadata(), **{f"k_{index}": index for index in range(600)}})
    conn.execute("SELECT setval(pg_get_serial_sequence('sessions', 'id'), 1000)")
    second_bad = fill.session(conn, {**bad_score, "ticket": -123456789012345678901234567890})
    for _ in range(3):
        fill.session(conn, {**D.session_metadata(), "team": "sre"})
    conn.commit()
    count = conn.execute("SELECT count(*) FROM sessions").fetchone()
    assert count is not None
    return {"bad": [first_bad, second_bad], "huge": huge, "rows": int(count[0])}


def _run(pytester: pytest.Pytester, dsn: str, name: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    summary = pytester.path / f"{name}.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest(
        "--atlas-contract",
        f"--atlas-target={dsn}",
        f"--atlas-report={pytester.path / name}.json",
        "-p",
        "no:randomly",
        "-rf",
        *args,
    )
    report = json.loads((pytester.path / f"{name}.json").read_text())
    report.pop("created")
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "= atlas contract =" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("atlas report:", "=")))
    failed = sorted(line.split(" - ")[0] for line in lines if line.startswith("FAILED "))
    return result, report, summary.read_text(), lines[start:end], failed


def _without_parts(report: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(report))
    for payload in out["results"]["contract"]:
        payload.pop("parts", None)
    return out


def test_split_scan_reports_exactly_like_one_scan_with_and_without_workers(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _sessions(atlas_db)
    whole, whole_json, whole_md, whole_section, whole_failed = _run(
        pytester, atlas_dsn, "whole", "--atlas-contract-split-rows=0", monkeypatch=monkeypatch
    )
    alone, alone_json, alone_md, alone_section, alone_failed = _run(
        pytester, atlas_dsn, "alone", "--atlas-contract-split-rows=5", "-n", "0", monkeypatch=monkeypatch
    )
    workers, workers_json, workers_md, workers_section, workers_failed = _run(
        pytester, atlas_dsn, "workers", "--atlas-contract-split-rows=5", "-n", "2", monkeypatch=monkeypatch
    )
    # the sessions table (18 rows, ids up to 1,004) is split into 4 ranges, two of them empty
    assert "atlas-contract::sessions.metadata[4/4]" in "\n".join(alone.stdout.lines + alone_failed)
    assert [p["parts"] for p in alone_json["results"]["contract"] if p["name"] == "sessions.metadata"] == [
        [f"atlas-contract::sessions.metadata[{index}/4]" for index in range(1, 5)]
    ]
    # with -n 0 and -n 2: the same items fail, the same JSON report, step summary and section
    assert alone_failed == workers_failed
    assert "FAILED atlas-contract::sessions.metadata[1/4]" in alone_failed
    assert "FAILED atlas-contract::sessions.metadata[4/4]" in alone_failed
    assert alone_json == workers_json
    assert alone_md == workers_md
    assert alone_section == workers_section
    assert whole.ret == alone.ret == workers.ret == 1
    # and the same as one scan: one check per column, one verdict, the same census and groups
    assert _without_parts(alone_json) == whole_json
    assert alone_md == whole_md
    assert [line for line in alone_section if not line.startswith("(")] == whole_section
    assert whole_failed == ["FAILED atlas-contract::sessions.metadata"]
    metadata = next(p for p in alone_json["results"]["contract"] if p["name"] == "sessions.metadata")
    assert metadata["outcome"] == "fail" and metadata["row"]["rows"] == ids["rows"]
    details = metadata["details"]
    assert details["rows_with_errors"] == 2 and details["rows_with_warnings"] == 4
    (score,) = details["errors"]
    assert (score["path"], score["count"]) == ("$.reward_stats.score", 2)
    assert score["sample_keys"] == [{"id": ids["bad"][0]}, {"id": ids["bad"][1]}]
    # 600 + team + ticket distinct unknown keys: 500 listed, the rest counted
    assert details["truncated"] == 102
    # the most frequent first (ties by key), whatever the order the rows were read in
    census = {(entry["key"], entry["count"]): entry["types"] for entry in details["unknown_fields"][:3]}
    assert census == {
        ("team", 7): {"string": 5, "integer": 2},
        ("ticket", 2): {"integer": 2},
        ("k_0", 1): {"integer": 1},
    }
    # counts equal outcomes: 17 checks, whatever the number of items
    for result in (whole, alone, workers):
        result.stdout.fnmatch_lines(["contract: 17 checks: 16 passed, 1 failed; * error(s) and * warning(s) in *"])
    assert (
        alone_json["summary"]
        == workers_json["summary"]
        == {"pass": 16, "fail": 1, "inconclusive": 0, "error": 0, "not-run": 0, "deselected": 0}
    )
    alone.stdout.fnmatch_lines(["(17 checks ran as * items: sessions.metadata, * in id ranges, *"])


def test_two_workers_share_the_ranges_of_a_split_column(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``-n 2`` each worker scans half the ranges of a split column. xdist's load scheduling
    first hands each worker a run of consecutive items, which put every range of sessions.metadata
    but one on the same worker: the split scan ran no faster than one process."""
    _sessions(atlas_db)
    result, *_ = _run(
        pytester, atlas_dsn, "workers", "--atlas-contract-split-rows=5", "-n", "2", "-v", monkeypatch=monkeypatch
    )
    ran_on: dict[int, str] = {}
    for line in result.stdout.lines:
        found = re.match(r"\[(gw\d)\] .*(?:PASSED|FAILED) atlas-contract::sessions\.metadata\[(\d)/4\]", line)
        if found:
            ran_on[int(found[2])] = found[1]
    assert sorted(ran_on) == [1, 2, 3, 4], result.stdout.str()
    assert sorted(collections.Counter(ran_on.values()).values()) == [2, 2], ran_on


_UNEQUAL_COLLECTIONS = """
import os

import pytest


@pytest.mark.parametrize("i", range(8 if os.environ.get("PYTEST_XDIST_WORKER") == "gw0" else 9))
def test_user(i):
    pass
"""


def test_workers_that_collect_different_tests_are_one_collection_error_in_a_contract_run(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """When the workers of a contract run collect different tests, xdist refuses to schedule them and
    reports the difference once, as in a run without contracts; the contract run's scheduler posted
    it twice (two errors for one difference)."""
    _sessions(atlas_db)
    pytester.makepyfile(test_user=_UNEQUAL_COLLECTIONS)
    plain = pytester.runpytest("-n", "2", "-p", "no:randomly")
    contract = pytester.runpytest(
        "-n", "2", "-p", "no:randomly", "--atlas-contract", f"--atlas-target={atlas_dsn}", "--atlas-with-tests"
    )
    for result in (plain, contract):
        # (the worker named is the one whose collection came in second)
        headers = [line for line in result.stdout.lines if re.search(r"ERROR collecting gw[01] ", line)]
        assert len(headers) == 1, result.stdout.str()
        assert result.parseoutcomes().get("errors") == 1, result.stdout.str()


def test_an_id_range_alone_is_no_verdict(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Range 2 of 4 holds no row (the gap in the ids): run alone it passes as an item, yet the
    column has no verdict (an error, exit status 7), not a pass."""
    _sessions(atlas_db)
    result, report, markdown, _, failed = _run(
        pytester,
        atlas_dsn,
        "alone",
        "--atlas-contract-split-rows=5",
        "-k",
        "sessions.metadata[2/4]",
        monkeypatch=monkeypatch,
    )
    result.assert_outcomes(passed=1, deselected=result.parseoutcomes()["deselected"])
    assert result.ret == 7 and failed == []
    (payload,) = [p for p in report["results"]["contract"] if p["outcome"] != "deselected"]
    assert payload["name"] == "sessions.metadata" and payload["outcome"] == "error"
    assert "only id range(s) 2 of 4 of sessions.metadata ran" in payload["problem"]
    # the other 16 checks of the scope were left out by -k: listed as such, never as passed
    assert report["summary"] == {"pass": 0, "fail": 0, "inconclusive": 0, "error": 1, "not-run": 0, "deselected": 16}
    result.stdout.fnmatch_lines(["contract: 17 checks: 1 error, 16 deselected; *"])
    assert "ERROR" in markdown


def test_the_items_line_counts_what_ran_when_k_deselects(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-k keeps a split column (4 range items) and one relational check: 2 checks ran as 5 items,
    not the 17 checks of the scope (the other 15, some of them split too, were deselected)."""
    _sessions(atlas_db)
    result, report, _, section, _ = _run(
        pytester,
        atlas_dsn,
        "k",
        "--atlas-contract-split-rows=5",
        "-k",
        "sessions.metadata or completed_at",
        monkeypatch=monkeypatch,
    )
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5 and outcomes["deselected"] > 15
    ran = [p["name"] for p in report["results"]["contract"] if p["outcome"] not in ("deselected", "not-run")]
    assert sorted(ran) == ["sessions.metadata", "sessions[completed_at]"]
    assert (
        "(2 checks ran as 5 items: sessions.metadata in id ranges, each merged into one check; "
        "see --atlas-contract-split-rows)"
    ) in section


def test_ranges_cover_every_row_once_and_small_tables_are_not_split(atlas_db: Conn, atlas_dsn: str) -> None:
    ids = _sessions(atlas_db)
    columns = resolve_targets(None, None)
    plan = plan_ranges(atlas_dsn, columns, None, 5)
    ranges = plan["sessions"]
    assert [(r.index, r.count) for r in ranges] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert ranges[0].low is None and ranges[-1].high is None
    assert all(a.high == b.low for a, b in itertools.pairwise(ranges))
    assert "learning_registry" not in plan  # its key is text: never split
    counted = 0
    for id_range in ranges:
        assert IdRange.from_dict(id_range.to_dict()) == id_range
        counted += run_checks(atlas_dsn, METADATA, [], None, None, id_range=id_range).columns[0].rows_checked
    assert counted == ids["rows"]
    assert "sessions" not in plan_ranges(atlas_dsn, columns, None, ids["rows"] + 1)
    assert "sessions" not in plan_ranges(atlas_dsn, columns, None, ids["rows"])  # one range: no split
    # rows in the scope of since only: none after 2099, so nothing to split
    assert plan_ranges(atlas_dsn, columns, date(2099, 1, 1), 1) == {}


def test_merged_ranges_equal_one_scan_in_any_order_and_no_rows_is_no_pass(atlas_db: Conn, atlas_dsn: str) -> None:
    _sessions(atlas_db)
    whole = run_checks(atlas_dsn, METADATA, [], None, None).columns[0]
    ranges = plan_ranges(atlas_dsn, METADATA, None, 3)["sessions"]
    parts = [run_checks(atlas_dsn, METADATA, [], None, None, id_range=r).columns[0] for r in ranges]
    assert [part.rows_checked for part in parts][1:3] == [0, 0]  # the gap: empty ranges
    assert merge_parts(list(reversed(parts))).to_dict() == whole.to_dict()
    # the 30-digit integer is an integer, as json reads it (orjson alone would make it a float)
    assert {entry.key: entry.types for entry in whole.unknown_fields if entry.key == "ticket"} == {
        "ticket": {"integer": 2}
    }
    # ranges that read no row, in a run that read none: the merged column fails, it does not pass
    future = date(2099, 1, 1)
    empty = [run_checks(atlas_dsn, METADATA, [], future, None, id_range=r).columns[0] for r in ranges]
    merged = merge_parts(empty)
    assert merged.rows_checked == 0 and merged.outcome == "fail" and merged.empty_run
    assert "no JSON document was checked anywhere in this run" in merged.render()


def test_an_id_range_cannot_take_a_limit_too(atlas_dsn: str) -> None:
    from pytest_atlas.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="cannot also take the newest"):
        run_checks(atlas_dsn, METADATA, [], None, 10, id_range=IdRange("id", None, 5, 1, 2))


def test_the_split_option_is_a_typed_non_negative_integer(pytester: pytest.Pytester, atlas_dsn: str) -> None:
    result = pytester.runpytest("--atlas-contract", f"--atlas-target={atlas_dsn}", "--atlas-contract-split-rows=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--atlas-contract-split-rows*expected an integer from 0 to *"])
    pytester.makeini("[pytest]\natlas_contract_split_rows = many\n")
    result = pytester.runpytest("--atlas-contract", f"--atlas-target={atlas_dsn}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*atlas_contract_split_rows*"])


def test_a_scan_reports_the_same_whatever_order_the_rows_come_in(atlas_db: Conn, atlas_dsn: str) -> None:
    """Sample keys and examples are the smallest keys', the listed census the most frequent keys: a
    row moved to the end of the table (an UPDATE; a synchronized scan starting mid-table does the same)
    changes nothing."""
    ids = _sessions(atlas_db)
    before = run_checks(atlas_dsn, METADATA, [], None, None).columns[0]
    atlas_db.execute("UPDATE sessions SET task = task || '' WHERE id <= %s", [ids["bad"][0]])
    atlas_db.commit()
    moved = atlas_db.execute("SELECT id FROM sessions LIMIT 1").fetchone()
    assert moved is not None and moved[0] != 1  # the heap order really changed
    after = run_checks(atlas_dsn, METADATA, [], None, None).columns[0]
    assert after.to_dict() == before.to_dict()
    (score,) = after.errors
    assert score.sample_keys == [{"id": ids["bad"][0]}, {"id": ids["bad"][1]}]
    assert score.example.primary_key == {"id": ids["bad"][0]}


def test_a_target_that_does_not_answer_while_planning_costs_one_timeout(
    pytester: pytest.Pytester, silent_server: tuple[int, list[Any]]
) -> None:
    """A server that accepts and never answers: the plan's connection times out once, and every item
    reports that failure at once (no second timeout for the first item) as a clear error."""
    port, accepted = silent_server
    result = pytester.runpytest(
        "--atlas-contract",
        f"--atlas-target=postgresql://u:sekrit@127.0.0.1:{port}/db?connect_timeout=1&sslmode=disable",
        "-p",
        "no:randomly",
    )
    assert result.ret == 7
    assert len(accepted) == 1
    result.stdout.fnmatch_lines(["*cannot check the contracts: *", "contract: 17 checks: 17 errors; *"])
    assert "sekrit" not in result.stdout.str() + result.stderr.str()


def test_one_read_of_every_range_reports_each_range_as_its_own_scan(atlas_db: Conn, atlas_dsn: str) -> None:
    from pytest_atlas.contracts import run_ranges

    ids = _sessions(atlas_db)
    ranges = plan_ranges(atlas_dsn, METADATA, None, 5)["sessions"]
    # as the plugin's items run them: an empty range is judged by the whole run, not on its own
    alone = [run_checks(atlas_dsn, METADATA, [], None, None, id_range=r, require_rows=False).columns[0] for r in ranges]
    together = run_ranges(atlas_dsn, METADATA[0], ranges, None)
    assert [part.to_dict() for part in together] == [part.to_dict() for part in alone]
    assert [part.part for part in together] == [part.part for part in alone]
    assert [part.rows_checked for part in together][1:3] == [0, 0]  # the gap
    assert sum(part.rows_checked for part in together) == ids["rows"]
    assert merge_parts(together).to_dict() == run_checks(atlas_dsn, METADATA, [], None, None).columns[0].to_dict()
    # a column that cannot be read: every range says so, and still merges
    missing = resolve_targets(["sessions.metadata"], {"sessions.metadata": "session-metadata"})[0]
    gone = type(missing)(table=missing.table, column="no_such_column", schema=missing.schema)
    broken = run_ranges(atlas_dsn, gone, ranges, None)
    assert all(part.problem and "does not exist" in part.problem for part in broken)
    assert merge_parts(broken).problem == broken[0].problem


@pytest.mark.parametrize(
    "ranges",
    [
        [IdRange("id", None, 5, 1, 2)],  # not up to the last id
        [IdRange("id", None, 5, 1, 2), IdRange("id", 6, None, 2, 2)],  # a hole
        [IdRange("session_id", None, 5, 1, 2), IdRange("session_id", 5, None, 2, 2)],  # another key
        [],
    ],
    ids=["open-end", "hole", "key", "none"],
)
def test_one_read_of_ranges_takes_only_a_whole_plan(atlas_dsn: str, ranges: list[IdRange]) -> None:
    from pytest_atlas.contracts import run_ranges
    from pytest_atlas.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="needs every range of a plan of sessions's id"):
        run_ranges(atlas_dsn, METADATA[0], ranges, None)


_COUNT_SCANS = """
import json, os
import pytest_atlas.contracts._check as check
original = check._stream
def counting(conn, target, *args, **kwargs):
    with open(os.environ["SCANS"], "a") as out:
        out.write(json.dumps([target.name, bool(kwargs.get("id_range"))]) + "\\n")
    return original(conn, target, *args, **kwargs)
def pytest_configure(config):
    check._stream = counting
def pytest_unconfigure(config):
    check._stream = original  # the run is in-process: leave the module as it was
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-n", "0"), [["sessions.metadata", False]]),  # every range here: one read serves them all
        (("-n", "0", "-k", "metadata[1/4] or metadata[3/4]"), [["sessions.metadata", True]] * 2),
        (("-n", "2"), [["sessions.metadata", True]] * 4),  # ranges spread over workers: one read each
    ],
    ids=["alone", "some-ranges", "workers"],
)
def test_a_process_that_runs_every_range_of_a_column_reads_it_once(
    pytester: pytest.Pytester,
    atlas_db: Conn,
    atlas_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    expected: list[list[Any]],
) -> None:
    _sessions(atlas_db)
    pytester.makeconftest(_COUNT_SCANS)
    scans = pytester.path / "scans.jsonl"
    monkeypatch.setenv("SCANS", str(scans))
    result = pytester.runpytest(
        "--atlas-contract",
        f"--atlas-target={atlas_dsn}",
        "--atlas-contract-split-rows=5",
        "-p",
        "no:randomly",
        *args,
    )
    assert result.ret in (1, 7)  # the bad scores fail (or, some ranges alone, no verdict)
    read = [json.loads(line) for line in scans.read_text().splitlines()]
    assert [entry for entry in read if entry[0] == "sessions.metadata"] == expected
