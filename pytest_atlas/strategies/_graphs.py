"""``session_graphs()`` and ``export_traces()``: whole sessions, consistent across tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from pytest_atlas.domain import GraphOptions, SessionGraph, build_graph, graph_options, to_export
from pytest_atlas.strategies._source import HypothesisSource

__all__ = ["export_traces", "session_graphs"]

Doc = dict[str, Any]


@st.composite
def _graphs(draw: st.DrawFn, options: GraphOptions) -> SessionGraph:
    return build_graph(HypothesisSource(draw), options)


@st.composite
def _exports(draw: st.DrawFn, options: GraphOptions) -> Doc:
    graph = build_graph(HypothesisSource(draw), options)
    session_id = draw(st.integers(1, 10**6))
    return to_export(graph, session_id=session_id, first_event_id=draw(st.integers(1, 10**7)))


def session_graphs(
    *,
    learning_key: str | None = None,
    task: str | None = None,
    status: str | None = None,
    review_status: str | None = None,
    execution_mode: str | None = None,
    score: float | tuple[float, float] | None = None,
    steps: int | tuple[int, int] | None = None,
    events: int | tuple[int, int] | None = None,
    attempts: int | tuple[int, int] | None = None,
    drift_alert: bool | None = None,
    legacy: bool | None = None,
    created_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> st.SearchStrategy[SessionGraph]:
    """Whole Atlas sessions: a :class:`SessionGraph` with the ``sessions`` row, the plan, step
    results, step attempts, guidance notes and trajectory events, consistent across tables.

    Consistency: plan step ids are the step results' ids; each step's ``attempts`` equals its
    number of ``step_attempts`` rows (numbered 1..n) and its guidance notes are the n-1 notes
    between attempts (also in ``metadata.teacher_notes``); every event belongs to the session, in
    emission order, with ``event_timestamp`` between ``created_at`` and ``completed_at`` and
    ``created_at`` (write time) after both; ``reward_stats`` is computed from the reward samples
    and repeated in the metadata with ``session_reward``, ``reward_summary`` and the audit; the
    drift document is Atlas's assessment of those stats; ``review_status`` follows drift and
    review gating unless a reviewer acted later (then the metadata copy is stale, as in Atlas).
    Succeeded sessions take Atlas's success path, ``failed`` ones the failure path (no plan, no
    steps, no reward, no WORKFLOW_END, ``final_answer`` ``""``), ``running`` ones have only their
    creation-time metadata and no events.

    Pin what your test cares about; everything else varies, including the quirks of real data:
    both timestamp text formats, ``tags`` as a string, both ``reward_summary`` shapes, the empty
    and populated ``learning_history``, ``learning_state: {"metadata": {}}``, legacy
    ``escalate``/``stepwise`` multi-step plans, escalated and failed reward calls, orphan
    LLM_START events. No value is ever NaN or infinite.

    Arguments: ``learning_key``, ``task``; ``status`` (``"succeeded"``, ``"failed"``,
    ``"running"``); ``review_status`` (the column; any non-empty string, usually ``"pending"``,
    ``"approved"`` or ``"quarantined"``); ``execution_mode`` (``"auto"``, ``"paired"``,
    ``"coach"``, legacy ``"escalate"``); ``score`` (a number or ``(min, max)`` in 0..1 for
    ``reward_stats.score``); ``steps`` (1..8), ``events`` (0..2000), ``attempts`` (per step,
    1..5), each an int or ``(min, max)``; ``drift_alert``; ``legacy`` (allow or forbid historical
    shapes); ``created_at`` (aware datetime); ``metadata`` (the caller's session_metadata, used as is).

    Shrinks towards a succeeded, current-runtime session with one step, one attempt, no
    guidance, an empty learning history, no optional metadata and the fewest events (eight).
    """
    options = graph_options(
        "session_graphs",
        learning_key=learning_key,
        task=task,
        status=status,
        review_status=review_status,
        execution_mode=execution_mode,
        score=score,
        steps=steps,
        events=events,
        attempts=attempts,
        drift_alert=drift_alert,
        legacy=legacy,
        created_at=created_at,
        metadata=metadata,
    )
    return _graphs(options)


def export_traces(
    *,
    learning_key: str | None = None,
    status: str | None = None,
    review_status: str | None = None,
    execution_mode: str | None = None,
    score: float | tuple[float, float] | None = None,
    steps: int | tuple[int, int] | None = None,
    events: int | tuple[int, int] | None = None,
    drift_alert: bool | None = None,
    legacy: bool | None = None,
) -> st.SearchStrategy[Doc]:
    """Lines of ``arc-atlas export`` as parsed JSON objects.

    Each is a :func:`session_graphs` graph passed through the exporter's rules: ``session_metadata``
    enriched with ``session_id``, ``status``, ``created_at``, ``completed_at`` and the events;
    steps with flattened metadata, ``tool_params`` ``{}`` for null, the reward's stored dict nested
    as ``raw``; the events as ``{id, event, created_at}`` in chronological order. The export's
    default filter keeps approved sessions only; pass ``review_status="approved"`` for such files.
    Arguments as for :func:`session_graphs`. Shrinks like :func:`session_graphs`.
    """
    options = graph_options(
        "export_traces",
        learning_key=learning_key,
        status=status,
        review_status=review_status,
        execution_mode=execution_mode,
        score=score,
        steps=steps,
        events=events,
        drift_alert=drift_alert,
        legacy=legacy,
    )
    return _exports(options)
