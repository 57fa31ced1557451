"""A session graph as one line of ``arc-atlas export``.

This reproduces the shape the CLI exporter writes for the same rows: ``session_metadata`` enriched
with ``session_id``/``status``/``created_at``/``completed_at``/``trajectory_events`` and setdefault
copies of ``review_status``/``reward_stats``/``reward_audit``; steps with the plan's description,
tool and ``tool_params`` (``{}`` for null), the reward normalised with the stored dict nested as
``raw``, the step metadata flattened to the top level and extended with ``attempt_history``,
``attempt_details``, ``raw_evaluation`` and ``depends_on``; events in chronological order.
The test suite compares it with Atlas's own exporter run on the same database rows.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from pytest_atlas.domain._common import Doc
from pytest_atlas.domain._graph import SessionGraph

__all__ = ["EXPORT_METADATA_KEYS", "STEP_EXPORT_KEYS", "to_export"]

#: keys the exporter adds to ``session_metadata`` (taken back out by the loader)
EXPORT_METADATA_KEYS = ("session_id", "status", "created_at", "completed_at", "trajectory_events")
#: keys the exporter adds to each step's ``metadata``
STEP_EXPORT_KEYS = ("attempt_history", "attempt_details", "raw_evaluation", "depends_on")


def _float(value: Any, default: float | None) -> float | None:
    if value is None or isinstance(value, (dict, list)):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _reward(entry: Any) -> Doc:
    stored = entry if isinstance(entry, dict) else {}
    judges: list[Doc] = []
    for judge in stored.get("judges") or []:
        judge = judge if isinstance(judge, dict) else {}
        samples = [
            {
                "score": _float(sample.get("score"), 0.0),
                "rationale": sample.get("rationale") or "",
                "principles": sample.get("principles") or [],
                "uncertainty": _float(sample.get("uncertainty"), None),
                "temperature": _float(sample.get("temperature"), None),
            }
            for sample in (judge.get("samples") or [])
            if isinstance(sample, dict)
        ]
        judges.append(
            {
                "identifier": judge.get("identifier") or "",
                "score": _float(judge.get("score"), 0.0),
                "rationale": judge.get("rationale") or "",
                "principles": judge.get("principles") or [],
                "samples": samples,
                "escalated": bool(judge.get("escalated", False)),
                "escalation_reason": judge.get("escalation_reason"),
            }
        )
    return {
        "score": _float(stored.get("score", 0.0), 0.0),
        "judges": judges,
        "rationale": stored.get("rationale"),
        "raw": stored,
    }


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("output_text", value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _steps(graph: SessionGraph) -> list[Doc]:
    plan_steps: dict[int, Doc] = {}
    if isinstance(graph.plan, dict):
        for planned in graph.plan.get("steps") or []:
            if isinstance(planned, dict) and isinstance(planned.get("id"), int):
                plan_steps[planned["id"]] = planned
    attempts_by_step: dict[int, list[Doc]] = {}
    for row in sorted(graph.step_attempts, key=lambda r: (r["step_id"], r["attempt"])):
        attempts_by_step.setdefault(row["step_id"], []).append(
            {"attempt": row["attempt"], "evaluation": copy.deepcopy(row["evaluation"])}
        )
    guidance_by_step: dict[int, list[str]] = {}
    for row in sorted(graph.guidance_notes, key=lambda r: (r["step_id"], r["sequence"])):
        guidance_by_step.setdefault(row["step_id"], []).append(row["note"])

    exported: list[Doc] = []
    earlier: dict[int, Doc] = {}
    for row in sorted(graph.step_results, key=lambda r: r["step_id"]):
        step_id = row["step_id"]
        plan_step = plan_steps.get(step_id, {})
        evaluation = copy.deepcopy(row.get("evaluation"))
        details = attempts_by_step.get(step_id, [])
        guidance = guidance_by_step.get(step_id, [])
        stored_meta = row.get("metadata")
        metadata: Doc = (
            copy.deepcopy(stored_meta)
            if isinstance(stored_meta, dict)
            else ({} if stored_meta is None else {"raw": copy.deepcopy(stored_meta)})
        )
        if details:
            metadata.setdefault("attempt_history", details)
            metadata.setdefault("attempt_details", details)
        metadata.setdefault("raw_evaluation", evaluation if evaluation else {"raw": evaluation})
        if "depends_on" in plan_step and "depends_on" not in metadata:
            metadata["depends_on"] = list(plan_step["depends_on"] or [])
        evaluation_doc = evaluation if isinstance(evaluation, dict) else {}
        validation = evaluation_doc.get("validation") or {}
        attempts = row.get("attempts")
        if not isinstance(attempts, int):
            attempts = len(details) or len(guidance) or 0
        tool_params = plan_step.get("tool_params")
        step: Doc = {
            "step_id": step_id,
            "description": plan_step.get("description") or "",
            "trace": row.get("trace") or "",
            "output": row.get("output") or "",
            "reward": _reward(evaluation_doc.get("reward") or {}),
            "tool": plan_step.get("tool"),
            "tool_params": dict(tool_params) if isinstance(tool_params, dict) else {},
            "context": {
                "prior_results": {str(k): v for k, v in earlier.items()},
                "prior_results_text": {str(k): _text_of(v) for k, v in earlier.items()},
            },
            "validation": dict(validation) if isinstance(validation, dict) else {},
            "attempts": attempts,
            "guidance": [str(note) for note in guidance],
        }
        if metadata.get("artifacts") is not None:
            step["artifacts"] = metadata["artifacts"]
        if metadata.get("deliverable") is not None:
            step["deliverable"] = metadata["deliverable"]
        if metadata.get("runtime"):
            step["runtime"] = metadata["runtime"]
        for key, value in metadata.items():
            if key not in step:
                step[key] = value
        step["metadata"] = metadata
        exported.append(step)
        entry: Doc = {"output_text": step["output"]}
        if metadata.get("artifacts") is not None:
            entry["artifacts"] = metadata["artifacts"]
        if metadata.get("status") is not None:
            entry["status"] = metadata["status"]
        if metadata.get("notes"):
            entry["notes"] = metadata["notes"]
        earlier[step_id] = entry
    return exported


def _when(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def to_export(graph: SessionGraph, *, session_id: int = 1, first_event_id: int = 1) -> Doc:
    """The export line for ``graph`` as if its rows had ids ``session_id`` and ``first_event_id``..."""
    row = graph.session
    stored = row.get("metadata")
    metadata: Doc = copy.deepcopy(stored) if isinstance(stored, dict) else {}
    metadata.setdefault("session_id", session_id)
    if row.get("status") is not None:
        metadata.setdefault("status", row["status"])
    if row.get("created_at") is not None and not metadata.get("created_at"):
        metadata["created_at"] = _when(row["created_at"])
    if row.get("completed_at") is not None and not metadata.get("completed_at"):
        metadata["completed_at"] = _when(row["completed_at"])
    events: list[Doc] = []
    for offset, event_row in enumerate(graph.trajectory_events):
        envelope = copy.deepcopy(event_row["event"])
        item: Doc = {"id": first_event_id + offset, "event": envelope}
        if isinstance(envelope, dict):
            kind = envelope.get("event_type") or envelope.get("type")
            if kind:
                item.setdefault("type", kind)
                item.setdefault("event_type", kind)
            if envelope.get("name"):
                item.setdefault("name", envelope["name"])
            inner = envelope.get("metadata")
            if isinstance(inner, dict) and inner.get("actor"):
                item.setdefault("actor", inner["actor"])
        if event_row.get("created_at") is not None:
            item["created_at"] = _when(event_row["created_at"])
        events.append(item)
    if events:
        metadata["trajectory_events"] = events

    plan = copy.deepcopy(graph.plan) if isinstance(graph.plan, dict) else {}
    line: Doc = {
        "task": row.get("task", ""),
        "final_answer": row.get("final_answer") or "",
        "plan": plan,
        "steps": _steps(graph),
        "session_metadata": metadata,
    }
    mode = metadata.get("execution_mode")
    summary = metadata.get("adaptive_summary")
    if isinstance(mode, str) and mode:
        line["execution_mode"] = mode
    elif isinstance(summary, dict) and isinstance(summary.get("adaptive_mode"), str) and summary["adaptive_mode"]:
        line["execution_mode"] = summary["adaptive_mode"]
    review_status = row.get("review_status") or metadata.get("review_status")
    if isinstance(review_status, str) and review_status:
        line["review_status"] = review_status
        metadata.setdefault("review_status", review_status)
    notes = row.get("review_notes")
    if isinstance(notes, str) and notes.strip():
        line["review_notes"] = notes.strip()
    stats = row.get("reward_stats") or metadata.get("reward_stats")
    if isinstance(stats, dict) and stats:
        line["reward_stats"] = copy.deepcopy(stats)
        metadata.setdefault("reward_stats", copy.deepcopy(stats))
    audit = row.get("reward_audit")
    if not isinstance(audit, list) or not audit:
        fallback = metadata.get("reward_audit")
        audit = fallback if isinstance(fallback, list) else []
    entries = [copy.deepcopy(entry) for entry in audit if isinstance(entry, dict)]
    if entries:
        line["reward_audit"] = entries
        metadata.setdefault("reward_audit", copy.deepcopy(entries))
    reward = row.get("reward")
    if isinstance(reward, dict) and reward:
        line["session_reward"] = copy.deepcopy(reward)
    for column in ("student_learning", "teacher_learning"):
        value = row.get(column) or metadata.get(column)
        if isinstance(value, str) and value.strip():
            line[column] = value.strip()
    for name in ("adaptive_summary", "triage_dossier"):
        if isinstance(metadata.get(name), dict):
            line[name] = metadata[name]
    key = metadata.get("learning_key")
    if isinstance(key, str) and key:
        line["learning_key"] = key
    if isinstance(metadata.get("learning_history"), dict) and metadata["learning_history"]:
        line["learning_history"] = metadata["learning_history"]
    if isinstance(metadata.get("teacher_notes"), list):
        line["teacher_notes"] = metadata["teacher_notes"]
    for name in ("reward_summary", "drift"):
        if isinstance(metadata.get(name), dict):
            line[name] = metadata[name]
    alert = metadata.get("drift_alert")
    if alert is None and isinstance(metadata.get("drift"), dict):
        alert = metadata["drift"].get("drift_alert")
    if alert is not None:
        line["drift_alert"] = alert
    if events:
        line["trajectory_events"] = events
    return line
