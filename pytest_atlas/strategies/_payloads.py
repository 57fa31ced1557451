"""One strategy per JSONB payload (one per JSON Schema in ``jsonschemas/``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from pytest_atlas._arguments import (
    call_bool,
    call_choice,
    call_count,
    call_error,
    call_interval,
    call_str,
)
from pytest_atlas.domain import (
    EPOCH,
    EVENT_TYPES,
    MAX_STEPS,
    Doc,
    GraphOptions,
    RewardOutcome,
    Source,
    build_discovery_metadata,
    build_discovery_payload,
    build_drift,
    build_graph,
    build_plan,
    build_registry_metadata,
    build_reward,
    build_step_metadata,
    evaluation_for,
    graph_options,
    moment_after,
    single_event,
    sketch_steps,
    step_output,
)
from pytest_atlas.strategies._source import HypothesisSource

__all__ = [
    "discovery_metadata",
    "discovery_payloads",
    "drift_assessments",
    "learning_registry_metadata",
    "plans",
    "reward_audits",
    "reward_stats",
    "session_metadata",
    "session_rewards",
    "step_evaluations",
    "step_metadata",
    "trajectory_events",
]


# --------------------------------------------------------------------------------------------------
# sessions.metadata
# --------------------------------------------------------------------------------------------------


@st.composite
def _metadata(draw: st.DrawFn, options: GraphOptions) -> Doc:
    graph = build_graph(HypothesisSource(draw), options)
    metadata: Doc = graph.session["metadata"]
    return metadata


def session_metadata(
    *,
    learning_key: str | None = None,
    status: str | None = None,
    review_status: str | None = None,
    execution_mode: str | None = None,
    score: float | tuple[float, float] | None = None,
    steps: int | tuple[int, int] | None = None,
    drift_alert: bool | None = None,
    legacy: bool | None = None,
) -> st.SearchStrategy[Doc]:
    """``sessions.metadata`` documents, as Atlas leaves them after a run.

    Succeeded runs carry the caller's keys plus ``learning_key``, ``review``, ``triage_dossier``,
    ``adaptive_summary``, ``execution_mode``, ``reward_summary``, usually ``session_reward``,
    ``reward_stats``, ``reward_audit``, ``drift``/``drift_alert``, ``learning_usage``,
    ``learning_history`` and the optional keys; failed runs follow the failure path (no reward keys,
    no ``review``); running ones only the creation-time keys. Quirks included: ``tags`` as a string,
    ``str(datetime)`` caller values, both ``reward_summary`` shapes, empty and populated
    ``learning_history``, ``learning_state: {"metadata": {}}``, legacy ``escalate``, stale
    ``review_status``. Arguments pin the corresponding part of the session (see
    :func:`session_graphs`); ``review_status`` pins the *column*, so the metadata copy may differ.

    Shrinks towards a succeeded current-runtime run with an empty learning history and no
    optional keys.
    """
    options = graph_options(
        "session_metadata",
        learning_key=learning_key,
        status=status,
        review_status=review_status,
        execution_mode=execution_mode,
        score=score,
        steps=steps,
        drift_alert=drift_alert,
        legacy=legacy,
    )
    return _metadata(replace(options, with_events=False))


# --------------------------------------------------------------------------------------------------
# rewards
# --------------------------------------------------------------------------------------------------


def _outcome(src: Source, score: tuple[float, float] | None, *, light: bool = False) -> RewardOutcome:
    moment = moment_after(src, EPOCH, 0, 300 * 86400)
    task = "" if light else src.sentence(3, 10)
    mode = src.pick(("paired", "auto", "coach"))
    return build_reward(
        src,
        task=task,
        moment=moment,
        score_range=score or (0.0, 1.0),
        execution_mode=mode,
        teacher_intervened=src.flag(0.3),
        light=light,
    )


@st.composite
def _rewards(draw: st.DrawFn, score: tuple[float, float] | None, part: str) -> Any:
    outcome = _outcome(HypothesisSource(draw), score, light=part == "stats")
    return {"reward": outcome.reward, "stats": outcome.stats, "audit": outcome.audit}[part]


def session_rewards(*, score: float | tuple[float, float] | None = None) -> st.SearchStrategy[Doc]:
    """``sessions.reward`` (= ``metadata.session_reward``): the RIM evaluator's reward breakdown.

    ``score`` is the mean of the judge's samples; one judge ``session_reward`` with 1-3 tier-1
    samples, or one arbiter sample after an escalation (``escalated`` true, reason
    ``tier1_variance_or_uncertainty``), or the synthetic "No valid reward sample produced." sample
    (score 0.0, uncertainty 1.0) when every call failed; ``raw`` repeats score and samples.
    ``score`` pins the score to a number or ``(min, max)`` range in 0..1.
    Shrinks towards three agreeing tier-1 samples with no principles.
    """
    interval = call_interval("session_rewards", "score", score, lo=0.0, hi=1.0)
    return _rewards(interval, "reward")


def reward_stats(*, score: float | tuple[float, float] | None = None) -> st.SearchStrategy[Doc]:
    """``sessions.reward_stats``: ``score`` = ``score_mean``, ``score_stddev``, ``sample_count``
    (1-3), ``uncertainty_mean``, ``uncertainty_stddev``, ``best_uncertainty`` and an ISO
    ``timestamp``, all computed from the reward samples the evaluator drew (so they agree with
    :func:`session_rewards` of the same session). ``score`` pins the score to a number or range.
    Shrinks like :func:`session_rewards`.
    """
    interval = call_interval("reward_stats", "score", score, lo=0.0, hi=1.0)
    return _rewards(interval, "stats")


def reward_audits(*, score: float | tuple[float, float] | None = None) -> st.SearchStrategy[list[Doc]]:
    """``sessions.reward_audit`` arrays: three tier-1 entries (temperatures 0.2, 0.5, 0.8; each an
    answer with ``response``/``reasoning``/``raw_response`` or an ``error`` repr), plus an arbiter
    entry after an escalation; ``raw_response`` is a ``ModelResponse(...)`` repr string or
    ``{"mock": true}``. Shrinks towards three successful tier-1 entries.
    """
    interval = call_interval("reward_audits", "score", score, lo=0.0, hi=1.0)
    return _rewards(interval, "audit")


@st.composite
def _drifts(draw: st.DrawFn, alert: bool | None, key: str | None) -> Doc:
    src = HypothesisSource(draw)
    outcome = _outcome(src, None, light=True)
    return build_drift(src, outcome.stats, key=key if key is not None else src.hexdigits(64), alert=alert)


def drift_assessments(*, alert: bool | None = None, learning_key: str | None = None) -> st.SearchStrategy[Doc]:
    """``metadata.drift``: Atlas's drift assessment of a session's ``reward_stats`` against a drawn
    history of earlier sessions (which includes the session itself, as in Atlas), computed with
    Atlas's formulas: deltas, z-scores and MAD z-scores (``null`` when undefined), ``alert`` =
    ``drift_alert``, the first metric whose magnitude reaches the threshold as ``reason`` (or
    ``insufficient_baseline``), the 11-key ``baseline``, and ``message`` only on alert.
    ``alert`` forces the outcome. Shrinks towards a short history and no alert.
    """
    forced = call_bool("drift_assessments", "alert", alert)
    key = call_str("drift_assessments", "learning_key", learning_key)
    return _drifts(forced, key)


# --------------------------------------------------------------------------------------------------
# events, plans, steps
# --------------------------------------------------------------------------------------------------


@st.composite
def _events(draw: st.DrawFn, event_types: tuple[str, ...]) -> Doc:
    src = HypothesisSource(draw)
    return single_event(src, moment_after(src, EPOCH, 0, 300 * 86400), event_types=event_types)


def trajectory_events(*, event_type: str | None = None) -> st.SearchStrategy[Doc]:
    """``trajectory_events.event``: IntermediateStep envelopes ``{parent_id, function_ancestry,
    payload}`` with the ten payload keys, any of the 16 event types (``event_type`` pins one),
    orchestrator events with ``metadata`` null and graph-bridge events with their ``actor``,
    ``step_id``, ``run_id``, ``node``, ``node_type`` metadata; ``event_timestamp`` is epoch
    seconds. For events that form a session's tree, use :func:`session_graphs`.
    Shrinks towards an LLM_START event with the simplest metadata.
    """
    chosen = call_choice("trajectory_events", "event_type", event_type, EVENT_TYPES)
    return _events((chosen,) if chosen else EVENT_TYPES)


@st.composite
def _plans(draw: st.DrawFn, steps: tuple[int, int] | None, legacy: bool | None) -> Doc:
    src = HypothesisSource(draw)
    old = legacy if legacy is not None else (steps is not None and steps[1] > 1) or src.flag(0.3)
    lo, hi = steps if steps is not None else ((1, 5) if old else (1, 1))
    count = src.integer(lo, hi)
    stepwise = old and (count > 1 or src.flag(0.5))
    mode = "coach" if not stepwise and src.flag(0.3) else "paired"
    coach = [src.sentence(2, 6) for _ in range(src.integer(1, 3))] if mode == "coach" else None
    sketches = sketch_steps(src, count=count, stepwise=stepwise, mode=mode, attempts=(1, 1), coach_lines=coach)
    return build_plan(sketches, stepwise=stepwise)


def plans(*, steps: int | tuple[int, int] | None = None, legacy: bool | None = None) -> st.SearchStrategy[Doc]:
    """``plans.plan``: ``{steps, execution_mode}``. Current-runtime plans are ``single_shot`` with one
    step (id 1, the fixed single-response description, optionally with a coach's reviewed plan,
    ``tool``/``tool_params`` null, ``depends_on`` empty); legacy plans are ``stepwise`` with 1..5
    steps, tools, ``tool_params`` objects and ``depends_on`` items that are ints or strings.
    ``steps`` (1..8) pins the number of steps (more than one implies legacy); ``legacy`` allows or
    forbids the historical shape. Shrinks towards the one-step single-shot plan.
    """
    count = call_count("plans", "steps", steps, lo=1, hi=MAX_STEPS)
    old = call_bool("plans", "legacy", legacy)
    if old is False and count is not None and count[0] > 1:
        raise call_error(
            "plans",
            "steps",
            steps,
            "1 when legacy=False",
            hint="the current runtime writes one-step plans only; pass legacy=True for multi-step plans",
        )
    return _plans(count, old)


@st.composite
def _evaluations(draw: st.DrawFn, valid: bool | None) -> Doc:
    src = HypothesisSource(draw)
    mode = src.pick(("paired", "auto", "coach"))
    sketches = sketch_steps(src, count=1, stepwise=src.flag(0.2), mode=mode, attempts=(1, 3))
    sketch = sketches[0]
    if valid is None:
        attempt = src.integer(1, max(sketch.attempts, 1))
    else:
        attempt = max(sketch.attempts, 1) if valid else 1
        if not valid:
            mode = "paired"
            sketch = replace(
                sketch,
                attempts=max(sketch.attempts, 2),
                guidance=sketch.guidance or ("Answer the question that was asked.",),
            )
    return evaluation_for(src, sketch, mode=mode, attempt=attempt, output=step_output(src))


def step_evaluations(*, valid: bool | None = None) -> st.SearchStrategy[Doc]:
    """``step_results.evaluation`` / ``step_attempts.evaluation``: ``{validation, reward}`` where the
    reward is the runtime's placeholder (score 0.0, ``deferred`` or ``validation_failed``, legacy
    ``runtime_error``) and the validation is the pass-through ``{valid: true, guidance: null}`` or
    the teacher's verdict with ``validation_request``. ``valid`` pins ``validation.valid``.
    Shrinks towards the pass-through validation.
    """
    forced = call_bool("step_evaluations", "valid", valid)
    return _evaluations(forced)


@st.composite
def _step_metadata(draw: st.DrawFn) -> Doc:
    src = HypothesisSource(draw)
    metadata = build_step_metadata(src, output=step_output(src), empty_allowed=False)
    assert metadata is not None
    return metadata


def step_metadata() -> st.SearchStrategy[Doc]:
    """``step_results.metadata``: the student's ``reasoning`` list (two item shapes, with
    depth-truncated repr strings), ``artifacts``, ``deliverable``, ``result``,
    ``structured_output``, ``runtime`` ``{reward_skipped, timings_ms}`` and optional ``usage``,
    ``reason``, ``text``, ``status``. (Atlas writes NULL instead of ``{}``; row strategies produce
    that.) Shrinks towards an empty reasoning list and no optional keys.
    """
    return _step_metadata()


# --------------------------------------------------------------------------------------------------
# discovery and learning registry
# --------------------------------------------------------------------------------------------------


@st.composite
def _discovery_payloads(draw: st.DrawFn, empty: bool | None) -> Doc:
    src = HypothesisSource(draw)
    return build_discovery_payload(src, moment_after(src, EPOCH, 0, 300 * 86400), empty=empty)


def discovery_payloads(*, empty: bool | None = None) -> st.SearchStrategy[Doc]:
    """``discovery_runs.payload``: the discovery worker's result ``{plan, final_answer, telemetry,
    reward, schema, history, capabilities}``; ``reward.total`` is 0.0 (not null) when steps ran but
    none returned a number; ``empty=True`` gives the skip path (same keys, empty values).
    Shrinks towards a run with no steps and no telemetry.
    """
    return _discovery_payloads(call_bool("discovery_payloads", "empty", empty))


@st.composite
def _discovery_metadata(draw: st.DrawFn, source: str | None) -> Doc:
    src = HypothesisSource(draw)
    moment = moment_after(src, EPOCH, 0, 300 * 86400)
    kind = source or src.pick(("discovery", "runtime"))
    payload = build_discovery_payload(src, moment)
    return build_discovery_metadata(
        src,
        moment + timedelta(seconds=1),
        source=kind,
        project_root=src.pick(("/srv/app", "/home/dev/harness")),
        payload=payload,
    )


def discovery_metadata(*, source: str | None = None) -> st.SearchStrategy[Doc]:
    """``discovery_runs.metadata``: for ``source="discovery"`` (``atlas env init``) the full record
    (``version`` 1, ``generated_at``, environment and agent targets, capabilities, copies of the
    payload's schema/reward/telemetry/history, ``preflight``); for ``source="runtime"`` the
    capabilities and the run artifact path. Shrinks towards the discovery record.
    """
    return _discovery_metadata(call_choice("discovery_metadata", "source", source, ("discovery", "runtime")))


@st.composite
def _registry_metadata(draw: st.DrawFn, entries: tuple[int, int] | None) -> Doc:
    src = HypothesisSource(draw)
    count = src.integer(*entries) if entries is not None else None
    return build_registry_metadata(src, moment_after(src, EPOCH, 0, 300 * 86400), entries=count)


def learning_registry_metadata(*, entries: int | tuple[int, int] | None = None) -> st.SearchStrategy[Doc]:
    """``learning_registry.metadata`` (also ``learning_state.metadata``): ``playbook_version``,
    ``last_evaluation``, ``playbook_entries`` (PlaybookEntry objects with cue, action, scope,
    rubric, provenance and, once observed, ``impact``; alias keys such as ``cue.regex`` sometimes
    kept), ``playbook_summary``, optional ``last_updated_at``/``last_failure``, or a legacy
    free-form object. ``entries`` (0..20) pins the number of playbook entries.
    Shrinks towards a synthesis with no entries.
    """
    return _registry_metadata(call_count("learning_registry_metadata", "entries", entries, lo=0, hi=20))
