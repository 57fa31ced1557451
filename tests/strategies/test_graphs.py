"""session_graphs(): consistent across tables, pinnable, varied, small when shrunk, repeatable."""

from __future__ import annotations

from datetime import datetime, timezone
from statistics import fmean, pstdev
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import seed as hypothesis_seed

from pytest_atlas.errors import InvalidArgument
from pytest_atlas.strategies import SessionGraph, session_graphs
from pytest_atlas.validation import iter_errors

FIND = settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def schema_errors(graph: SessionGraph) -> list[str]:
    """Every JSONB value of the graph checked against its schema."""
    checks: list[tuple[Any, str]] = []
    session = graph.session
    if session["metadata"] is not None:
        checks.append((session["metadata"], "session-metadata"))
    for column, schema in (
        ("reward", "session-reward"),
        ("reward_stats", "reward-stats"),
        ("reward_audit", "reward-audit"),
    ):
        if session[column] is not None:
            checks.append((session[column], schema))
    if graph.plan is not None:
        checks.append((graph.plan, "plan"))
    for row in graph.step_results:
        checks.append((row["evaluation"], "step-evaluation"))
        if row["metadata"] is not None:
            checks.append((row["metadata"], "step-metadata"))
    checks += [(row["evaluation"], "step-evaluation") for row in graph.step_attempts]
    checks += [(row["event"], "trajectory-event") for row in graph.trajectory_events]
    return [f"{schema} {v.format()}" for document, schema in checks for v in iter_errors(document, schema)]


def check_consistency(graph: SessionGraph) -> None:
    session = graph.session
    metadata = session["metadata"]
    status = session["status"]
    assert metadata["learning_key"] == graph.learning_key
    # -- steps -----------------------------------------------------------------------------------
    if status == "succeeded":
        assert graph.plan is not None
        plan_ids = [step["id"] for step in graph.plan["steps"]]
        assert [row["step_id"] for row in graph.step_results] == plan_ids
        for row in graph.step_results:
            attempts = [a for a in graph.step_attempts if a["step_id"] == row["step_id"]]
            assert [a["attempt"] for a in attempts] == list(range(1, row["attempts"] + 1))
            if attempts:
                assert attempts[-1]["evaluation"] == row["evaluation"]
            notes = [n for n in graph.guidance_notes if n["step_id"] == row["step_id"]]
            assert [n["sequence"] for n in notes] == list(range(1, len(notes) + 1))
            assert len(notes) == max(row["attempts"] - 1, 0)
        notes = [n["note"].strip() for n in graph.guidance_notes if n["note"].strip()]
        assert metadata.get("teacher_notes", []) == notes
        assert "review" in metadata and "reward_summary" in metadata
    else:
        assert graph.plan is None and graph.step_results == [] and graph.step_attempts == []
        assert session["reward"] is None and session["reward_stats"] is None
        assert session["final_answer"] == ("" if status == "failed" else None)
    # -- time ------------------------------------------------------------------------------------
    created, completed = session["created_at"], session["completed_at"]
    assert created.tzinfo is not None
    if status == "running":
        assert completed is None and graph.trajectory_events == []
        assert not {"review", "triage_dossier", "execution_mode", "reward_summary"} & set(metadata)
    else:
        assert completed >= created
    stamps = [row["event"]["payload"]["event_timestamp"] for row in graph.trajectory_events]
    assert stamps == sorted(stamps)
    if stamps:
        assert created.timestamp() <= stamps[0] and stamps[-1] <= completed.timestamp()
    written = [row["created_at"] for row in graph.trajectory_events]
    assert written == sorted(written) and all(w >= completed for w in written)
    event_types = [row["event"]["payload"]["event_type"] for row in graph.trajectory_events]
    if status == "succeeded":
        assert event_types[0] == "WORKFLOW_START" and event_types[-1] == "WORKFLOW_END"
    assert "WORKFLOW_END" not in event_types or status == "succeeded"
    # -- reward ----------------------------------------------------------------------------------
    stats = session["reward_stats"]
    if stats is not None:
        samples = session["reward"]["judges"][0]["samples"]
        scores = [s["score"] for s in samples]
        uncertainties = [s["uncertainty"] for s in samples]
        assert stats["score"] == session["reward"]["score"] == sum(scores) / len(scores)
        assert stats["score_mean"] == stats["score"]
        assert stats["sample_count"] == len(samples)
        assert stats["score_stddev"] == (pstdev(scores) if len(scores) > 1 else 0.0)
        assert stats["uncertainty_mean"] == fmean(uncertainties)
        assert stats["best_uncertainty"] == min(uncertainties)
        assert metadata["reward_stats"] == stats and metadata["session_reward"] == session["reward"]
        assert metadata["reward_summary"]["score"] == stats["score"]
        assert datetime.fromisoformat(stats["timestamp"]) <= completed
    elif status == "succeeded":
        assert set(metadata["reward_summary"]) == {"average", "count"}
    # -- drift and review ------------------------------------------------------------------------
    drift = metadata.get("drift")
    if drift is not None:
        assert stats is not None and metadata["drift_alert"] is drift["alert"]
        baseline = drift["baseline"]
        if drift["score_z"] is not None:
            expected = (stats["score"] - baseline["score_mean"]) / baseline["score_stddev"]
            assert drift["score_z"] == pytest.approx(expected)
        if drift["alert"]:
            assert metadata["review_status"] == "pending"
            assert metadata["review_notes"] == drift["message"]
    if metadata.get("review_status") == "approved" and metadata.get("review_notes"):
        assert metadata["review"]["require_approval"] is False


@settings(max_examples=250, deadline=None)
@given(graph=session_graphs())
def test_graphs_are_consistent_and_valid(graph: SessionGraph) -> None:
    check_consistency(graph)
    assert schema_errors(graph) == []


PINS: list[dict[str, Any]] = [
    {"learning_key": "team/checkout"},
    {"status": "failed"},
    {"status": "running"},
    {"review_status": "quarantined"},
    {"execution_mode": "coach"},
    {"execution_mode": "escalate"},
    {"score": (0.9, 1.0)},
    {"steps": 3},
    {"events": (30, 40)},
    {"events": 3},
    {"attempts": 3, "execution_mode": "paired"},
    {"drift_alert": True},
    {"drift_alert": False},
    {"legacy": False},
    {"created_at": datetime(2025, 6, 1, tzinfo=timezone.utc), "task": "triage the outage"},
    {"metadata": {"source": "ci", "tags": ["nightly"]}},
]


@pytest.mark.parametrize("pins", PINS, ids=lambda pins: ",".join(f"{k}={v!r}" for k, v in pins.items()))
def test_pinned_arguments_are_honoured(pins: dict[str, Any]) -> None:
    @settings(max_examples=25, deadline=None)
    @given(graph=session_graphs(**pins))
    def check(graph: SessionGraph) -> None:
        check_consistency(graph)
        assert schema_errors(graph) == []
        session, metadata = graph.session, graph.session["metadata"]
        for name, value in pins.items():
            if name == "learning_key":
                assert graph.learning_key == value
            elif name in ("status", "review_status", "task", "created_at"):
                assert session[name] == value
            elif name == "execution_mode":
                assert metadata["execution_mode"] == value
            elif name == "score":
                assert graph.score is not None and value[0] <= graph.score <= value[1]
            elif name == "steps":
                assert len(graph.step_results) == value and graph.plan["execution_mode"] == "stepwise"
            elif name == "events":
                low, high = (value, value) if isinstance(value, int) else value
                assert low <= len(graph.trajectory_events) <= high
            elif name == "attempts":
                assert all(row["attempts"] == value for row in graph.step_results)
            elif name == "drift_alert":
                assert metadata["drift"]["alert"] is value and session["status"] == "succeeded"
            elif name == "legacy":
                assert metadata.get("execution_mode") != "escalate"
                assert graph.plan is None or graph.plan["execution_mode"] == "single_shot"
            elif name == "metadata":
                assert {k: metadata[k] for k in value} == value

    check()


QUIRKS = {
    "tags given as a string": lambda g: isinstance(g.session["metadata"].get("tags"), str),
    "a str(datetime) caller timestamp": lambda g: " " in str(g.session["metadata"].get("requested_at", "")),
    "reward_summary {average, count}": lambda g: "average" in g.session["metadata"].get("reward_summary", {}),
    "reward_summary {score, ...}": lambda g: "score" in g.session["metadata"].get("reward_summary", {}),
    "empty learning_history": lambda g: (
        g.session["metadata"].get("learning_history") == {"entries": [], "count": 0, "total_count": 0}
    ),
    "populated learning_history": lambda g: g.session["metadata"].get("learning_history", {}).get("count", 0) > 0,
    "learning_state {metadata: {}}": lambda g: g.session["metadata"].get("learning_state") == {"metadata": {}},
    "learning_state.updated_at with a space": lambda g: (
        " " in g.session["metadata"].get("learning_state", {}).get("updated_at", "")
    ),
    "stale review_status": lambda g: (
        g.session["metadata"].get("review_status") not in (None, g.session["review_status"])
    ),
    "legacy escalate": lambda g: g.session["metadata"].get("execution_mode") == "escalate",
    "stepwise multi-step plan": lambda g: g.plan is not None and len(g.plan["steps"]) > 1,
    "orphan LLM_START": lambda g: (
        [r["event"]["payload"]["event_type"] for r in g.trajectory_events].count("LLM_START")
        > [r["event"]["payload"]["event_type"] for r in g.trajectory_events].count("LLM_END")
    ),
    "escalated reward": lambda g: bool(g.session["reward"]) and g.session["reward"]["judges"][0]["escalated"],
    "failed tier-1 call": lambda g: any("error" in e for e in g.session["reward_audit"] or []),
    "drift alert": lambda g: bool(g.session["metadata"].get("drift_alert")),
    "insufficient baseline": lambda g: g.session["metadata"].get("drift", {}).get("reason") == "insufficient_baseline",
    "auto-approved": lambda g: g.session["metadata"].get("review_notes") == "Auto-approved (review gating disabled).",
    "NULL step metadata": lambda g: any(row["metadata"] is None for row in g.step_results),
    "mock raw_response": lambda g: any(
        e.get("raw_response") == {"mock": True} for e in g.session["reward_audit"] or []
    ),
}


def test_defaults_reach_every_quirk() -> None:
    """Real data's quirks come out of the defaults; nothing needs pinning."""
    seen: dict[str, int] = dict.fromkeys(QUIRKS, 0)

    @settings(max_examples=400, deadline=None, database=None, phases=[Phase.generate], derandomize=True)
    @given(graph=session_graphs())
    def survey(graph: SessionGraph) -> None:
        for name, present in QUIRKS.items():
            seen[name] += bool(present(graph))

    survey()
    assert [name for name, count in seen.items() if count == 0] == []


def first_example(strategy: Any, predicate: Any) -> Any:
    """The first generated example satisfying ``predicate`` (no shrinking: fast on large graphs)."""
    found: list[Any] = []

    @settings(max_examples=1000, deadline=None, database=None, phases=[Phase.generate], derandomize=True)
    @given(value=strategy)
    def search(value: Any) -> None:
        if not found and predicate(value):
            found.append(value)

    search()
    assert found, "no example satisfied the predicate"
    return found[0]


def test_timestamps_in_all_three_formats() -> None:
    graph = first_example(
        session_graphs(status="succeeded"),
        lambda g: g.session["reward_stats"] is not None and g.trajectory_events != [],
    )
    iso = graph.session["reward_stats"]["timestamp"]
    assert "T" in iso and iso.endswith("+00:00")
    assert isinstance(graph.trajectory_events[0]["event"]["payload"]["event_timestamp"], float)
    spaced = first_example(session_graphs(), QUIRKS["a str(datetime) caller timestamp"])
    text = spaced.session["metadata"]["requested_at"]
    assert "T" not in text and datetime.fromisoformat(text).tzinfo is not None


def test_shrinks_to_a_small_graph() -> None:
    """A property that fails on every succeeded session shrinks to one step, one attempt, few events."""
    graph = find(session_graphs(), lambda g: g.session["status"] == "succeeded", settings=FIND)
    assert len(graph.step_results) == 1 and len(graph.step_attempts) == 1 and graph.guidance_notes == []
    assert len(graph.trajectory_events) <= 10


def test_shrinking_a_failing_test_reports_a_small_graph() -> None:
    seen: list[SessionGraph] = []

    @settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate, Phase.shrink])
    @given(graph=session_graphs())
    def property_that_fails(graph: SessionGraph) -> None:
        seen.append(graph)
        assert graph.score is None or graph.score < 0.5

    with pytest.raises(AssertionError):
        property_that_fails()
    smallest = seen[-1]  # the last call replays the shrunk example
    assert smallest.score is not None and smallest.score >= 0.5
    assert len(smallest.step_results) == 1 and len(smallest.trajectory_events) <= 10


def test_shrinking_keeps_only_what_the_failure_needs() -> None:
    seen: list[SessionGraph] = []

    @settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate, Phase.shrink])
    @given(graph=session_graphs())
    def property_that_fails(graph: SessionGraph) -> None:
        seen.append(graph)
        assert not graph.guidance_notes

    with pytest.raises(AssertionError) as caught:
        property_that_fails()
    smallest = seen[-1]
    assert len(smallest.guidance_notes) == 1 and len(smallest.step_results) <= 2
    assert len(smallest.trajectory_events) <= 14
    assert "SessionGraph(task=" in str(caught.value.__notes__)  # the one-line summary, not the whole JSON


def test_derandomize_repeats_the_same_graphs() -> None:
    def run() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        @settings(max_examples=20, derandomize=True, database=None, deadline=None)
        @given(graph=session_graphs())
        def collect(graph: SessionGraph) -> None:
            out.append(graph.as_dict())

        collect()
        return out

    first, second = run(), run()
    assert len(first) == 20 and first == second
    assert len({repr(g["session"]["task"]) for g in first}) > 1


@pytest.mark.parametrize("seed", [0, 1, 2**40])
def test_hypothesis_seed_repeats_the_same_graphs(seed: int) -> None:
    runs: list[list[dict[str, Any]]] = []
    for _ in range(2):

        @hypothesis_seed(seed)
        @settings(max_examples=5, database=None, deadline=None)
        @given(graph=session_graphs())
        def collect(graph: SessionGraph) -> None:
            runs[-1].append(graph.as_dict())

        runs.append([])
        collect()
    assert runs[0] == runs[1] and len(runs[0]) == 5


BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"status": "done"}, "status='done'"),
    ({"score": 1.5}, "score=1.5"),
    ({"score": (0.9, 0.1)}, "score=(0.9, 0.1)"),
    ({"score": float("nan")}, "score=nan"),
    ({"steps": 0}, "steps=0"),
    ({"steps": "2"}, "steps='2'"),
    ({"events": -1}, "events=-1"),
    ({"drift_alert": "yes"}, "drift_alert='yes'"),
    ({"learning_key": ""}, "learning_key=''"),
    ({"learning_key": "a\x00b"}, "learning_key="),
    ({"execution_mode": "turbo"}, "execution_mode='turbo'"),
    ({"created_at": datetime(2025, 1, 1)}, "created_at="),
    ({"metadata": {"x": float("inf")}}, "metadata="),
    ({"status": "failed", "score": 0.5}, "status='failed'"),
    ({"status": "running", "drift_alert": True}, "status='running'"),
    ({"status": "running", "events": 5}, "events=5"),
    ({"status": "succeeded", "events": 4}, "events=4"),
    ({"attempts": 3, "events": 9}, "events=9"),
    ({"legacy": False, "steps": 3}, "steps=3"),
    ({"status": "running", "execution_mode": "auto"}, "execution_mode='auto'"),
    ({"legacy": False, "execution_mode": "escalate"}, "execution_mode='escalate'"),
]


@pytest.mark.parametrize(("arguments", "shown"), BAD_ARGUMENTS, ids=[repr(a) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_fail_up_front(arguments: dict[str, Any], shown: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        session_graphs(**arguments)  # raised when the strategy is created, not when drawn
    message = str(caught.value)
    first, second = message.splitlines()[:2]
    name, _, value = shown.partition("=")
    assert first.startswith(f"session_graphs(): {name} must be ") and first.endswith(f", got {value}" if value else "")
    assert second.startswith("  how to fix: ")


def test_pinned_events_of_a_session_without_attempts_end_with_workflow_end() -> None:
    """A legacy step that hit a runtime error has no attempt (and no TASK span): the extra events a
    pinned count asks for are placed inside the workflow, never after its WORKFLOW_END.
    (Hypothesis found SessionGraph(status='succeeded', steps=1, attempts=0, events=30) ending in
    LLM_START; this reaches the same shape through the seeded factory, deterministically.)"""
    from pytest_atlas.factories import Factory

    factory = Factory(5)
    graphs = [factory.session(events=(30, 40), legacy=True, status="succeeded") for _ in range(40)]
    without = [g for g in graphs if not g.step_attempts]
    assert without, "the factory's seed 5 no longer draws a session without attempts: pick another seed"
    for graph in without:
        check_consistency(graph)
        assert 30 <= len(graph.trajectory_events) <= 40


@pytest.mark.parametrize(
    "arguments",
    [{"status": "failed", "steps": 2}, {"status": "running", "attempts": 2}, {"status": "failed", "attempts": 1}],
)
def test_pins_a_failed_or_running_session_would_ignore_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match=r"must be None for a (failed|running) session"):
        session_graphs(**arguments)


@pytest.mark.parametrize("events", [8, (6, 12), (8, 9)])
def test_a_small_pinned_event_count_never_cuts_a_succeeded_session_short(events: Any) -> None:
    """A legacy multi-step plan needs more events than a small pinned count leaves room for: the
    graph then has fewer steps, never a cut-off event list without WORKFLOW_END (Hypothesis found
    SessionGraph(status='succeeded', steps=2, attempts=2, events=8) ending in TASK_START)."""
    from pytest_atlas.factories import Factory

    factory = Factory(3)
    for _ in range(60):
        graph = factory.session(events=events, legacy=True, status="succeeded")
        check_consistency(graph)


def test_the_suite_runs_hypothesis_without_an_example_database() -> None:
    """A local .hypothesis folder must not change the suite's verdict (tests/conftest.py)."""
    assert settings.default.database is None
