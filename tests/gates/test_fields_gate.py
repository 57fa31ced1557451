"""The fields gate: the census of JSON paths (collapsing, quirks, volatile paths) and the comparison
of a candidate window with a baseline, against a real database written by a harness stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pytest_atlas import GateError, GateSpec, evaluate
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.factories import Factory, insert_graphs
from pytest_atlas.gates._fields import FieldOptions, PathCensus, field_census, field_rows
from pytest_atlas.stats import compare, compare_shares  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .gates_seed import insert, session_row

Conn = psycopg.Connection[Any]
Edit = Callable[[int, dict[str, Any]], None]


# ------------------------------------------------------------------------------------------------
# the census
# ------------------------------------------------------------------------------------------------


def test_array_indices_and_map_keys_collapse_and_caller_keys_keep_their_names() -> None:
    doc = {
        "run": "main",
        "adaptive_summary": {"adaptive_mode": "auto", "mode_history": [{"mode": "auto"}, {"mode": "coach", "x": 1}]},
        "learning_usage": {"roles": {"student": {"entry-1": {"cue_hits": 1}}, "teacher": {"entry-9": {"cue_hits": 0}}}},
    }
    census = field_census([(1, doc)])
    assert set(census.paths) == {
        "$.run",
        "$.adaptive_summary",
        "$.adaptive_summary.adaptive_mode",
        "$.adaptive_summary.mode_history",
        "$.adaptive_summary.mode_history[*]",
        "$.adaptive_summary.mode_history[*].mode",
        "$.adaptive_summary.mode_history[*].x",
        "$.learning_usage",
        "$.learning_usage.roles",
        "$.learning_usage.roles.*",
        "$.learning_usage.roles.*.*",
        "$.learning_usage.roles.*.*.cue_hits",
    }
    # one session counts once per path, however many elements carry it
    assert census.paths["$.adaptive_summary.mode_history[*].mode"].count == 1
    assert census.paths["$.learning_usage.roles.*.*.cue_hits"].types == {"number": 1}


def test_integers_and_floats_are_one_type_and_null_is_its_own() -> None:
    census = field_census([(3, {"x": 1}), (2, {"x": 0.5}), (1, {"x": None})])
    assert census.paths["$.x"].types == {"number": 2, "null": 1}
    assert census.paths["$.x"].by_type == {"number": [3, 2], "null": [1]}


def test_absent_samples_are_the_newest_sessions_without_the_path() -> None:
    rows = [(10 - i, {"a": 1} if i in (3, 7) else {"b": 1}) for i in range(10)]  # ids 10..1, newest first
    census = field_census(rows)
    assert census.n == 10
    assert census.paths["$.a"].count == 2
    assert census.paths["$.a"].absent == [10, 9, 8, 6, 5]  # 7 and 3 carry it
    assert census.paths["$.b"].absent == [7, 3]
    assert census.newest == [10, 9, 8, 7, 6]


def test_a_null_document_carries_no_path_but_counts() -> None:
    census = field_census([(2, None), (1, {"a": 1})], "sessions.reward")
    assert census.n == 2 and census.share("$.a") == 0.5


def test_tags_as_a_string_and_both_reward_summary_shapes_are_the_same_fields() -> None:
    arrays = [(i, {"tags": ["a", "b"], "reward_summary": {"score": 0.8}}) for i in range(60, 0, -1)]
    quirks = [(i, {"tags": "a", "reward_summary": {"average": 0.0, "count": 3}}) for i in range(160, 100, -1)]
    base, cand = field_census(arrays), field_census(quirks)
    assert set(cand.paths) == set(base.paths) == {"$.tags", "$.tags[*]", "$.reward_summary", "$.reward_summary.score"}
    assert cand.paths["$.tags"].types == {"array": 60}
    rows = field_rows(cand, base, FieldOptions())
    assert [(row.learning_key, row.outcome.value) for row in rows] == [
        ("$.reward_summary", "pass"),
        ("$.reward_summary.score", "pass"),
        ("$.tags", "pass"),
        ("$.tags[*]", "pass"),
    ]


def test_volatile_paths_are_left_out_unless_asked_for() -> None:
    base = field_census([(i, {"review_status": "pending", "run": "a"}) for i in range(60, 0, -1)])
    cand = field_census([(i, {"run": "a"}) for i in range(160, 100, -1)])
    assert "$.review_status" in base.volatile
    assert [row.learning_key for row in field_rows(cand, base, FieldOptions())] == ["$.run"]
    rows = field_rows(cand, base, FieldOptions(exclude_volatile=False))
    assert {row.learning_key: row.outcome.value for row in rows} == {"$.review_status": "fail", "$.run": "pass"}


def test_exclude_leaves_out_a_path_and_everything_below_it() -> None:
    base = field_census([(i, {"a": {"b": 1}, "ab": 1}) for i in range(60, 0, -1)])
    cand = field_census([(i, {"ab": 1}) for i in range(160, 100, -1)])
    rows = field_rows(cand, base, FieldOptions(exclude=("$.a",)))
    assert [row.learning_key for row in rows] == ["$.ab"]


def test_new_paths_fail_only_when_asked_for() -> None:
    base = field_census([(i, {"a": 1}) for i in range(60, 0, -1)])
    cand = field_census([(i, {"a": 1, "debug": True}) for i in range(160, 100, -1)])
    assert [row.learning_key for row in field_rows(cand, base, FieldOptions())] == ["$.a"]
    rows = field_rows(cand, base, FieldOptions(new_paths=True))
    assert {row.learning_key: row.outcome.value for row in rows} == {"$.a": "pass", "$.debug": "fail"}
    assert rows[1].worst == (160, 159, 158, 157, 156)


def test_a_rare_new_type_is_noise_and_a_switched_type_is_a_change() -> None:
    base = field_census([(i, {"n": 1, "m": 1}) for i in range(100, 0, -1)])
    cand = field_census([(i, {"n": "1" if i == 150 else 1, "m": "1"}) for i in range(200, 100, -1)])
    rows = {row.learning_key: row for row in field_rows(cand, base, FieldOptions())}
    assert rows["$.n"].outcome.value == "pass"
    assert "1 string of 100 row(s) with a type the baseline did not have, within noise" in rows["$.n"].reason
    assert rows["$.m"].outcome.value == "fail"
    assert rows["$.m"].reason.startswith("type changed: number in the baseline, now 100 string of 100 row(s)")
    assert rows["$.m"].worst == (200, 199, 198, 197, 196)


def test_the_census_survives_json_and_a_damaged_one_is_refused() -> None:
    census = field_census([(2, {"a": [1, "x"]}), (1, {"b": None})])
    data = json.loads(json.dumps(census.to_json()))
    assert PathCensus.from_json(data) == census
    for damage in (
        lambda d: d.update(n=1),  # counts above n
        lambda d: d["paths"]["$.a"].update(types={}),
        lambda d: d["paths"]["$.a"].update(count=0),
        lambda d: d.update(column="sessions.nope"),
        lambda d: d["paths"]["$.a"].update(absent=[1, 2, 3, 4, 5, 6]),
        lambda d: d.pop("newest"),
    ):
        broken = json.loads(json.dumps(census.to_json()))
        damage(broken)
        with pytest.raises(InvalidArgument):
            PathCensus.from_json(broken)


# ------------------------------------------------------------------------------------------------
# the gate against a database a harness wrote
# ------------------------------------------------------------------------------------------------


def harness(conn: Conn, run: str, n: int, *, seed: int, edit: Edit | None = None) -> list[int]:
    """A stand-in for an eval harness: ``n`` realistic sessions with ``metadata.run = run``; ``edit``
    is the harness change (it rewrites each session's metadata before it is stored)."""
    graphs = Factory(seed).sessions(n, metadata={"run": run})
    for index, graph in enumerate(graphs):
        if edit is not None:
            edit(index, graph.session["metadata"])
    ids = insert_graphs(conn, graphs)
    conn.commit()
    return ids


GATE = {"kind": "fields", "metadata": {"run": "candidate"}, "baseline": {"metadata": {"run": "main"}}}


def rows_of(conn: Conn, **options: Any) -> dict[str, Any]:
    result = evaluate(GateSpec.build("fields", {**GATE, **options}), conn)
    assert result.error is None
    return {row.learning_key: row for row in result.rows}


def test_an_unchanged_harness_passes(atlas_db: Conn) -> None:
    harness(atlas_db, "main", 150, seed=1)
    harness(atlas_db, "candidate", 150, seed=2)
    result = evaluate(GateSpec.build("fields", GATE), atlas_db)
    assert result.outcome.value == "pass", [r.reason for r in result.rows if r.outcome.value != "pass"]
    assert len(result.rows) > 100  # every path of realistic metadata was looked at
    counted = atlas_db.execute(  # quarantined sessions are left out, as by every gate
        "SELECT metadata->>'run', count(*) FROM sessions WHERE review_status IS DISTINCT FROM 'quarantined' GROUP BY 1"
    ).fetchall()
    assert {(result.rows[0].n, result.rows[0].detail["n_baseline"])} == {
        (dict(counted)["candidate"], dict(counted)["main"])
    }


def test_a_dropped_field_fails_and_names_the_sessions_without_it(atlas_db: Conn) -> None:
    harness(atlas_db, "main", 150, seed=1)
    ids = harness(atlas_db, "candidate", 150, seed=2, edit=lambda i, m: m.pop("adaptive_summary", None))
    rows = rows_of(atlas_db)
    row = rows["$.adaptive_summary"]
    assert row.outcome.value == "fail"
    assert row.bound.endswith("-> 0%") and row.detail["candidate_share"] == 0.0
    assert row.detail["baseline_share"] > 0.8
    newest = atlas_db.execute(
        "SELECT id FROM sessions WHERE id = ANY(%s) AND review_status IS DISTINCT FROM 'quarantined' "
        "ORDER BY created_at DESC, id DESC LIMIT 5",
        (ids,),
    ).fetchall()
    assert row.worst == tuple(i for (i,) in newest)  # the newest candidate sessions (none carries it)
    assert "share dropped" in row.reason and "beyond noise" in row.reason
    assert rows["$.adaptive_summary.adaptive_mode"].outcome.value == "fail"
    assert rows["$.learning_key"].outcome.value == "pass"


def test_a_halved_presence_fails(atlas_db: Conn) -> None:
    def halve(index: int, metadata: dict[str, Any]) -> None:
        if index % 2:
            metadata.pop("triage_dossier", None)

    harness(atlas_db, "main", 150, seed=1)
    harness(atlas_db, "candidate", 150, seed=2, edit=halve)
    row = rows_of(atlas_db)["$.triage_dossier"]
    assert row.outcome.value == "fail"
    assert 0.35 < row.detail["candidate_share"] < 0.55 < 0.8 < row.detail["baseline_share"]
    assert row.p_adjusted is not None and row.p_adjusted < 0.05


def test_a_type_change_fails_and_names_the_sessions_with_the_new_type(atlas_db: Conn) -> None:
    def stringify(index: int, metadata: dict[str, Any]) -> None:
        if "execution_mode" in metadata:
            metadata["execution_mode"] = {"mode": metadata["execution_mode"]}  # a new harness wraps it

    harness(atlas_db, "main", 150, seed=1)
    ids = harness(atlas_db, "candidate", 150, seed=2, edit=stringify)
    row = rows_of(atlas_db)["$.execution_mode"]
    assert row.outcome.value == "fail"
    assert row.reason.startswith("type changed: string in the baseline, now ")
    assert row.detail["candidate_types"] == "object" and row.detail["baseline_types"] == "string"
    assert set(row.worst) <= set(ids) and len(row.worst) == 5


def test_tiny_windows_are_inconclusive(atlas_db: Conn) -> None:
    harness(atlas_db, "main", 3, seed=1)
    harness(atlas_db, "candidate", 3, seed=2)
    result = evaluate(GateSpec.build("fields", GATE), atlas_db)
    assert result.outcome.value == "inconclusive"
    assert any("can only detect a drop of" in row.reason for row in result.rows)


def test_an_empty_baseline_is_an_error_and_an_empty_window_fails(atlas_db: Conn) -> None:
    harness(atlas_db, "candidate", 20, seed=2)
    with pytest.raises(GateError, match="baseline of fields gate 'fields' is empty"):
        evaluate(GateSpec.build("fields", GATE), atlas_db)
    harness(atlas_db, "main", 20, seed=1)
    empty = evaluate(GateSpec.build("fields", {**GATE, "metadata": {"run": "nope"}}), atlas_db)
    assert empty.outcome.value == "fail" and empty.rows == ()


def test_other_json_columns_are_read_through_their_session(atlas_db: Conn) -> None:
    harness(atlas_db, "main", 30, seed=1)
    harness(atlas_db, "candidate", 30, seed=2)
    result = evaluate(GateSpec.build("fields", {**GATE, "column": "step_results.evaluation"}), atlas_db)
    assert result.error is None and result.rows
    assert all(not row.learning_key.startswith("$.adaptive_summary") for row in result.rows)


def test_declarations_are_checked() -> None:
    problems = {
        "column": ({"column": "sessions.task"}, "is not a JSON column a fields gate reads"),
        "effect": ({"max_presence_drop": 0.3}, "min_effect must be larger than max_presence_drop"),
        "exclude": ({"exclude": ["adaptive_summary"]}, "exclude must be a JSON path"),
        "presence": ({"min_presence": 0}, r"min_presence must be a number in \(0, 1\]"),
        "uncertainty": ({"max_uncertainty": 0.2}, "max_uncertainty applies to threshold and regression"),
    }
    for name, (options, message) in problems.items():
        with pytest.raises(InvalidArgument, match=message):
            GateSpec.build(name, {"kind": "fields", **options})


# ------------------------------------------------------------------------------------------------
# as users run it: the baseline file stores the field census
# ------------------------------------------------------------------------------------------------

FILE_GATE = """
[tool.pytest-atlas.gates.metadata-fields]
kind = "fields"
metadata = { run = "%s" }
"""


def test_the_baseline_file_stores_the_census_and_a_dropped_field_fails_against_it(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    harness(atlas_db, "main", 120, seed=1)
    harness(atlas_db, "candidate", 120, seed=2, edit=lambda i, m: m.pop("adaptive_summary", None))
    baseline = pytester.path / "baseline.json"
    pytester.makefile(".toml", pyproject=FILE_GATE % "main")
    saved = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-save-baseline={baseline}")
    assert saved.ret == 0, saved.stdout.str()[-2000:]
    document = json.loads(baseline.read_text())
    assert document["version"] == 3 and set(document["fields"]) == {"metadata-fields"}
    row = atlas_db.execute(
        "SELECT count(*) FROM sessions WHERE metadata ->> 'run' = 'main' AND metadata ? 'adaptive_summary' "
        "AND review_status IS DISTINCT FROM 'quarantined'"
    ).fetchone()
    assert row is not None and row[0] > 60  # most of the main run's sessions carry it
    assert document["fields"]["metadata-fields"]["paths"]["$.adaptive_summary"]["count"] == row[0]

    pytester.makefile(".toml", pyproject=FILE_GATE % "candidate")
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-baseline={baseline}")
    assert result.ret == 1
    table = [line for line in result.stdout.lines if line.startswith("metadata-fields  $.adaptive_summary  ")]
    assert table and " -> 0% " in table[0] and "FAIL" in table[0]

    unchanged = pytester.makefile(".toml", pyproject=FILE_GATE % "main")
    assert unchanged.exists()
    again = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-baseline={baseline}")
    assert again.ret == 0, again.stdout.str()[-2000:]


def test_a_damaged_census_in_the_baseline_file_is_an_error(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    harness(atlas_db, "main", 20, seed=1)
    baseline = pytester.path / "baseline.json"
    pytester.makefile(".toml", pyproject=FILE_GATE % "main")
    assert (
        pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-save-baseline={baseline}").ret == 0
    )
    document = json.loads(baseline.read_text())
    document["fields"]["metadata-fields"]["n"] = 3  # fewer sessions than the paths' counts
    baseline.write_text(json.dumps(document))
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-baseline={baseline}")
    assert result.ret == 7
    result.stdout.fnmatch_lines(["*baseline file*fields gate 'metadata-fields'*"])


def test_a_gate_that_tested_no_path_is_an_error_not_a_pass(atlas_db: Conn) -> None:
    """Every path rarer than min_presence in the baseline, none with a new type: each row only
    shows its path, no test ran. The gate passed ("share not gated" on every row)."""
    rows = [session_row(0.8, minute=i, metadata={"run": "main", f"note_{i % 5}": i}) for i in range(20)]
    rows += [session_row(0.8, minute=100 + i, metadata={"run": "candidate", f"note_{i % 5}": i}) for i in range(20)]
    insert(atlas_db, rows)
    atlas_db.commit()
    spec = {**GATE, "exclude": ["$.learning_key", "$.execution_mode", "$.run"]}
    with pytest.raises(
        GateError,
        match=r"fields gate 'fields' tested nothing: no path of .* is present in at least "
        r"min_presence \(0\.5\) of its 20 session\(s\), and no path took a new type",
    ):
        evaluate(GateSpec.build("fields", spec), atlas_db)
    # a path in most baseline sessions is tested again
    insert(
        atlas_db,
        [
            session_row(0.8, minute=200 + i, metadata={"run": r, "common": 1})
            for r in ("main", "candidate")
            for i in range(40)
        ],
    )
    atlas_db.commit()
    tested = {
        row.learning_key for row in evaluate(GateSpec.build("fields", spec), atlas_db).rows if row.detail["tested"]
    }
    assert tested == {"$.common"}
