"""No verdict without evidence: empty baselines, keys without a baseline, windows without scores, and
the error paths (unreachable, wrong password, no Atlas tables), as users run them (pytester)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas import GateError, GateSpec, evaluate
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from ..contracts.test_plugin import check_counts
from .gates_seed import insert, session_row

Conn = psycopg.Connection[Any]


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly", *args)


def seed_runs(conn: Conn, runs: dict[str, float], *, keys: tuple[str, ...] = ("k1",), n: int = 60) -> None:
    """``n`` scored sessions per learning key for each ``run`` value (metadata.run), around its mean."""
    rng = random.Random(7)
    rows = []
    for run_name, mean in runs.items():
        for key in keys:
            rows += [
                session_row(
                    round(min(1.0, rng.gauss(mean, 0.05)), 4), key=key, minute=len(rows), metadata={"run": run_name}
                )
                for _ in range(n)
            ]
    insert(conn, rows)
    conn.commit()


REGRESSION = """
[tool.pytest-atlas.gates.no-regression]
kind = "regression"
metadata = {{ run = "candidate" }}
baseline = {{ metadata = {{ run = "{baseline}" }} }}
min_effect = 0.1
allow_inconclusive = true
{extra}
"""


def test_an_empty_baseline_selection_is_an_error_whatever_allow_inconclusive_says(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    seed_runs(atlas_db, {"main": 0.8, "candidate": 0.61})
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="mian", extra=""))  # the typo
    result = run(pytester, atlas_dsn)
    assert check_counts(result, "gates") == {"errors": 1}
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        [
            "gate 'no-regression' could not be evaluated:",
            "the baseline of regression gate 'no-regression' is empty: its baseline selection "
            "{'metadata': {'run': 'mian'}} holds no scored session",
            "  how to fix: fix the baseline selection (a typo in a metadata value matches nothing)*",
        ]
    )
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra=""))
    fixed = run(pytester, atlas_dsn)
    assert fixed.ret == 1  # the candidate dropped by 0.19: now it is caught
    fixed.stdout.fnmatch_lines(["no-regression*k1*60*diff -0.1*FAIL*"])


def test_an_empty_candidate_window_fails(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    seed_runs(atlas_db, {"main": 0.8})
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra=""))
    result = run(pytester, atlas_dsn)
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines(["no-regression: FAIL: the gate's selection matched no sessions: *candidate*"])


def test_a_key_without_a_baseline_fails_unless_new_keys_are_allowed(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    seed_runs(atlas_db, {"main": 0.8, "candidate": 0.8})
    rows = [session_row(0.8, key="brand-new", minute=500 + i, metadata={"run": "candidate"}) for i in range(30)]
    insert(atlas_db, rows)
    atlas_db.commit()
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra=""))
    strict = run(pytester, atlas_dsn)
    assert strict.ret == 1 and check_counts(strict, "gates") == {"failed": 1}
    strict.stdout.fnmatch_lines(
        [
            "no-regression*brand-new*30*new key*NEW KEY*",
            "no-regression / brand-new: new learning key: no scored baseline session for it; set "
            "allow_new_keys = true to let new keys through ungated, or save a baseline that has it",
        ]
    )
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra="allow_new_keys = true"))
    allowed = run(pytester, atlas_dsn)
    assert allowed.ret == 0 and check_counts(allowed, "gates") == {"passed": 1}
    allowed.stdout.fnmatch_lines(["no-regression*brand-new*30*new key*NEW KEY (allowed)*"])


def test_a_key_the_candidate_stopped_producing_fails(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    seed_runs(atlas_db, {"main": 0.8}, keys=("k1", "k2"))
    seed_runs(atlas_db, {"candidate": 0.8}, keys=("k1",))
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra=""))
    result = run(pytester, atlas_dsn)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["no-regression / k2: no candidate session for this learning key, which has 60 scored baseline session(s)*"]
    )


def test_a_key_without_usable_scores_fails_a_threshold_gate(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    insert(atlas_db, [session_row(None, key="unscored", minute=i, reward_stats=None) for i in range(5)])
    insert(atlas_db, [session_row(0.9, key="scored", minute=10 + i) for i in range(40)])
    atlas_db.commit()
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.5\nallow_inconclusive = true\n',
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["floor*unscored*0 (+5 missing)*FAIL*", "floor / unscored: no usable scores: *"])


def drift_gate(conn: Conn, **options: Any) -> Any:
    return evaluate(GateSpec.build("no-drift", {"kind": "drift", **options}), conn)


def test_a_drift_gate_over_sessions_without_usable_scores_fails(atlas_db: Conn) -> None:
    """Atlas's detector raises no alert on a session without a score (nothing to compare): a key
    whose sessions have none is no evidence of "no drift". (It passed: "no drift alert in 10
    session(s)".) Null scores, and "NaN" strings (which crashed the recomputation with an
    AttributeError from statistics.pstdev)."""
    no_scores = {"score": None, "uncertainty_mean": None}
    insert(atlas_db, [session_row(None, key="null", minute=i, reward_stats=no_scores) for i in range(10)])
    nan = {"score": "NaN", "score_mean": "NaN"}
    insert(atlas_db, [session_row(None, key="nan", minute=20 + i, reward_stats=nan) for i in range(10)])
    result = drift_gate(atlas_db)
    rows = {row.learning_key: row for row in result.rows}
    assert result.outcome.value == "fail"
    for key in ("null", "nan"):
        assert rows[key].outcome.value == "fail", rows[key]
        assert rows[key].reason.startswith("no usable scores: none of the 10 session(s) has a score"), rows[key].reason


def test_a_drift_gate_where_no_session_had_a_baseline_is_inconclusive_whatever_min_baseline_says(
    atlas_db: Conn,
) -> None:
    """With ``min_baseline = 0`` Atlas never calls a baseline insufficient, but a session whose
    baseline holds only itself is compared with nothing. (One such session passed the gate.)"""
    insert(atlas_db, [session_row(0.9, key="lonely", minute=0)])
    result = drift_gate(atlas_db, min_baseline=0)
    (row,) = result.rows
    assert row.outcome.value == "inconclusive", row
    assert "no assessed session had another scored session in its baseline" in row.reason
    # two sessions with a spread: the second is compared with the first, and that is evidence
    insert(atlas_db, [session_row(0.5, key="lonely", minute=1)])
    (row,) = drift_gate(atlas_db, min_baseline=0).rows
    assert row.outcome.value != "inconclusive", row


def test_a_gate_that_selects_nothing_does_not_claim_the_table_is_empty(atlas_db: Conn) -> None:
    """Every session is quarantined (left out by default), or has no reward_stats (a drift gate reads
    none): the table is not empty, and the message said it was."""
    insert(atlas_db, [session_row(0.9, minute=i, review="quarantined") for i in range(5)])
    result = evaluate(GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5}), atlas_db)
    assert result.outcome.value == "fail"
    assert "the sessions table is empty" not in result.message
    assert "quarantined" in result.message and "include_quarantined" in result.message
    assert atlas_db.execute("SELECT count(*) FROM sessions").fetchone() == (5,)


def test_no_recorded_execution_mode_fails(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    insert(atlas_db, [session_row(0.9, minute=i, mode=None) for i in range(10)])
    atlas_db.commit()
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest-atlas.gates.modes]\nkind = "execution_modes"\nmodes = { coach = 0.2 }\n'
        "allow_inconclusive = true\n",
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["modes / k1: no session records an execution_mode (10 without)"])


def test_a_baseline_file_without_sessions_for_the_gate_is_an_error(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, tmp_path: Path
) -> None:
    seed_runs(atlas_db, {"main": 0.8})
    pytester.makefile(
        ".toml", pyproject='[tool.pytest-atlas.gates.g]\nkind = "regression"\nallow_inconclusive = true\n'
    )
    baseline = tmp_path / "baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "format": "pytest-atlas-baseline",
                "version": 2,
                "created": "2025-06-01T00:00:00+00:00",
                "source": None,
                "gates": {"g": {}},
            }
        )
    )
    result = run(pytester, atlas_dsn, f"--atlas-baseline={baseline}")
    assert result.ret == 7 and check_counts(result, "gates") == {"errors": 1}
    result.stdout.fnmatch_lines(
        [f"the baseline of regression gate 'g' is empty: baseline file {baseline} (gate 'g') holds no scored session"]
    )


def test_evaluate_refuses_an_empty_baseline_from_python(atlas_db: Conn) -> None:
    seed_runs(atlas_db, {"candidate": 0.8})
    spec = GateSpec.build("g", {"kind": "regression", "baseline": {"metadata": {"run": "nope"}}})
    with pytest.raises(GateError, match="the baseline of regression gate 'g' is empty"):
        evaluate(spec, atlas_db)


# ------------------------------------------------------------------------------------------------
# error paths: every item counted once, with the hint that matches the error
# ------------------------------------------------------------------------------------------------

TWO_GATES = """
[tool.pytest-atlas.gates.floor]
kind = "threshold"
threshold = 0.5

[tool.pytest-atlas.gates.review]
kind = "review"
"""


def test_unreachable_target_errors_every_gate(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=TWO_GATES)
    result = run(pytester, "postgresql://gate:pw@127.0.0.1:1/atlas?connect_timeout=2")
    assert check_counts(result, "gates") == {"errors": 2}
    assert result.ret == 7
    result.stdout.fnmatch_lines(["  how to fix: is the server running and listening there? check the host and port*"])


def test_a_target_that_does_not_answer_costs_one_connect_timeout_not_one_per_gate(
    pytester: pytest.Pytester, silent_server: tuple[int, list[Any]]
) -> None:
    """A server that accepts and never answers: the first gate waits out its connect timeout, the
    next ones report that failure at once. (Each gate waited out a timeout of its own: 10 s per gate
    by default.) Counted as the connections the silent server accepted."""
    port, accepted = silent_server
    pytester.makefile(".toml", pyproject=TWO_GATES + '\n[tool.pytest-atlas.gates.third]\nkind = "review"\n')
    result = run(pytester, f"postgresql://gate:sekrit@127.0.0.1:{port}/atlas?connect_timeout=1&sslmode=disable")
    assert check_counts(result, "gates") == {"errors": 3}
    assert result.ret == 7
    assert len(accepted) == 1
    result.stdout.fnmatch_lines(["*cannot connect to the gate database: *timeout*"])
    assert "sekrit" not in result.stdout.str() + result.stderr.str()


def test_a_wrong_password_says_password(pytester: pytest.Pytester, password_dsn: Any) -> None:
    pytester.makefile(".toml", pyproject=TWO_GATES)
    result = run(pytester, password_dsn("wrong-one"))
    assert check_counts(result, "gates") == {"errors": 2}
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        [
            "cannot connect to the gate database: PostgreSQL at * rejected the password of user 'pw_*'*",
            "  how to fix: check the user name and the password in --atlas-target / $ATLAS_TARGET_DSN*",
        ]
    )
    assert "host and port" not in result.stdout.str() and "wrong-one" not in result.stdout.str()
    # the right password gets in; a role that may not read the tables is told so
    denied = run(pytester, password_dsn("right-pw"))
    assert check_counts(denied, "gates") == {"errors": 2}
    denied.stdout.fnmatch_lines(
        [
            "the role 'pw_*' may not read the Atlas tables: permission denied for table sessions",
            "  how to fix: grant it read access (GRANT SELECT ON ALL TABLES IN SCHEMA public TO pw_*)*",
        ]
    )


def test_a_database_without_atlas_tables_errors_every_gate(pytester: pytest.Pytester, atlas_postgres: Any) -> None:
    pytester.makefile(".toml", pyproject=TWO_GATES)
    result = run(pytester, atlas_postgres.dsn("postgres"))
    assert check_counts(result, "gates") == {"errors": 2}
    assert result.ret == 7
    result.stdout.fnmatch_lines(
        ["the database has no 'sessions' table: it is not an Atlas database", "  how to fix: point --atlas-target at *"]
    )


THRESHOLD = '[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = {threshold}\n'


def test_two_equal_scores_do_not_pass_a_threshold_gate(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """Two sessions at 0.9 passed a gate at 0.8: the t bound of a sample without spread has zero
    width. Distribution-free, the mean of two scores of 0.9 is only known to be above
    0.9 * sqrt(0.05) = 0.2012; 30 of them bound it at 0.9 * 0.05**(1/30) = 0.8145."""
    insert(atlas_db, [session_row(0.9, key="k1", minute=i) for i in range(2)])
    atlas_db.commit()
    pytester.makefile(".toml", pyproject=THRESHOLD.format(threshold=0.8))
    result = run(pytester, atlas_dsn)
    assert result.ret == 6 and check_counts(result, "gates") == {"inconclusive": 1}
    result.stdout.fnmatch_lines(
        [
            "floor*k1*2*mean 0.900*[0.201, 0.978]*INCONCLUSIVE*",
            "floor / k1: all 2 scores are 0.9000: no spread, so the t model does not hold; *straddle the threshold 0.8 "
            "at n=2; it takes 26 such scores to pass",
        ]
    )
    insert(atlas_db, [session_row(0.9, key="k1", minute=10 + i) for i in range(28)])
    atlas_db.commit()
    enough = run(pytester, atlas_dsn)
    assert enough.ret == 0 and check_counts(enough, "gates") == {"passed": 1}
    enough.stdout.fnmatch_lines(["floor*k1*30*mean 0.900*[0.814, 0.910]*PASS*"])


def test_constant_windows_are_no_regression_verdict(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    """Two sessions a window, each window constant: equal values passed ("a drop of 0.000 would be
    caught"), different values failed with p = 0."""
    rows = [session_row(0.8, key="k1", minute=i, metadata={"run": "main"}) for i in range(2)]
    rows += [session_row(0.7, key="k1", minute=10 + i, metadata={"run": "candidate"}) for i in range(2)]
    insert(atlas_db, rows)
    atlas_db.commit()
    pytester.makefile(".toml", pyproject=REGRESSION.format(baseline="main", extra="").replace("min_effect = 0.1\n", ""))
    result = run(pytester, atlas_dsn)
    assert check_counts(result, "gates") == {"inconclusive": 1} and result.ret == 0  # allow_inconclusive
    result.stdout.fnmatch_lines(
        [
            "no-regression / k1: all 2 baseline scores are 0.8000 and all 2 candidate scores are 0.7000: no spread, "
            "so the t model does not hold; *no drop beyond noise (p=1.000), but the bounds only rule out a drop above "
            "0.858 (wanted 0.05): add sessions"
        ]
    )
