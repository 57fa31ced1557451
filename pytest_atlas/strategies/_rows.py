"""One strategy per table: rows as dicts keyed by column (serial ids left to the database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from pytest_atlas._arguments import call_choice, call_str, check_positive_int
from pytest_atlas.domain import (
    EPOCH,
    Doc,
    GraphOptions,
    Source,
    build_discovery_metadata,
    build_discovery_payload,
    build_graph,
    build_registry_metadata,
    graph_options,
    learning_key,
    moment_after,
    single_event,
)
from pytest_atlas.strategies._source import HypothesisSource

__all__ = [
    "discovery_run_rows",
    "guidance_note_rows",
    "learning_registry_rows",
    "plan_rows",
    "session_rows",
    "step_attempt_rows",
    "step_result_rows",
    "trajectory_event_rows",
]


def _check_session_id(function: str, session_id: Any) -> int | None:
    if session_id is None:
        return None
    return check_positive_int(
        "session_id", session_id, expected="a positive int (an existing sessions.id) or None", function=function
    )


def _with_session(row: Doc, session_id: int | None) -> Doc:
    return row if session_id is None else {"session_id": session_id, **row}


@st.composite
def _session_rows(draw: st.DrawFn, options: GraphOptions) -> Doc:
    session: Doc = build_graph(HypothesisSource(draw), options).session
    return session


def session_rows(
    *,
    learning_key: str | None = None,
    status: str | None = None,
    review_status: str | None = None,
    execution_mode: str | None = None,
    score: float | tuple[float, float] | None = None,
    drift_alert: bool | None = None,
    legacy: bool | None = None,
) -> st.SearchStrategy[Doc]:
    """``sessions`` rows (without ``id``): ``task``, ``status``, ``metadata``, ``final_answer``,
    ``reward``, ``reward_stats``, ``reward_audit``, ``student_learning``, ``teacher_learning``,
    ``review_status``, ``review_notes``, ``created_at``, ``completed_at``, agreeing with each other
    as in :func:`session_graphs` (same arguments). Shrinks like :func:`session_graphs`.
    """
    options = graph_options(
        "session_rows",
        learning_key=learning_key,
        status=status,
        review_status=review_status,
        execution_mode=execution_mode,
        score=score,
        drift_alert=drift_alert,
        legacy=legacy,
    )
    return _session_rows(replace(options, with_events=False))


def _graph_rows(src: Source, table: str, *, steps: int) -> list[Doc]:
    graph = build_graph(
        src,
        GraphOptions(
            status="succeeded", steps=(steps, steps), legacy=steps > 1 or None, with_events=table == "trajectory_events"
        ),
    )
    return graph.rows()[table]


@st.composite
def _child_rows(draw: st.DrawFn, table: str, session_id: int | None) -> Doc:
    src = HypothesisSource(draw)
    rows: list[Doc] = []
    while not rows:  # guidance notes need a retried step; draw steps until one has them
        rows = _graph_rows(src, table, steps=src.integer(1, 3))
        if table == "guidance_notes" and not rows:
            graph = build_graph(
                src, GraphOptions(status="succeeded", execution_mode="paired", attempts=(2, 3), with_events=False)
            )
            rows = graph.guidance_notes
    return _with_session(dict(src.pick(rows)), session_id)


def plan_rows(*, session_id: int | None = None) -> st.SearchStrategy[Doc]:
    """``plans`` rows ``{plan}`` (plus ``session_id`` when given); the plan as in :func:`plans`.
    Shrinks towards the one-step single-shot plan."""
    return _child_rows("plans", _check_session_id("plan_rows", session_id))


def step_result_rows(*, session_id: int | None = None) -> st.SearchStrategy[Doc]:
    """``step_results`` rows ``{step_id, trace, output, evaluation, attempts, metadata}`` (plus
    ``session_id`` when given); ``metadata`` is NULL (``None``) when Atlas had nothing to store.
    Shrinks towards step 1 with one attempt."""
    return _child_rows("step_results", _check_session_id("step_result_rows", session_id))


def step_attempt_rows(*, session_id: int | None = None) -> st.SearchStrategy[Doc]:
    """``step_attempts`` rows ``{step_id, attempt, evaluation}`` (plus ``session_id`` when given).
    Shrinks towards attempt 1 of step 1."""
    return _child_rows("step_attempts", _check_session_id("step_attempt_rows", session_id))


def guidance_note_rows(*, session_id: int | None = None) -> st.SearchStrategy[Doc]:
    """``guidance_notes`` rows ``{step_id, sequence, note}`` (plus ``session_id`` when given): the
    teacher's guidance between attempts. Shrinks towards the first note of step 1."""
    return _child_rows("guidance_notes", _check_session_id("guidance_note_rows", session_id))


@st.composite
def _event_rows(draw: st.DrawFn, session_id: int | None) -> Doc:
    src = HypothesisSource(draw)
    moment = moment_after(src, EPOCH, 0, 300 * 86400)
    event = single_event(src, moment)
    written = moment + timedelta(seconds=3600 + src.integer(0, 600))
    return _with_session({"event": event, "created_at": written}, session_id)


def trajectory_event_rows(*, session_id: int | None = None) -> st.SearchStrategy[Doc]:
    """``trajectory_events`` rows ``{event, created_at}`` (plus ``session_id`` when given);
    ``created_at`` is the write time, after the event's own ``event_timestamp``.
    Shrinks like :func:`trajectory_events`."""
    return _event_rows(_check_session_id("trajectory_event_rows", session_id))


@st.composite
def _discovery_rows(draw: st.DrawFn, source: str | None) -> Doc:
    src = HypothesisSource(draw)
    moment = moment_after(src, EPOCH, 0, 300 * 86400)
    kind = source or src.pick(("discovery", "runtime"))
    root = src.pick(("/srv/app", "/home/dev/harness", "."))
    payload = build_discovery_payload(src, moment)
    metadata = build_discovery_metadata(src, moment, source=kind, project_root=root, payload=payload)
    return {
        "project_root": root,
        "task": src.maybe(0.8, lambda: src.sentence(3, 10)),
        "source": kind,
        "payload": payload,
        "metadata": metadata or None,
        "created_at": moment + timedelta(seconds=src.integer(1, 120)),
    }


def discovery_run_rows(*, source: str | None = None) -> st.SearchStrategy[Doc]:
    """``discovery_runs`` rows (without ``id``): ``project_root``, ``task``, ``source``
    (``discovery`` or ``runtime``), ``payload`` (:func:`discovery_payloads`), ``metadata``
    (:func:`discovery_metadata` of the same payload), ``created_at``.
    Shrinks towards a discovery run with no steps."""
    return _discovery_rows(call_choice("discovery_run_rows", "source", source, ("discovery", "runtime")))


@st.composite
def _registry_rows(draw: st.DrawFn, key: str | None) -> Doc:
    src = HypothesisSource(draw)
    moment = moment_after(src, EPOCH, 0, 300 * 86400)
    row: Doc = {"learning_key": key or learning_key(src)}
    if src.flag(0.1):  # 0.1.16 upserts an empty learning state: NULL pamphlets and metadata
        row.update(student_learning=None, teacher_learning=None, metadata=None)
    else:
        row.update(
            student_learning=src.sentence(4, 30),
            teacher_learning=src.maybe(0.7, lambda: src.sentence(4, 30)),
            metadata=build_registry_metadata(src, moment),
        )
    row["updated_at"] = moment
    return row


def learning_registry_rows(*, learning_key: str | None = None) -> st.SearchStrategy[Doc]:
    """``learning_registry`` rows: ``learning_key``, the cumulative ``student_learning`` and
    ``teacher_learning`` pamphlets, ``metadata`` (:func:`learning_registry_metadata`) and
    ``updated_at``; sometimes the 0.1.16 row with all three NULL. Pass ``learning_key`` to tie
    the row to your sessions. Shrinks towards a row with no playbook entries."""
    return _registry_rows(call_str("learning_registry_rows", "learning_key", learning_key))
