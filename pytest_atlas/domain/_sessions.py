"""Whole sessions: the ``sessions`` row, its metadata, and every row that hangs off it, consistent.

:func:`build_graph` follows Atlas's own order of events, one small function per phase: the session
is created with the caller's metadata and its learning key (:func:`_shape` decides the run's status,
size and mode); the run produces a plan, step attempts with guidance between them
(:func:`_step_rows`), an evaluation (reward, reward_stats, reward_audit), a drift assessment and a
review decision; the metadata is then replaced by caller keys merged with the run's insights
(:mod:`._metadata`); the events are written last (:func:`_event_rows`). Failed sessions take the
failure path (no plan, no steps, no reward, no WORKFLOW_END); running sessions have only their
creation-time metadata.

The phases draw from the :class:`Source` in a fixed order; keep it when you change one (the
shrinking of generated examples and the data of a given factory seed depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pytest_atlas.domain._common import EPOCH, Doc, epoch_seconds, learning_key, moment_after, uuid4
from pytest_atlas.domain._events import AttemptSpan, EventPlan, build_events, envelope, minimum_events
from pytest_atlas.domain._graph import SessionGraph
from pytest_atlas.domain._learning import build_learning_history
from pytest_atlas.domain._metadata import RunFacts, build_session_metadata, caller_metadata
from pytest_atlas.domain._options import GraphOptions
from pytest_atlas.domain._review import (
    Adaptive,
    Review,
    adaptive_route,
    build_drift,
    decide_review,
    drift_against,
    forced_sample,
)
from pytest_atlas.domain._rewards import RewardOutcome, build_reward
from pytest_atlas.domain._source import Source
from pytest_atlas.domain._steps import (
    StepSketch,
    build_plan,
    build_step_metadata,
    evaluation_for,
    sketch_steps,
    step_output,
)

__all__ = ["build_graph"]


def _choose_status(src: Source, opts: GraphOptions) -> str:
    if opts.status is not None:
        return opts.status
    if opts.score is not None or opts.drift_alert is not None or opts.exact_reward is not None:
        return "succeeded"  # only succeeded sessions have a reward (and so a drift assessment)
    if opts.steps is not None or opts.attempts is not None:
        return "succeeded"  # only succeeded sessions have step rows
    if opts.execution_mode is not None and opts.events is None:
        # a running session has not recorded its mode yet
        return src.key_pick(("succeeded", "succeeded", "succeeded", "failed"))
    if opts.events is not None:
        lo, hi = opts.events
        steps_lo = opts.steps[0] if opts.steps else 1
        if hi < minimum_events(attempts=steps_lo, probe=False, coach=False):
            return "failed" if hi > 0 or src.key_flag(0.5) else "running"
        if lo > 0:
            return src.key_pick(("succeeded", "failed"))
    return src.key_pick(("succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "failed", "running"))


@dataclass(frozen=True)
class _Shape:
    """The run's shape, decided first: status, size, mode and times."""

    status: str
    legacy: bool
    key: str
    task: str
    created: datetime
    duration: float
    completed: datetime | None
    events_target: int | None
    step_count: int
    stepwise: bool
    mode: str


@dataclass(frozen=True)
class _Run:
    """What the run did: its step sketches, learning history, route, and which optional events it wrote."""

    sketches: list[StepSketch]
    history: Doc | None
    adaptive: Adaptive
    probe: bool
    coach: bool


@dataclass
class _Rows:
    """The step rows of the run (emptied on the failure path) and the attempt spans its events follow."""

    plan: Doc | None
    step_results: list[Doc]
    step_attempts: list[Doc]
    guidance_notes: list[Doc]
    spans: list[AttemptSpan]
    failure_steps: list[int]


def build_graph(src: Source, opts: GraphOptions) -> SessionGraph:
    """Draw one consistent session graph."""
    shape = _shape(src, opts)
    # the evaluation is drawn early (it does not depend on the steps) so that its key choices, the
    # scores, keep their place in Hypothesis's choice sequence when the steps shrink
    reward = _reward(src, opts, shape)
    run = _run(src, opts, shape)
    rows = _step_rows(src, shape, run)
    status = shape.status
    if reward is not None:
        reward.reward["raw"]["teacher_intervened"] = bool(rows.guidance_notes)
    final_answer: str | None = None
    if status == "succeeded":
        final_answer = src.sentence(2, 20) if src.flag(0.95) else ""
    elif status == "failed":
        final_answer = ""
    drift: Doc | None = None
    if reward is not None:
        if opts.drift is not None:
            drift = opts.drift
        elif opts.drift_alert is not None or src.key_flag(0.85):  # some runs record no assessment
            if opts.drift_history is None:
                drift = build_drift(src, reward.stats, key=shape.key, alert=opts.drift_alert)
            else:
                drift = drift_against(reward.stats, opts.drift_history, key=shape.key)
                if opts.drift_alert is not None and drift["alert"] != opts.drift_alert:  # _reward chose the sample
                    raise AssertionError(f"drift_alert={opts.drift_alert} was not honoured: {drift}")
    review = decide_review(src, status=status, drift=drift, pinned=opts.review_status)
    caller = (
        dict(opts.caller_metadata)
        if opts.caller_metadata is not None
        else caller_metadata(src, shape.created, shape.task)
    )
    student_note = src.maybe(0.5, lambda: src.sentence(4, 16)) if status != "running" else None
    teacher_note = src.maybe(0.4, lambda: src.sentence(4, 16)) if status != "running" else None
    metadata = build_session_metadata(
        src,
        _facts(shape, run, rows, reward, drift, review, caller=caller, student=student_note, teacher=teacher_note),
    )
    events = _event_rows(src, opts, shape, run, rows, final_answer=final_answer, metadata=metadata)
    session: Doc = {
        "task": shape.task,
        "status": status,
        "metadata": metadata or None,
        "final_answer": final_answer,
        "reward": reward.reward if reward else None,
        "reward_stats": reward.stats if reward else None,
        "reward_audit": (reward.audit or None) if reward else None,
        "student_learning": student_note,
        "teacher_learning": teacher_note,
        "review_status": review.column_status,
        "review_notes": review.notes,
        "created_at": shape.created,
        "completed_at": shape.completed,
    }
    return SessionGraph(
        session=session,
        plan=rows.plan,
        step_results=rows.step_results,
        step_attempts=rows.step_attempts,
        guidance_notes=rows.guidance_notes,
        trajectory_events=events,
    )


def _shape(src: Source, opts: GraphOptions) -> _Shape:
    """Status, times, the pinned event count, the number of steps and the execution mode."""
    status = _choose_status(src, opts)
    legacy = opts.legacy if opts.legacy is not None else src.key_flag(0.15)
    key = opts.learning_key or learning_key(src)
    task = opts.task or src.sentence(3, 14)
    created = opts.created_at or moment_after(src, EPOCH, 0, 300 * 86400)
    duration = src.real(1.0, 900.0)
    completed = None if status == "running" else created + timedelta(seconds=duration)
    events_target: int | None = None
    steps_lo, steps_hi = opts.steps if opts.steps is not None else (1, 1)
    if opts.events is not None:
        lo, hi = opts.events
        if status == "succeeded":  # a completed session has at least its structural events
            lo = min(max(lo, minimum_events(attempts=steps_lo, probe=False, coach=False)), hi)
        events_target = src.key_integer(lo, hi)
    # attempts (two events each) a pinned event count leaves room for in a completed session
    budget = (events_target - 6) // 2 if events_target is not None and status == "succeeded" else None
    multi_step = opts.steps is None and legacy and src.key_flag(0.5)
    if multi_step and (budget is None or budget >= 2):  # a multi-step plan needs two attempts at least
        steps_lo, steps_hi = 2, 5
    if budget is not None:
        steps_hi = max(steps_lo, min(steps_hi, budget))
    step_count = src.key_integer(steps_lo, steps_hi)
    stepwise = step_count > 1 or (legacy and src.key_flag(0.3))
    if opts.execution_mode is not None:
        mode = opts.execution_mode
    elif stepwise and legacy:
        mode = src.key_pick(("escalate", "escalate", "paired"))
    else:
        mode = src.key_pick(("paired", "auto", "coach"))
    return _Shape(status, legacy, key, task, created, duration, completed, events_target, step_count, stepwise, mode)


def _reward(src: Source, opts: GraphOptions, shape: _Shape) -> RewardOutcome | None:
    """The session reward, when the evaluation ran (succeeded sessions, nearly always)."""
    evaluation_ran = shape.status == "succeeded" and (
        opts.score is not None or opts.drift_alert is not None or opts.exact_reward is not None or src.key_flag(0.9)
    )
    if not evaluation_ran:
        return None
    reward_moment = (shape.completed or shape.created) - timedelta(seconds=min(shape.duration / 2, 1.0))
    score_range = opts.score or (0.0, 1.0)

    def evaluate(exact: tuple[float, float] | None) -> RewardOutcome:
        return build_reward(
            src,
            task=shape.task,
            moment=reward_moment,
            score_range=score_range,
            execution_mode=shape.mode,
            exact=exact,
            level=opts.reward_level,
        )

    reward = evaluate(opts.exact_reward)
    if opts.drift_history is not None and opts.drift_alert is not None:
        # a forced outcome against a real history: the evaluation yields the sample that gives it
        sample = forced_sample(
            reward.stats, opts.drift_history, key=shape.key, alert=opts.drift_alert, score_range=score_range
        )
        if sample is not None:
            reward = evaluate(sample)
    return reward


def _run(src: Source, opts: GraphOptions, shape: _Shape) -> _Run:
    """The steps' sketches (attempts, guidance), the learning history and the adaptive route."""
    stepwise, step_count, events_target = shape.stepwise, shape.step_count, shape.events_target
    attempts_range = opts.attempts if opts.attempts is not None else ((0, 3) if stepwise else (1, 3))
    if events_target is not None and shape.status == "succeeded":
        spare = (events_target - 6) // 2 - step_count
        attempts_range = (attempts_range[0], max(min(attempts_range[1], 1 + spare // max(step_count, 1)), 1))
    coach_lines = (
        [src.sentence(2, 6) for _ in range(src.integer(1, 3))] if shape.mode == "coach" and not stepwise else None
    )
    sketches = sketch_steps(
        src, count=step_count, stepwise=stepwise, mode=shape.mode, attempts=attempts_range, coach_lines=coach_lines
    )
    history = build_learning_history(src, shape.created) if not (shape.legacy and src.key_flag(0.5)) else None
    history_count = int(history["count"]) if history else 0
    adaptive = adaptive_route(src, shape.mode, history_count, shape.legacy)
    probe = adaptive.probe
    coach = coach_lines is not None
    if events_target is not None and shape.status == "succeeded":
        # a pinned event count drops the optional probe and coach events first
        attempts_total = sum(s.attempts for s in sketches)
        if minimum_events(attempts=attempts_total, probe=probe, coach=coach) > events_target:
            probe = False
        if minimum_events(attempts=attempts_total, probe=probe, coach=coach) > events_target:
            coach = False
    return _Run(sketches, history, adaptive, probe, coach)


def _step_rows(src: Source, shape: _Shape, run: _Run) -> _Rows:
    """plans, step_results, step_attempts and guidance_notes rows, and the attempt spans of the events."""
    step_results: list[Doc] = []
    step_attempts: list[Doc] = []
    guidance_rows: list[Doc] = []
    spans: list[AttemptSpan] = []
    failure_steps: list[int] = []
    for sketch in run.sketches:
        output = step_output(src)
        metadata = None if sketch.runtime_error else build_step_metadata(src, output=output)
        evaluation: Doc = {}
        for attempt in range(1, sketch.attempts + 1):
            evaluation = evaluation_for(src, sketch, mode=shape.mode, attempt=attempt, output=output)
            step_attempts.append({"step_id": sketch.step_id, "attempt": attempt, "evaluation": evaluation})
            spans.append(
                AttemptSpan(
                    sketch.step_id,
                    attempt,
                    sketch.description,
                    sketch.guidance[: attempt - 1],
                    output,
                    "passed" if evaluation["validation"].get("valid") else "failed",
                    evaluation,
                    metadata,
                )
            )
        if sketch.attempts == 0:
            evaluation = evaluation_for(src, sketch, mode=shape.mode, attempt=0, output=output)
        if not evaluation.get("validation", {}).get("valid", True):
            failure_steps.append(sketch.step_id)
        guidance_rows.extend(
            {"step_id": sketch.step_id, "sequence": i, "note": note} for i, note in enumerate(sketch.guidance, start=1)
        )
        step_results.append(
            {
                "step_id": sketch.step_id,
                "trace": f"HUMAN: {sketch.description}\nAI: {output}",
                "output": output,
                "evaluation": evaluation,
                "attempts": sketch.attempts,
                "metadata": metadata,
            }
        )
    plan: Doc | None = None
    if shape.status == "succeeded":
        plan = build_plan(run.sketches, stepwise=shape.stepwise)
    else:  # the failure path writes no plan and no step rows; running sessions have none yet
        step_results, step_attempts, guidance_rows = [], [], []
        if shape.status == "running":
            spans = []
    return _Rows(plan, step_results, step_attempts, guidance_rows, spans, failure_steps)


def _facts(
    shape: _Shape,
    run: _Run,
    rows: _Rows,
    reward: RewardOutcome | None,
    drift: Doc | None,
    review: Review,
    *,
    caller: Doc,
    student: str | None,
    teacher: str | None,
) -> RunFacts:
    """What the metadata records of this run (the guidance Atlas keeps depends on the path taken)."""
    if shape.status == "succeeded":
        guidance = [row["note"] for row in rows.guidance_notes]
    elif shape.status == "failed":
        guidance = [note for sketch in run.sketches for note in sketch.guidance]
    else:
        guidance = []
    return RunFacts(
        status=shape.status,
        task=shape.task,
        key=shape.key,
        caller=caller,
        created=shape.created,
        mode=shape.mode,
        legacy=shape.legacy,
        adaptive=run.adaptive,
        history=run.history,
        reward=reward,
        drift=drift,
        review_meta_status=review.meta_status,
        review_notes=review.notes if review.meta_status else None,
        require_approval=review.require_approval,
        guidance=guidance,
        student_note=student,
        teacher_note=teacher,
        failure_steps=rows.failure_steps,
        step_count=shape.step_count,
    )


def _event_rows(
    src: Source, opts: GraphOptions, shape: _Shape, run: _Run, rows: _Rows, *, final_answer: str | None, metadata: Doc
) -> list[Doc]:
    """The trajectory_events rows, written after the run (none for running sessions)."""
    status = shape.status
    if status == "running" or not opts.with_events:
        return []
    spans, events_target = rows.spans, shape.events_target
    created = shape.created
    end = shape.completed or created
    coach_plan = build_plan(run.sketches, stepwise=False) if run.coach else None
    structural = minimum_events(attempts=len(spans), probe=run.probe, coach=run.coach) - (
        2 if status == "failed" else 0
    )
    if status == "failed":
        structural += 1  # a failed session ends with TASK_END {error} but no WORKFLOW_END
    extra_total = 0
    if events_target is not None:
        extra_total = max(events_target - structural, 0)
    elif spans:
        extra_total = src.key_integer(0, 12)
    per_attempt = _split(src, extra_total, len(spans))
    event_plan = EventPlan(
        task=shape.task,
        mode=shape.mode,
        probe=run.probe,
        coach_plan=coach_plan,
        attempts=spans,
        final_answer=final_answer,
        failed=status == "failed",
        start=created,
        end=end,
        triage_summary=str(metadata.get("triage_dossier", {}).get("summary") or shape.task),
        probe_mode=run.adaptive.probe_mode,
        probe_confidence=run.adaptive.probe_confidence,
        route_reason=run.adaptive.route_reason,
        extra_per_attempt=per_attempt,
    )
    raw_events = build_events(src, event_plan, limit=events_target)
    if events_target is not None and len(raw_events) < events_target:
        raw_events = _pad_events(src, raw_events, events_target, created, end)
    written = end + timedelta(milliseconds=5)
    return [
        {"event": event, "created_at": written + timedelta(microseconds=173 * index)}
        for index, event in enumerate(raw_events)
    ]


def _split(src: Source, total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` non-negative counts (all of it in the last part when shrunk)."""
    if parts <= 0:
        return []
    sizes: list[int] = []
    remaining = total
    for _ in range(parts - 1):
        size = src.key_integer(0, remaining)
        sizes.append(size)
        remaining -= size
    sizes.append(remaining)
    return sizes


def _pad_events(src: Source, events: list[Doc], target: int, start: datetime, end: datetime) -> list[Doc]:
    """Orphan callback LLM_START events (never closed, like the real ones) up to ``target``, inside the
    workflow: before its WORKFLOW_END when the session has one (a succeeded session always ends with
    it, also when its steps had no attempt span to hold the extra events)."""
    closing = events[-1:] if events and events[-1]["payload"]["event_type"] == "WORKFLOW_END" else []
    padded = events[: len(events) - len(closing)]
    last = padded[-1]["payload"]["event_timestamp"] if padded else epoch_seconds(start)
    ceiling = closing[0]["payload"]["event_timestamp"] if closing else max(epoch_seconds(end), last)
    while len(padded) + len(closing) < target:
        last = last + (ceiling - last) / 4
        padded.append(
            envelope(
                parent_id="root",
                event_type="LLM_START",
                moment=last,
                name="chat_model",
                uuid=uuid4(src),
                metadata={"actor": src.pick(("student", "teacher", "reward"))},
                data={"input": {"messages": []}, "output": None, "chunk": None},
            )
        )
    return padded + closing
