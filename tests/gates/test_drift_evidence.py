"""A drift gate is evidence only where a session with a usable score was compared with other scored
sessions: selected sessions without reward_stats, or whose stats hold no usable score (null, missing,
"NaN", a word in score_mean), are counted as missing and never make a pass; a key whose one scored
session has only unscored sessions in its baseline compared nothing. The counts a row reports are
those of the database: ``n`` the assessed sessions with a usable score, ``missing`` the others."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pytest_atlas import GateSpec, evaluate
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from ..contracts.test_plugin import check_counts
from .gates_seed import insert, session_row

Conn = psycopg.Connection[Any]

#: reward_stats Atlas can hold whose score its drift check cannot read (the index on
#: (reward_stats ->> 'score')::float refuses a word in ``score``, not in ``score_mean``)
UNSCORED: list[Any] = [{}, {"score": None}, {"score_mean": "n/a"}, {"score": "NaN"}, {"score": None, "score_mean": "x"}]


def drift(conn: Conn, **options: Any) -> Any:
    return evaluate(GateSpec.build("no-drift", {"kind": "drift", **options}), conn)


def counted(conn: Conn, key: str) -> tuple[int, int]:
    """(sessions of ``key`` with a usable drift score, the others) as the database holds them."""
    rows = conn.execute(
        "SELECT reward_stats FROM sessions WHERE metadata ->> 'learning_key' = %s AND review_status <> 'quarantined'",
        (key,),
    ).fetchall()

    def usable(stats: Any) -> bool:
        if not isinstance(stats, dict):
            return False
        for name in ("score", "score_mean"):
            if stats.get(name) is not None:
                try:
                    value = float(stats[name])
                except (TypeError, ValueError):
                    return False
                return value == value and abs(value) != float("inf")
        return False

    scored = sum(usable(stats) for (stats,) in rows)
    return scored, len(rows) - scored


def test_selected_sessions_without_reward_stats_fail_and_are_counted(atlas_db: Conn) -> None:
    """Ten selected sessions, none with reward_stats: the gate said its selection "matched no
    sessions" (it matched ten) and reported no count of them."""
    insert(atlas_db, [session_row(None, key="nostats", minute=i, reward_stats=None) for i in range(10)])
    result = drift(atlas_db, learning_key="nostats")
    assert result.outcome.value == "fail"
    (row,) = result.rows
    assert (row.learning_key, row.n, row.missing, row.outcome.value) == ("nostats", 0, 10, "fail")
    assert (row.n, row.missing) == counted(atlas_db, "nostats")
    assert row.reason.startswith("no usable scores: none of the 10 session(s)"), row.reason
    assert "reward_stats" in row.reason


@pytest.mark.parametrize("stats", UNSCORED, ids=json.dumps)
def test_sessions_whose_stats_hold_no_usable_score_are_missing_not_assessed(atlas_db: Conn, stats: Any) -> None:
    """They were counted in ``n`` as if assessed ("none of the 10 session(s)", missing 0)."""
    insert(atlas_db, [session_row(None, key="quirk", minute=i, reward_stats=stats) for i in range(10)])
    (row,) = drift(atlas_db).rows
    assert row.outcome.value == "fail", row
    assert (row.n, row.missing) == (0, 10) == counted(atlas_db, "quirk")
    assert row.reason.startswith("no usable scores:"), row.reason


def test_a_key_of_scored_and_unscored_sessions_counts_each_as_the_database_holds_them(atlas_db: Conn) -> None:
    """Ten scored sessions, three without reward_stats, two with a NaN score: the row said n = 12
    (the NaN ones counted as assessed, the others not at all) and 0 missing."""
    insert(atlas_db, [session_row(0.8 + 0.01 * (i % 3), key="mixed", minute=i) for i in range(10)])
    insert(atlas_db, [session_row(None, key="mixed", minute=20 + i, reward_stats=None) for i in range(3)])
    insert(atlas_db, [session_row(None, key="mixed", minute=30 + i, reward_stats={"score": "NaN"}) for i in range(2)])
    (row,) = drift(atlas_db).rows
    assert row.outcome.value == "pass", row
    assert (row.n, row.missing) == (10, 5) == counted(atlas_db, "mixed")
    assert "no drift alert in 10 session(s)" in row.reason
    assert "5 session(s) without a usable score left out" in row.reason


@pytest.mark.parametrize("last", [None, 1])
def test_one_scored_session_among_unscored_ones_compared_nothing(atlas_db: Conn, last: int | None) -> None:
    """Nine sessions whose stats hold no score, then one scored: Atlas's baseline counts ten rows
    (not insufficient) but holds one score, the session's own, so nothing was compared. It passed
    ("no drift alert in 10 session(s)"); the evidence of one side alone is no verdict."""
    insert(
        atlas_db,
        [session_row(None, key="one", minute=i, reward_stats={"score": None, "score_mean": "n/a"}) for i in range(9)],
    )
    (newest,) = insert(atlas_db, [session_row(0.8, key="one", minute=10)])
    result = drift(atlas_db, **({} if last is None else {"last": last}))
    (row,) = result.rows
    assert row.outcome.value == "inconclusive", row
    assert result.blocking
    assert "no assessed session had another scored session in its baseline" in row.reason, row.reason
    assert (row.n, row.missing) == ((1, 9) if last is None else (1, 0))
    # a second scored session gives the newest a score to be compared with: evidence
    insert(atlas_db, [session_row(0.7, key="one", minute=11)])
    (row,) = drift(atlas_db).rows
    assert row.outcome.value == "pass", row
    assert newest > 0


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly", *args)


def test_a_drift_gate_run_reports_the_counts_of_the_database(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """As users run it: the table's ``n`` column, the JSON report and pytest's count line agree
    with the database, and no key without evidence passes."""
    insert(atlas_db, [session_row(None, key="nostats", minute=i, reward_stats=None) for i in range(4)])
    insert(atlas_db, [session_row(0.8 + 0.01 * (i % 3), key="mixed", minute=10 + i) for i in range(10)])
    insert(atlas_db, [session_row(None, key="mixed", minute=30 + i, reward_stats=None) for i in range(3)])
    insert(
        atlas_db, [session_row(None, key="one", minute=40 + i, reward_stats={"score_mean": "n/a"}) for i in range(6)]
    )
    insert(atlas_db, [session_row(0.8, key="one", minute=50)])
    atlas_db.commit()
    pytester.makefile(
        ".toml", pyproject='[tool.pytest-atlas.gates.no-drift]\nkind = "drift"\nallow_inconclusive = true\n'
    )
    result = run(pytester, atlas_dsn, "--atlas-report=report.json")
    assert result.ret == 1, result.stdout.str()
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines_random(
        [
            "no-drift*mixed*10 (+3 missing)*PASS*",
            "no-drift*nostats*0 (+4 missing)*FAIL*",
            "no-drift*one*1 (+6 missing)*INCONCLUSIVE*",
            "no-drift / nostats: no usable scores: none of the 4 session(s)*reward_stats*",
        ]
    )
    document = json.loads((pytester.path / "report.json").read_text())
    (gate,) = [item for item in document["results"]["gate"] if item["name"] == "no-drift"]
    rows = {row["learning_key"]: (row["n"], row["missing"], row["outcome"]) for row in gate["rows"]}
    assert rows == {"mixed": (10, 3, "pass"), "nostats": (0, 4, "fail"), "one": (1, 6, "inconclusive")}
    for key, (n, missing, _) in rows.items():
        assert (n, missing) == counted(atlas_db, key)


#: reward_stats that are no JSON object: Atlas does not assess such a session (its check reads an object)
NOT_OBJECTS: list[Any] = [None, "pending", [0.9], 0.9]


@pytest.mark.parametrize("stats", NOT_OBJECTS, ids=json.dumps)
def test_sessions_whose_stats_are_no_object_do_not_make_a_thin_key_pass(atlas_db: Conn, stats: Any) -> None:
    """One scored session, the key's first, and five newer ones whose reward_stats are a JSON null,
    a string, an array or a number. Atlas assesses only the first, against a baseline of itself
    alone (insufficient_baseline): nothing was compared. The five were not assessed, yet they were
    counted among the assessed sessions, so the key passed ("no drift alert in 1 session(s)")."""
    (scored,) = insert(atlas_db, [session_row(0.8, key="thin", minute=0)])
    others = insert(atlas_db, [session_row(None, key="thin", minute=1 + i, reward_stats={}) for i in range(5)])
    # Jsonb(None) is a JSON null too; written as a literal so that the test says what is stored
    atlas_db.execute("UPDATE sessions SET reward_stats = %s::jsonb WHERE id = ANY(%s)", (json.dumps(stats), others))
    assert atlas_db.execute("SELECT count(*) FROM sessions WHERE reward_stats IS NULL").fetchone() == (0,)
    result = drift(atlas_db)
    (row,) = result.rows
    assert row.outcome.value == "inconclusive", row
    assert result.blocking
    assert (row.n, row.missing) == (1, 5) == counted(atlas_db, "thin")
    assert "every assessed session had fewer than 5 baseline sessions" in row.reason, row.reason
    # with min_baseline = 0 Atlas compares it, but with its own score alone: still nothing compared
    (row,) = drift(atlas_db, min_baseline=0).rows
    assert row.outcome.value == "inconclusive", row
    assert "no assessed session had another scored session in its baseline" in row.reason, row.reason
    assert scored > 0
