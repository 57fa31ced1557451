"""Whole sessions: the ``sessions`` row, its metadata, and every row that hangs off it, consistent.

The builder follows Atlas's own order of events: the session is created
with the caller's metadata and its learning key; the run produces a plan, step attempts with
guidance between them, an evaluation (reward, reward_stats, reward_audit), a drift assessment and
a review decision; the metadata is then replaced by caller keys merged with the run's insights; the
events are written last. Failed sessions take the failure path (no plan, no steps, no reward, no
WORKFLOW_END); running sessions have only their creation-time metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pytest_atlas._vocabulary import EXECUTION_MODES as _CURRENT_MODES
from pytest_atlas._vocabulary import LEGACY_EXECUTION_MODES, REVIEW_STATUSES, SESSION_STATUSES
from pytest_atlas.strategies import _drift
from pytest_atlas.strategies._common import (
    EPOCH,
    Doc,
    epoch_seconds,
    learning_key,
    moment_after,
    spaced,
    timestamp_text,
    uuid4,
)
from pytest_atlas.strategies._events import AttemptSpan, EventPlan, build_events, envelope, minimum_events
from pytest_atlas.strategies._learning import (
    build_learning_history,
    build_learning_state,
    build_learning_usage,
)
from pytest_atlas.strategies._model import SessionGraph
from pytest_atlas.strategies._rewards import RewardOutcome, build_reward
from pytest_atlas.strategies._source import Source
from pytest_atlas.strategies._steps import (
    build_plan,
    build_step_metadata,
    evaluation_for,
    sketch_steps,
    step_output,
)

__all__ = [
    "EXECUTION_MODES",
    "REVIEW_STATUSES",
    "STATUSES",
    "GraphOptions",
    "build_drift",
    "build_graph",
    "build_session_metadata",
]

#: the choices the strategies accept (Atlas's vocabulary, legacy modes included)
STATUSES = SESSION_STATUSES
EXECUTION_MODES = _CURRENT_MODES + LEGACY_EXECUTION_MODES
_SEVERITIES = ("low", "moderate", "high", "critical")


@dataclass(frozen=True)
class GraphOptions:
    """What a caller pinned; ``None`` everywhere means "let the builder choose"."""

    learning_key: str | None = None
    task: str | None = None
    status: str | None = None
    review_status: str | None = None
    execution_mode: str | None = None
    score: tuple[float, float] | None = None
    steps: tuple[int, int] | None = None
    events: tuple[int, int] | None = None
    attempts: tuple[int, int] | None = None
    drift_alert: bool | None = None
    legacy: bool | None = None
    created_at: datetime | None = None
    caller_metadata: Doc | None = None
    #: for the reward scenarios: the exact (score, uncertainty) of the single reward sample
    exact_reward: tuple[float, float] | None = None
    #: for the reward scenarios: the drift document to store (computed against real history)
    drift: Doc | None = None
    #: False skips the trajectory events (for strategies that only return the metadata)
    with_events: bool = True


# --------------------------------------------------------------------------------------------------
# caller metadata (keys Atlas only reads)
# --------------------------------------------------------------------------------------------------


def _caller_metadata(src: Source, moment: datetime, task: str) -> Doc:
    meta: Doc = {}
    if src.flag(0.6):
        meta["source"] = src.pick(("atlas run", "atlas quickstart", "ci", "notebook"))
    if src.flag(0.3):
        meta["task_num"] = src.integer(1, 500)
        meta["incident_id"] = f"INC-{src.integer(1000, 9999)}"
    if src.flag(0.2):
        kinds = ("latency", "billing", "outage", "security")
        meta["incident_tags"] = [src.pick(kinds) for _ in range(src.integer(1, 3))]
    if src.flag(0.2):
        meta[src.pick(("tenant_id", "tenant"))] = src.pick(("acme", 42, "tenant-7"))
    if src.flag(0.35):
        tags = [src.pick(("prod", "eval", "nightly", "smoke")) for _ in range(src.integer(0, 3))]
        # the learning-key builder tolerates a bare string here, the DB filters do not
        meta["tags"] = ",".join(tags) if src.flag(0.2) else tags
    if src.flag(0.2):
        meta["project_root"] = src.pick(("/srv/app", "/home/dev/harness", "."))
    if src.flag(0.2):
        meta[src.pick(("summary", "description"))] = src.sentence(3, 10)
    if src.flag(0.1):
        meta["fingerprint_hint"] = src.pick(("code::repo", "sre::checkout", "support::billing"))
    if src.flag(0.1):
        # a caller's datetime is stored as str(datetime)
        meta["requested_at"] = spaced(moment)
    if src.flag(0.05):
        meta["enrichers"] = ["<function enrich_with_owner at 0x7f3a2c1b9d30>"]
    if src.flag(0.1):
        meta[f"custom_{src.words(1, 1).replace(' ', '_')}"] = src.pick((1, "x", [1, 2], {"nested": True}, None))
    return meta


def _triage_dossier(src: Source, task: str, caller: Doc, key: str) -> Doc:
    summary = caller.get("summary") or caller.get("description") or task
    recognised = {
        "summary",
        "description",
        "fingerprint_hint",
        "risks",
        "signals",
        "persona_references",
        "embeddings",
        "metadata",
        "enrichers",
        "tags",
    }
    copied = {k: v for k, v in caller.items() if k not in recognised}
    copied["learning_key"] = key  # the default adapter copies every unrecognised key
    tags_value = caller.get("tags")
    tags = [tags_value] if isinstance(tags_value, str) else list(dict.fromkeys(tags_value or []))
    return {
        "task": task,
        "summary": summary if isinstance(summary, str) else task,
        "risks": [
            {
                "category": src.pick(("general", "data_loss", "availability")),
                "description": src.sentence(2, 8),
                "severity": src.pick(_SEVERITIES),
            }
            for _ in range(src.integer(0, 2))
        ],
        "signals": [
            {
                "name": src.pick(("error_rate", "p99_ms", "queue_depth")),
                "value": src.pick((0.02, 1200, "high", None)),
                "confidence": src.maybe(0.7, lambda: round(src.real(0.0, 1.0), 3)),
                "annotation": src.maybe(0.3, lambda: src.sentence(2, 6)),
            }
            for _ in range(src.integer(0, 2))
        ],
        "persona_references": [
            {
                "persona_id": f"persona-{src.integer(1, 9)}",
                "rationale": src.maybe(0.5, lambda: src.sentence(2, 6)),
                "weight": round(src.real(0.0, 5.0), 3),
                "tags": [] if src.flag(0.6) else [src.pick(("oncall", "owner", "reviewer"))],
            }
            for _ in range(src.integer(0, 1))
        ],
        "embeddings": {}
        if src.flag(0.9)
        else {
            "task": {
                "vector": [round(src.real(-1.0, 1.0), 4) for _ in range(4)],
                "model": src.pick(("text-embedding-3-small", None)),
                "note": src.maybe(0.5, lambda: src.sentence(2, 6)),
            }
        },
        "tags": tags,
        "metadata": copied,
        "fingerprint_hint": caller.get("fingerprint_hint") if isinstance(caller.get("fingerprint_hint"), str) else None,
    }


# --------------------------------------------------------------------------------------------------
# adaptive mode, drift, review
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Adaptive:
    mode: str
    summary: Doc
    probe: bool
    probe_mode: str | None
    probe_confidence: float | None
    route_reason: str


def _adaptive(src: Source, mode: str, history_count: int, legacy: bool) -> _Adaptive:
    probe = history_count > 0 and mode != "escalate"
    probe_mode: str | None = None
    confidence: float | None = None
    if not probe:
        reason = "no_learning_history" if mode != "escalate" else "capability_probe"
    else:
        reason = src.pick(("capability_probe", "probe_fallback", "mode_override", "forced"))
        if src.flag(0.85):
            confidence = round(src.real(0.0, 1.0), 3)
            probe_mode = mode if src.flag(0.8) else src.pick(("paired", "auto", "coach", "unsure"))
        # else: {mode: null, confidence: null} (missing API credentials)
    entry: Doc = {"mode": mode}
    if confidence is not None:
        entry["confidence"] = confidence
    summary: Doc = {"adaptive_mode": mode, "mode_history": [entry]}
    if confidence is not None:
        summary["confidence"] = confidence
    if probe:
        summary["probe"] = {"mode": probe_mode, "confidence": confidence}
    return _Adaptive(mode, summary, probe, probe_mode, confidence, reason)


def build_drift(
    src: Source,
    stats: Doc,
    *,
    key: str | None,
    alert: bool | None,
    window: int = 50,
    threshold: float = 3.0,
    min_baseline: int = 5,
) -> Doc:
    """A drift document for ``stats`` against a plausible history of earlier scores for the same key.

    The history is drawn, then the current stats join it (Atlas's baseline includes the current
    session), and the assessment is computed exactly as Atlas does. ``alert`` forces the outcome:
    ``True`` places the current score well away from a tight history, ``False`` inside it.
    """
    score = float(stats["score"])
    uncertainty = float(stats["uncertainty_mean"])
    best = float(stats["best_uncertainty"])
    # a dozen earlier sessions show every outcome (a full window of 50 only costs time)
    longest = min(window - 1, max(min_baseline, 1) + 10)
    size = src.integer(0, longest) if alert is None else src.integer(max(min_baseline, 1), longest)
    centre = min(1.0, max(0.0, score + src.real(-0.1, 0.1)))
    spread = src.real(0.01, 0.1)
    if alert:  # a tight history far from the current score
        centre = 0.2 if score >= 0.6 else 0.9
        spread = src.real(0.005, 0.02)
    elif alert is False:  # the current score sits at the centre of a history that includes it
        centre = score
    history: list[Doc] = []
    for index in range(size):
        offset = spread * (((index * 7919) % 13) / 6.0 - 1.0) if alert is not None else src.real(-spread, spread)
        past = min(1.0, max(0.0, centre + offset))
        u = min(
            1.0,
            max(
                0.0,
                uncertainty
                + (spread * (((index * 104729) % 11) / 5.0 - 1.0) if alert is False else 0.0)
                + (src.real(-0.05, 0.05) if alert is None else 0.0),
            ),
        )
        history.append({"score": past, "score_mean": past, "uncertainty_mean": u, "best_uncertainty": min(u, best)})
    if alert is False and history:
        # mirror the history around the current values so neither z-score can be large
        mirrored = [
            dict(
                h,
                score=2 * score - h["score"],
                score_mean=2 * score - h["score_mean"],
                uncertainty_mean=2 * uncertainty - h["uncertainty_mean"],
            )
            for h in history
        ]
        history = (history + mirrored)[: window - 1]
    rows = [dict(stats), *history][:window]

    def assess(baseline: Doc) -> Doc:
        return _drift.drift_document(
            stats, baseline, threshold=threshold, window=window, min_baseline=min_baseline, learning_key=key
        )

    document = assess(_drift.reward_baseline(rows, window))
    if alert is not None and document["alert"] != alert:
        # the construction above decides nearly always; this is the fallback that always decides
        document = assess(_forced_baseline(stats, alert=alert, window=window, min_baseline=min_baseline))
    return document


def _forced_baseline(stats: Doc, *, alert: bool, window: int, min_baseline: int) -> Doc:
    score = float(stats["score"])
    uncertainty = float(stats["uncertainty_mean"])
    if not alert:
        count = max(min_baseline - 1, 0)  # too few rows: "insufficient_baseline", never an alert
        return _drift.reward_baseline([dict(stats)] * count, window)
    far = 0.0 if score > 0.5 else 1.0
    others = [
        {"score": far + 0.001 * (i % 3), "uncertainty_mean": uncertainty, "best_uncertainty": uncertainty}
        for i in range(max(min_baseline, 12) - 1)
    ]
    return _drift.reward_baseline([dict(stats), *others], window)


# --------------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------------


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


def build_graph(src: Source, opts: GraphOptions) -> SessionGraph:
    """Draw one consistent session graph."""
    status = _choose_status(src, opts)
    legacy = opts.legacy if opts.legacy is not None else src.key_flag(0.15)
    key = opts.learning_key or learning_key(src)
    task = opts.task or src.sentence(3, 14)
    created = opts.created_at or moment_after(src, EPOCH, 0, 300 * 86400)
    duration = src.real(1.0, 900.0)
    completed = None if status == "running" else created + timedelta(seconds=duration)

    # -- shape of the run -------------------------------------------------------------------------
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
    # the evaluation is drawn early (it does not depend on the steps) so that its key choices, the
    # scores, keep their place in Hypothesis's choice sequence when the steps shrink
    reward: RewardOutcome | None = None
    evaluation_ran = status == "succeeded" and (
        opts.score is not None or opts.drift_alert is not None or opts.exact_reward is not None or src.key_flag(0.9)
    )
    if evaluation_ran:
        reward_moment = (completed or created) - timedelta(seconds=min(duration / 2, 1.0))
        reward = build_reward(
            src,
            task=task,
            moment=reward_moment,
            score_range=opts.score or (0.0, 1.0),
            execution_mode=mode,
            exact=opts.exact_reward,
        )
    attempts_range = opts.attempts if opts.attempts is not None else ((0, 3) if stepwise else (1, 3))
    if events_target is not None and status == "succeeded":
        spare = (events_target - 6) // 2 - step_count
        attempts_range = (attempts_range[0], max(min(attempts_range[1], 1 + spare // max(step_count, 1)), 1))
    coach_lines = [src.sentence(2, 6) for _ in range(src.integer(1, 3))] if mode == "coach" and not stepwise else None
    sketches = sketch_steps(
        src, count=step_count, stepwise=stepwise, mode=mode, attempts=attempts_range, coach_lines=coach_lines
    )
    history = build_learning_history(src, created) if not (legacy and src.key_flag(0.5)) else None
    history_count = int(history["count"]) if history else 0
    adaptive = _adaptive(src, mode, history_count, legacy)
    probe = adaptive.probe
    coach = coach_lines is not None
    if events_target is not None and status == "succeeded":
        attempts_total = sum(s.attempts for s in sketches)
        if minimum_events(attempts=attempts_total, probe=probe, coach=coach) > events_target:
            probe = False
        if minimum_events(attempts=attempts_total, probe=probe, coach=coach) > events_target:
            coach = False

    # -- step rows --------------------------------------------------------------------------------
    plan: Doc | None = None
    step_results: list[Doc] = []
    step_attempts: list[Doc] = []
    guidance_rows: list[Doc] = []
    spans: list[AttemptSpan] = []
    failure_steps: list[int] = []
    for sketch in sketches:
        output = step_output(src)
        metadata = None if sketch.runtime_error else build_step_metadata(src, output=output)
        evaluation: Doc = {}
        for attempt in range(1, sketch.attempts + 1):
            evaluation = evaluation_for(src, sketch, mode=mode, attempt=attempt, output=output)
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
            evaluation = evaluation_for(src, sketch, mode=mode, attempt=0, output=output)
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
    if status == "succeeded":
        plan = build_plan(sketches, stepwise=stepwise)
    else:  # the failure path writes no plan and no step rows; running sessions have none yet
        step_results, step_attempts, guidance_rows = [], [], []
        if status == "running":
            spans = []

    # -- reward, drift, review ----------------------------------------------------------------------
    if reward is not None:
        reward.reward["raw"]["teacher_intervened"] = bool(guidance_rows)
    final_answer: str | None = None
    if status == "succeeded":
        final_answer = src.sentence(2, 20) if src.flag(0.95) else ""
    elif status == "failed":
        final_answer = ""
    drift: Doc | None = None
    if reward is not None:
        if opts.drift is not None:
            drift = opts.drift
        elif opts.drift_alert is not None or src.key_flag(0.85):
            drift = build_drift(src, reward.stats, key=key, alert=opts.drift_alert)
    alert = bool(drift and drift.get("alert"))
    require_approval = src.key_flag(0.8) if not alert else src.key_flag(0.9)
    review_meta_status: str | None = None
    review_notes: str | None = None
    if status == "succeeded":
        if alert:
            review_meta_status, review_notes = "pending", str(drift["message"]) if drift else None
        elif not require_approval:
            review_meta_status, review_notes = "approved", "Auto-approved (review gating disabled)."
    column_status = review_meta_status or "pending"
    if opts.review_status is not None:
        column_status = opts.review_status
    elif status == "succeeded" and src.key_flag(0.3):
        column_status = src.key_pick(("approved", "quarantined"))  # a reviewer acted later
    if column_status == "quarantined" and review_notes is None and src.flag(0.6):
        review_notes = src.pick(("Quarantined: hallucinated tool output", "Needs a second look"))

    # -- metadata ---------------------------------------------------------------------------------
    caller = dict(opts.caller_metadata) if opts.caller_metadata is not None else _caller_metadata(src, created, task)
    student_note = src.maybe(0.5, lambda: src.sentence(4, 16)) if status != "running" else None
    teacher_note = src.maybe(0.4, lambda: src.sentence(4, 16)) if status != "running" else None
    metadata = build_session_metadata(
        src,
        status=status,
        task=task,
        key=key,
        caller=caller,
        created=created,
        mode=mode,
        legacy=legacy,
        adaptive=adaptive,
        history=history,
        reward=reward,
        drift=drift,
        review_meta_status=review_meta_status,
        review_notes=review_notes if review_meta_status else None,
        require_approval=require_approval,
        guidance=[row["note"] for row in guidance_rows]
        if status == "succeeded"
        else [note for s in sketches for note in s.guidance]
        if status == "failed"
        else [],
        student_note=student_note,
        teacher_note=teacher_note,
        failure_steps=failure_steps,
        step_count=step_count,
    )

    # -- events -----------------------------------------------------------------------------------
    events: list[Doc] = []
    if status != "running" and opts.with_events:
        end = completed or created
        coach_plan = build_plan(sketches, stepwise=False) if coach else None
        structural = minimum_events(attempts=len(spans), probe=probe, coach=coach) - (2 if status == "failed" else 0)
        if status == "failed":
            structural += 1  # a failed session ends with TASK_END {error} but no WORKFLOW_END
        extra_total = 0
        if events_target is not None:
            extra_total = max(events_target - structural, 0)
        elif spans:
            extra_total = src.key_integer(0, 12)
        per_attempt = _split(src, extra_total, len(spans))
        event_plan = EventPlan(
            task=task,
            mode=mode,
            probe=probe,
            coach_plan=coach_plan,
            attempts=spans,
            final_answer=final_answer,
            failed=status == "failed",
            start=created,
            end=end,
            triage_summary=str(metadata.get("triage_dossier", {}).get("summary") or task),
            probe_mode=adaptive.probe_mode,
            probe_confidence=adaptive.probe_confidence,
            route_reason=adaptive.route_reason,
            extra_per_attempt=per_attempt,
        )
        raw_events = build_events(src, event_plan, limit=events_target)
        if events_target is not None and len(raw_events) < events_target:
            raw_events = _pad_events(src, raw_events, events_target, created, end)
        written = end + timedelta(milliseconds=5)
        for index, envelope in enumerate(raw_events):
            events.append({"event": envelope, "created_at": written + timedelta(microseconds=173 * index)})

    session: Doc = {
        "task": task,
        "status": status,
        "metadata": metadata or None,
        "final_answer": final_answer,
        "reward": reward.reward if reward else None,
        "reward_stats": reward.stats if reward else None,
        "reward_audit": (reward.audit or None) if reward else None,
        "student_learning": student_note,
        "teacher_learning": teacher_note,
        "review_status": column_status,
        "review_notes": review_notes,
        "created_at": created,
        "completed_at": completed,
    }
    return SessionGraph(
        session=session,
        plan=plan,
        step_results=step_results,
        step_attempts=step_attempts,
        guidance_notes=guidance_rows,
        trajectory_events=events,
    )


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


def build_session_metadata(
    src: Source,
    *,
    status: str,
    task: str,
    key: str,
    caller: Doc,
    created: datetime,
    mode: str,
    legacy: bool,
    adaptive: _Adaptive,
    history: Doc | None,
    reward: RewardOutcome | None,
    drift: Doc | None,
    review_meta_status: str | None,
    review_notes: str | None,
    require_approval: bool,
    guidance: list[str],
    student_note: str | None,
    teacher_note: str | None,
    failure_steps: list[int],
    step_count: int,
) -> Doc:
    """``sessions.metadata`` for the given run, following the success, failure or running path."""
    metadata: Doc = dict(caller)
    if src.flag(0.05):
        metadata["learning_key_override"] = key
    metadata["learning_key"] = key
    if status == "running":
        return metadata
    learning_state = build_learning_state(src, created) if src.flag(0.5) else None
    entries = list((learning_state or {}).get("metadata", {}).get("playbook_entries") or [])
    if entries and src.flag(0.5):
        for audience in ("student", "teacher"):
            if src.flag(0.6):
                metadata[f"applied_{audience}_learning"] = {
                    "digest": src.hexdigits(64),
                    "char_count": src.integer(1, 1000),
                    "entry_count": len(entries),
                }
    if status == "succeeded":
        metadata["review"] = {
            "require_approval": require_approval,
            "default_export_statuses": ["approved"] if src.flag(0.8) else ["approved", "pending"],
            "include_all_statuses": False,
        }
        if src.flag(0.05):
            metadata["review"] = {
                "require_approval": require_approval,
                "default_export_statuses": [],
                "include_all_statuses": True,
            }
        if drift is not None:
            metadata["drift"] = drift
            metadata["drift_alert"] = bool(drift.get("drift_alert"))
        if review_meta_status is not None:
            metadata["review_status"] = review_meta_status
            if review_notes:
                metadata["review_notes"] = review_notes
        if reward is not None and reward.audit:
            metadata["reward_audit"] = reward.audit
    # -- insights (override caller keys on a clash) -----------------------------------------------
    metadata["triage_dossier"] = _triage_dossier(src, task, caller, key)
    metadata["adaptive_summary"] = adaptive.summary
    metadata["execution_mode"] = mode
    if reward is not None:
        metadata["session_reward"] = reward.reward
        metadata["reward_stats"] = reward.stats
        if reward.audit:
            metadata["reward_audit"] = reward.audit
    if src.flag(0.6):
        prompt, completion = src.integer(10, 20000), src.integer(1, 5000)
        metadata["token_usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "calls": src.integer(1, 8),
        }
    if not legacy or src.flag(0.5):
        incident = caller.get("incident_id") if isinstance(caller.get("incident_id"), str) else None
        incident_tags = [t for t in caller.get("incident_tags") or [] if isinstance(t, str)]
        metadata["learning_usage"] = build_learning_usage(
            src,
            entries=entries,
            reward_score=reward.stats["score"] if reward else None,
            incident_id=incident,
            task_identifier=task,
            incident_tags=incident_tags,
            failure_steps=failure_steps,
            retry_count=len(guidance),
        )
    if student_note:
        metadata["student_learning"] = student_note
    if teacher_note:
        metadata["teacher_learning"] = teacher_note
    if student_note or teacher_note:
        metadata["session_learning_note"] = f"Student: {student_note or ''} Teacher: {teacher_note or ''}".strip()
    if learning_state is not None:
        metadata["learning_state"] = learning_state
    if status == "succeeded":
        if reward is not None:
            summary: Doc = {"score": reward.stats["score"]}
            for name in ("score_stddev", "uncertainty_mean", "uncertainty_stddev"):
                if reward.stats.get(name) is not None:
                    summary[name] = reward.stats[name]
        else:  # the evaluation raised: the mean of the placeholder step rewards
            summary = {"average": 0.0 if step_count else None, "count": step_count}
        metadata["reward_summary"] = summary
    if history is not None:
        metadata["learning_history"] = history
    if guidance:
        metadata["teacher_notes"] = [note.strip() for note in guidance if note.strip()]
        if not metadata["teacher_notes"]:
            del metadata["teacher_notes"]
    if src.flag(0.1):
        metadata["adapter_session"] = {
            "student_model": src.pick(("gpt-4.1-mini", "claude-sonnet-4-5")),
            "teacher_model_id": f"model-{src.integer(1, 9)}",
        }
    if src.flag(0.05):
        metadata["started_at"] = timestamp_text(src, created)
    return metadata
