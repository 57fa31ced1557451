"""A gate's evidence must cover what it declares: a baseline that is not the candidate (declared the
same, declared empty, or sharing sessions with it at run time), and every learning key and task the
gate names (a misspelt one among others was dropped and the gate passed on the rest). As users run
them: pytester inner runs against a seeded target database."""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from pytest_atlas import GateSpec, InvalidArgument, evaluate
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from ..contracts.test_plugin import check_counts
from .gates_seed import insert, session_row

Conn = psycopg.Connection[Any]


def run(pytester: pytest.Pytester, dsn: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly", *args)


def seed(
    conn: Conn,
    run_name: str,
    *,
    keys: tuple[str, ...] = ("k1",),
    tasks: tuple[str, ...] = ("task",),
    n: int = 60,
    mean: float = 0.8,
    start: int = 0,
) -> list[int]:
    """``n`` scored sessions per learning key (tasks in turn) with ``metadata.run = run_name``."""
    rng = random.Random(f"{run_name}{start}")
    rows = [
        session_row(
            round(min(1.0, rng.gauss(mean, 0.05)), 4),
            key=key,
            task=tasks[i % len(tasks)],
            minute=start + index * n + i,
            metadata={"run": run_name},
        )
        for index, key in enumerate(keys)
        for i in range(n)
    ]
    ids = insert(conn, rows)
    conn.commit()
    return ids


def gate(name: str, body: str) -> str:
    return f"[tool.pytest-atlas.gates.{name}]\n{body}\n"


def report_of(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((pytester.path / "report.json").read_text())
    return document


# ------------------------------------------------------------------------------------------------
# R8: the baseline is not the candidate
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        ("pyproject", "regression"),
        ("pyproject", "fields"),
        ("ini", "regression"),
        ("ini", "fields"),
        ("marker", "regression"),
    ],
)
def test_a_baseline_declared_as_the_candidate_selection_is_a_usage_error(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, form: str, kind: str
) -> None:
    """The same filters on both sides (learning keys in another order are the same filter): the gate
    compared the window with itself and passed with diff 0.000."""
    seed(atlas_db, "candidate", keys=("a", "b"))
    if form == "pyproject":
        pytester.makefile(
            ".toml",
            pyproject=gate(
                "same",
                f'kind = "{kind}"\nlearning_key = ["a", "b"]\nmetadata = {{ run = "candidate" }}\n'
                'baseline = { learning_key = ["b", "a"], metadata = { run = "candidate" } }',
            ),
        )
    elif form == "ini":
        pytester.makeini(
            "[pytest]\natlas_gate =\n"
            f'    same: kind={kind} metadata={{ run = "candidate" }} baseline={{ metadata = {{ run = "candidate" }} }}\n'
        )
    else:
        pytester.makepyfile(
            test_marked=f"""
import pytest

@pytest.mark.atlas_gate("same", kind="{kind}", metadata={{"run": "candidate"}}, baseline={{"metadata": {{"run": "candidate"}}}})
def test_harness():
    pass
"""
        )
    result = run(pytester, atlas_dsn)
    # a marker's mistake is a collection error of its module (nothing runs), the others usage errors
    expected = pytest.ExitCode.INTERRUPTED if form == "marker" else pytest.ExitCode.USAGE_ERROR
    assert result.ret == expected, result.stdout.str()
    (result.stdout if form == "marker" else result.stderr).fnmatch_lines(
        [
            "*gate 'same': baseline selects the same sessions as the gate's own selection*"
            "a window compared with itself shows no change*",
            "*how to fix: give the baseline a filter that picks the run you compare with*",
        ]
    )


@pytest.mark.parametrize(
    ("form", "kind"),
    [("pyproject", "regression"), ("pyproject", "fields"), ("ini", "regression"), ("marker", "fields")],
)
def test_an_empty_baseline_table_is_a_usage_error(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, form: str, kind: str
) -> None:
    """``baseline = {}`` selects every session, the candidate's included: it was read at run time."""
    seed(atlas_db, "main")
    seed(atlas_db, "candidate", start=1000)
    if form == "pyproject":
        pytester.makefile(
            ".toml", pyproject=gate("empty", f'kind = "{kind}"\nmetadata = {{ run = "candidate" }}\nbaseline = {{}}')
        )
    elif form == "ini":
        pytester.makeini(f'[pytest]\natlas_gate =\n    empty: kind={kind} metadata={{run="candidate"}} baseline={{}}\n')
    else:
        pytester.makepyfile(
            test_marked=f"""
import pytest

@pytest.mark.atlas_gate("empty", kind="{kind}", metadata={{"run": "candidate"}}, baseline={{}})
def test_harness():
    pass
"""
        )
    result = run(pytester, atlas_dsn)
    expected = pytest.ExitCode.INTERRUPTED if form == "marker" else pytest.ExitCode.USAGE_ERROR
    assert result.ret == expected, result.stdout.str()
    (result.stdout if form == "marker" else result.stderr).fnmatch_lines(
        [
            "*gate 'empty': baseline = {} has no filter: it selects every session, the candidate's too*",
            "*how to fix: a baseline needs at least one filter that picks the sessions of the run you compare "
            'with, e.g. baseline = { metadata = { run = "main" } }*',
        ]
    )


def test_a_baseline_without_any_narrowing_filter_is_refused_from_python_too() -> None:
    for raw in ({}, {"include_quarantined": False}):
        with pytest.raises(
            InvalidArgument, match=r"gate 'g': baseline = \{.*\} has no filter: it selects every session"
        ):
            GateSpec.build("g", {"kind": "regression", "metadata": {"run": "x"}, "baseline": raw})
    with pytest.raises(InvalidArgument, match="baseline selects the same sessions as the gate's own selection"):
        GateSpec.build("g", {"kind": "fields", "task": ["a", "b"], "baseline": {"task": ["b", "a", "a"]}})
    # a baseline that differs in one filter is declared fine (whether it overlaps is seen at run time)
    GateSpec.build("g", {"kind": "regression", "metadata": {"run": "x"}, "baseline": {"metadata": {"run": "y"}}})


REGRESSION = """
[tool.pytest-atlas.gates.no-regression]
kind = "regression"
{candidate}
baseline = {baseline}
min_effect = 0.1
allow_inconclusive = true
"""


def test_a_regression_baseline_sharing_sessions_with_the_candidate_fails(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """Candidate: every session; baseline: the main run, which is part of it. It passed (the main run
    compared with itself and the candidate's 60 more sessions)."""
    seed(atlas_db, "main")
    seed(atlas_db, "candidate", start=1000)
    pytester.makefile(
        ".toml",
        pyproject=REGRESSION.format(candidate="", baseline='{ metadata = { run = "main" } }'),
    )
    result = run(pytester, atlas_dsn, "--atlas-report=report.json")
    assert result.ret == 1, result.stdout.str()
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines(
        [
            "no-regression*k1*120*overlap*FAIL*",
            "no-regression / k1: 60 session(s) are in both the candidate (120 scored) and the baseline (60 "
            "scored) of this learning key: a window compared with itself shows no drop; make the two selections "
            "disjoint*",
        ]
    )
    report = report_of(pytester)
    assert report["summary"]["fail"] == 1 and report["summary"]["pass"] == 0
    (found,) = report["results"]["gate"]
    assert found["outcome"] == "fail"
    assert [(row["statistic"], row["outcome"], row["detail"]["shared"]) for row in found["rows"]] == [
        ("overlap", "fail", 60)
    ]


def test_overlapping_time_windows_fail_only_the_keys_they_share(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    """Windows declared differently (since / until) that share sessions of k1 only: k1 fails with its
    count, k2 (whose windows are disjoint) is compared as before."""
    seed(atlas_db, "r", keys=("k1",), n=60, start=0)  # minutes 0..59
    seed(atlas_db, "r", keys=("k2",), n=30, start=0)  # minutes 0..29
    seed(atlas_db, "r", keys=("k2",), n=60, start=100)  # minutes 100..159
    # candidate from minute 30 (k1: 30..59, k2: 100..159); baseline until minute 60 (k1: 0..59, k2: 0..29)
    pytester.makefile(
        ".toml",
        pyproject=gate(
            "windows",
            'kind = "regression"\nsince = 2025-06-01T00:30:00Z\nbaseline = { until = 2025-06-01T01:00:00Z }\n'
            "min_effect = 0.1\nallow_inconclusive = true",
        ),
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1
    assert check_counts(result, "gates") == {"failed": 1}
    out = result.stdout.str()
    assert "windows / k1: 30 session(s) are in both the candidate (30 scored) and the baseline (60 scored)" in out
    assert "windows / k2:" not in out or "in both" not in out.split("windows / k2:")[1].splitlines()[0]
    result.stdout.fnmatch_lines(["windows*k1*30*overlap*FAIL*", "windows*k2*60*diff*"])


def test_a_disjoint_baseline_still_compares(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    seed(atlas_db, "main")
    seed(atlas_db, "candidate", start=1000)
    pytester.makefile(
        ".toml",
        pyproject=REGRESSION.format(
            candidate='metadata = { run = "candidate" }', baseline='{ metadata = { run = "main" } }'
        ),
    )
    result = run(pytester, atlas_dsn)
    assert "overlap" not in result.stdout.str()
    result.stdout.fnmatch_lines(["no-regression*k1*60*diff*"])


def test_a_fields_baseline_sharing_sessions_with_the_candidate_fails(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str
) -> None:
    seed(atlas_db, "main", n=40)
    seed(atlas_db, "candidate", n=40, start=1000)
    pytester.makefile(
        ".toml",
        pyproject=gate("shape", 'kind = "fields"\nbaseline = { metadata = { run = "main" } }'),
    )
    result = run(pytester, atlas_dsn, "--atlas-report=report.json")
    assert result.ret == 1, result.stdout.str()
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines(
        [
            "*fields gate 'shape': fail: 1 path (1 fail)*",
            "shape*(every path)*80*overlap*FAIL*",
            "shape / (every path): 40 session(s) are in both the candidate (80 session(s)) and the baseline "
            "(40 session(s)): a window compared with itself shows no drop; make the two selections disjoint*",
        ]
    )
    assert report_of(pytester)["summary"]["fail"] == 1


# ------------------------------------------------------------------------------------------------
# R1: every learning key and task the gate names has evidence
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by_key", [True, False])
def test_a_misspelt_learning_key_among_others_fails_and_names_the_closest_key(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, by_key: bool
) -> None:
    """``learning_key = ["alpha-key", "beta-kee"]``: the typo was dropped and the gate passed on alpha."""
    seed(atlas_db, "r", keys=("alpha-key", "beta-key"), mean=0.9)
    pytester.makefile(
        ".toml",
        pyproject=gate(
            "floor",
            f'kind = "threshold"\nthreshold = 0.5\nlearning_key = ["alpha-key", "beta-kee"]\n'
            f"by_key = {str(by_key).lower()}",
        ),
    )
    result = run(pytester, atlas_dsn, "--atlas-report=report.json")
    assert result.ret == 1, result.stdout.str()
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines(
        [
            "floor*beta-kee*0*no sessions*FAIL*",
            "floor / beta-kee: learning key 'beta-kee' is named in learning_key, but the gate read no usable "
            "session of it (did you mean 'beta-key'?): fix the name, or leave it out of learning_key",
        ]
    )
    report = report_of(pytester)
    assert report["summary"]["fail"] == 1
    outcomes = {row["learning_key"]: row["outcome"] for row in report["results"]["gate"][0]["rows"]}
    assert outcomes == ({"alpha-key": "pass", "beta-kee": "fail"} if by_key else {"*": "pass", "beta-kee": "fail"})


@pytest.mark.parametrize(
    ("option", "counts"),
    [
        ("", "set include_quarantined = true"),
        ('review_status = ["pending", "approved"]\n', "add 'quarantined' to review_status"),
    ],
)
def test_a_named_key_whose_sessions_are_all_quarantined_says_so(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, option: str, counts: str
) -> None:
    """The name is right, its sessions are quarantined: the remedy is include_quarantined, not the name."""
    seed(atlas_db, "r", keys=("alpha-key", "beta-key"), mean=0.9)
    quarantined = atlas_db.execute(
        "UPDATE sessions SET review_status = 'quarantined' WHERE metadata->>'learning_key' = 'beta-key'"
    ).rowcount
    atlas_db.commit()
    assert quarantined > 0
    pytester.makefile(
        ".toml",
        pyproject=gate(
            "floor", option + 'kind = "threshold"\nthreshold = 0.5\nlearning_key = ["alpha-key", "beta-key"]'
        ),
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "floor / beta-key: learning key 'beta-key' is named in learning_key, but the gate read no usable "
            f"session of it: its {quarantined} session(s) are all quarantined: {counts} "
            "to count them, or leave it out of learning_key",
        ]
    )
    result.stdout.no_fnmatch_line("*fix the name*")


def test_a_named_task_without_sessions_fails(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    seed(atlas_db, "r", tasks=("triage the ticket", "summarise the log"), mean=0.9)
    pytester.makefile(
        ".toml",
        pyproject=gate(
            "floor", 'kind = "threshold"\nthreshold = 0.5\ntask = ["triage the ticket", "sumarise the log"]'
        ),
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1, result.stdout.str()
    assert check_counts(result, "gates") == {"failed": 1}
    result.stdout.fnmatch_lines(
        [
            "floor*task: sumari…*0*no sessions*FAIL*",
            "floor / task: sumari…: task 'sumarise the log' is named in task, but the gate read no usable "
            "session of it (did you mean 'summarise the log'?): fix the name, or leave it out of task",
        ]
    )


def test_a_missing_key_cannot_be_accepted_away(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str) -> None:
    """An accepted regression covers failures the data showed, not a key the gate never read."""
    seed(atlas_db, "main", keys=("k1", "k2"))
    seed(atlas_db, "candidate", keys=("k1", "k2"), start=1000)
    pytester.makefile(
        ".toml",
        pyproject=REGRESSION.format(
            candidate='metadata = { run = "candidate" }\nlearning_key = ["k1", "k3"]',
            baseline='{ metadata = { run = "main" }, learning_key = ["k1", "k3"] }',
        )
        + '\n[[tool.pytest-atlas.accept]]\ngate = "no-regression"\nuntil = 2999-01-01\nreason = "ticket 1"\n',
    )
    result = run(pytester, atlas_dsn)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["no-regression / k3: learning key 'k3' is named in learning_key, but the gate read no usable session of it*"]
    )


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "threshold", "threshold": 0.5},
        {"kind": "regression", "baseline": {"metadata": {"run": "main"}, "learning_key": ["k1", "k9"]}},
        {"kind": "drift"},
        {"kind": "review"},
        {"kind": "execution_modes", "modes": {"auto": [0.5, 1.0]}},
        {"kind": "fields", "baseline": {"metadata": {"run": "main"}}},
        {"kind": "threshold", "threshold": 0.5, "by_key": False},
        {"kind": "review", "by_key": False},
    ],
    ids=lambda options: "-".join(str(v) for v in options.values() if isinstance(v, str | bool)),
)
def test_every_kind_fails_on_a_named_key_it_read_nothing_of(atlas_db: Conn, options: dict[str, Any]) -> None:
    seed(atlas_db, "main", keys=("k1",))
    seed(atlas_db, "candidate", keys=("k1",), start=1000)
    spec = GateSpec.build(
        "g", {**options, "learning_key": ["k1", "k9"], "metadata": {"run": "candidate"}, "allow_inconclusive": True}
    )
    result = evaluate(spec, atlas_db)
    missing = [row for row in result.rows if row.learning_key == "k9"]
    assert result.outcome.value == "fail", result.rows
    assert [(row.statistic, row.outcome.value) for row in missing] == [("no sessions", "fail")]
    assert "learning key 'k9' is named in learning_key, but the gate read no usable session of it" in missing[0].reason
