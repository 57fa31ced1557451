"""``sessions.metadata``: the caller's keys, then the run's insights merged over them.

Atlas creates the session with the caller's metadata and its learning key; when the run ends it
replaces the metadata by the caller keys merged with the run's insights (triage dossier, adaptive
summary, reward, drift, review, learning usage). Running sessions keep only their creation-time keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pytest_atlas.domain._common import Doc, spaced, timestamp_text
from pytest_atlas.domain._learning import build_learning_state, build_learning_usage
from pytest_atlas.domain._review import Adaptive
from pytest_atlas.domain._rewards import RewardOutcome
from pytest_atlas.domain._source import Source

__all__ = ["RunFacts", "build_session_metadata", "caller_metadata"]

_SEVERITIES = ("low", "moderate", "high", "critical")


def caller_metadata(src: Source, moment: datetime, task: str) -> Doc:
    """The keys a caller passes as session_metadata (Atlas only reads them)."""
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


@dataclass(frozen=True)
class RunFacts:
    """What the run decided, in the order Atlas decides it: the inputs of :func:`build_session_metadata`."""

    status: str
    task: str
    key: str
    caller: Doc
    created: datetime
    mode: str
    legacy: bool
    adaptive: Adaptive
    history: Doc | None
    reward: RewardOutcome | None
    drift: Doc | None
    review_meta_status: str | None
    review_notes: str | None
    require_approval: bool
    guidance: list[str]
    student_note: str | None
    teacher_note: str | None
    failure_steps: list[int]
    step_count: int


def build_session_metadata(src: Source, run: RunFacts) -> Doc:
    """``sessions.metadata`` for the given run, following the success, failure or running path."""
    metadata: Doc = dict(run.caller)
    if src.flag(0.05):
        metadata["learning_key_override"] = run.key
    metadata["learning_key"] = run.key
    if run.status == "running":
        return metadata
    learning_state, entries = _applied_learning(src, run, metadata)
    if run.status == "succeeded":
        _review_keys(src, run, metadata)
    _insights(src, run, metadata, learning_state, entries)
    return metadata


def _applied_learning(src: Source, run: RunFacts, metadata: Doc) -> tuple[Doc | None, list[Doc]]:
    """The learning state the run loaded (returned with its playbook entries, which the learning usage
    refers to) and the digests of the learning it applied."""
    learning_state = build_learning_state(src, run.created) if src.flag(0.5) else None
    entries = list((learning_state or {}).get("metadata", {}).get("playbook_entries") or [])
    if entries and src.flag(0.5):
        for audience in ("student", "teacher"):
            if src.flag(0.6):
                metadata[f"applied_{audience}_learning"] = {
                    "digest": src.hexdigits(64),
                    "char_count": src.integer(1, 1000),
                    "entry_count": len(entries),
                }
    return learning_state, entries


def _review_keys(src: Source, run: RunFacts, metadata: Doc) -> None:
    """What a succeeded run records of its review gate, drift assessment and reward audit."""
    metadata["review"] = {
        "require_approval": run.require_approval,
        "default_export_statuses": ["approved"] if src.flag(0.8) else ["approved", "pending"],
        "include_all_statuses": False,
    }
    if src.flag(0.05):
        metadata["review"] = {
            "require_approval": run.require_approval,
            "default_export_statuses": [],
            "include_all_statuses": True,
        }
    if run.drift is not None:
        metadata["drift"] = run.drift
        metadata["drift_alert"] = bool(run.drift.get("drift_alert"))
    if run.review_meta_status is not None:
        metadata["review_status"] = run.review_meta_status
        if run.review_notes:
            metadata["review_notes"] = run.review_notes
    if run.reward is not None and run.reward.audit:
        metadata["reward_audit"] = run.reward.audit


def _insights(src: Source, run: RunFacts, metadata: Doc, learning_state: Doc | None, entries: list[Doc]) -> None:
    """The run's insights, merged over the caller keys (they win on a clash)."""
    metadata["triage_dossier"] = _triage_dossier(src, run.task, run.caller, run.key)
    metadata["adaptive_summary"] = run.adaptive.summary
    metadata["execution_mode"] = run.mode
    if run.reward is not None:
        metadata["session_reward"] = run.reward.reward
        metadata["reward_stats"] = run.reward.stats
        if run.reward.audit:
            metadata["reward_audit"] = run.reward.audit
    if src.flag(0.6):
        prompt, completion = src.integer(10, 20000), src.integer(1, 5000)
        metadata["token_usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "calls": src.integer(1, 8),
        }
    if not run.legacy or src.flag(0.5):
        incident = run.caller.get("incident_id") if isinstance(run.caller.get("incident_id"), str) else None
        incident_tags = [t for t in run.caller.get("incident_tags") or [] if isinstance(t, str)]
        metadata["learning_usage"] = build_learning_usage(
            src,
            entries=entries,
            reward_score=run.reward.stats["score"] if run.reward else None,
            incident_id=incident,
            task_identifier=run.task,
            incident_tags=incident_tags,
            failure_steps=run.failure_steps,
            retry_count=len(run.guidance),
        )
    if run.student_note:
        metadata["student_learning"] = run.student_note
    if run.teacher_note:
        metadata["teacher_learning"] = run.teacher_note
    if run.student_note or run.teacher_note:
        metadata["session_learning_note"] = (
            f"Student: {run.student_note or ''} Teacher: {run.teacher_note or ''}".strip()
        )
    if learning_state is not None:
        metadata["learning_state"] = learning_state
    if run.status == "succeeded":
        if run.reward is not None:
            summary: Doc = {"score": run.reward.stats["score"]}
            for name in ("score_stddev", "uncertainty_mean", "uncertainty_stddev"):
                if run.reward.stats.get(name) is not None:
                    summary[name] = run.reward.stats[name]
        else:  # the evaluation raised: the mean of the placeholder step rewards
            summary = {"average": 0.0 if run.step_count else None, "count": run.step_count}
        metadata["reward_summary"] = summary
    if run.history is not None:
        metadata["learning_history"] = run.history
    if run.guidance:
        metadata["teacher_notes"] = [note.strip() for note in run.guidance if note.strip()]
        if not metadata["teacher_notes"]:
            del metadata["teacher_notes"]
    if src.flag(0.1):
        metadata["adapter_session"] = {
            "student_model": src.pick(("gpt-4.1-mini", "claude-sonnet-4-5")),
            "teacher_model_id": f"model-{src.integer(1, 9)}",
        }
    if src.flag(0.05):
        metadata["started_at"] = timestamp_text(src, run.created)
