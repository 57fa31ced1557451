"""Learning payloads: playbook entries, learning-registry metadata, learning_state, learning_history,
learning_usage."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from pytest_atlas.domain._common import Doc, iso, principles, spaced
from pytest_atlas.domain._source import Source

__all__ = [
    "build_learning_history",
    "build_learning_state",
    "build_learning_usage",
    "build_playbook_entry",
    "build_registry_metadata",
]

_WEIGHTS: Doc = {"actionability": 0.4, "generality": 0.3, "hookability": 0.2, "concision": 0.1}


def _summary(src: Source, moment: datetime) -> Doc:
    total = src.integer(0, 6)
    passed = src.integer(0, total)
    return {
        "total_candidates": total,
        "passed": passed,
        "failed": total - passed,
        "pass_rate": round(passed / total, 4) if total else 0.0,
        "gate_failures": {
            "actionability": src.integer(0, 2),
            "cue": src.integer(0, 2),
            "generality": src.integer(0, 2),
        },
        "average_weighted_score": round(src.real(0.0, 1.0), 4),
        "timestamp": iso(moment),
        "weights": dict(_WEIGHTS),
        "accepted": passed > 0,
        "provisional_count": src.integer(0, passed),
        "blocking_failures": total - passed,
    }


def _rubric(src: Source, *, with_weights: bool) -> Doc:
    # Atlas rounds float scores: 1.0 / 0.0, never the ints 1 / 0
    scores = {
        "actionability": src.pick((1.0, 0.0)),
        "generality": src.pick((1.0, 0.0)),
        "hookability": src.pick((1.0, 0.6, 0.4, 0.0)),
        "concision": round(src.real(0.0, 1.0), 4),
    }
    total = sum(float(scores[k]) * float(_WEIGHTS[k]) for k in _WEIGHTS)
    rubric: Doc = {
        "gates": {
            "actionability": bool(scores["actionability"]),
            "cue": src.flag(0.9),
            "generality": bool(scores["generality"]),
        },
        "scores": scores,
        "weighted_total": round(total, 4),
        "failure_reasons": [] if src.flag(0.8) else ["cue_gate:invalid cue pattern"],
    }
    if with_weights:
        rubric["weights"] = dict(_WEIGHTS)
    return rubric


def _impact(src: Source, moment: datetime) -> Doc:
    observed = src.integer(1, 40)
    hits = src.integer(0, observed)
    reward_with = src.integer(0, hits)
    reward_without = src.integer(0, observed - hits)
    return {
        "sessions_observed": observed,
        "sessions_with_hits": hits,
        "sessions_without_hits": observed - hits,
        "total_cue_hits": src.integer(hits, hits * 3),
        "total_adoptions": src.integer(0, hits),
        "successful_adoptions": src.integer(0, hits),
        "failed_adoptions": src.integer(0, 2),
        "reward_with_sum": round(reward_with * src.real(0.3, 1.0), 6),
        "reward_with_count": reward_with,
        "reward_without_sum": round(reward_without * src.real(0.3, 1.0), 6),
        "reward_without_count": reward_without,
        "tokens_with_sum": float(src.integer(0, 90000)),
        "tokens_with_count": hits,
        "tokens_without_sum": float(src.integer(0, 90000)),
        "tokens_without_count": observed - hits,
        "incident_ids": [f"INC-{src.integer(100, 999)}" for _ in range(src.integer(0, 2))],
        "incident_tags": [src.pick(("latency", "billing", "outage")) for _ in range(src.integer(0, 2))],
        "retry_sum": src.integer(0, 10),
        "retry_samples": observed,
        "failure_events": src.integer(0, 3),
        "first_observed_at": iso(moment - timedelta(days=src.integer(1, 30))),
        "last_observed_at": iso(moment) if src.flag(0.9) else None,
    }


def _entry_metadata(src: Source) -> Doc:
    """The synthesizer LLM's ``metadata`` with Atlas's verdict added (warnings for provisional entries)."""
    metadata: Doc = {"notes": src.sentence(2, 6)} if src.flag(0.2) else {}
    if src.flag(0.5):
        metadata["validation_status"] = "validated"
    else:
        metadata["validation_status"] = "provisional"
        metadata["validation_warnings"] = [
            src.pick(("generality_gate:contains_date", "generality_gate:banned_token:case"))
        ]
    return metadata


def build_playbook_entry(src: Source, moment: datetime, *, entry_id: str | None = None) -> Doc:
    """One accepted PlaybookEntry, sometimes with the LLM's alias keys left beside the canonical ones."""
    cue_type = src.pick(("keyword", "regex", "predicate"))
    cue: Doc = {
        "type": cue_type,
        "pattern": src.pick(("timeout", r"5\d\d", "error rate")),
        "description": src.sentence(3, 8),
    }
    if cue_type == "regex" and src.flag(0.2):
        cue["regex"] = cue["pattern"]  # alias kept next to the canonical key
    tool_name = src.pick(("search_logs", "http_get", None))
    action: Doc = {
        "imperative": src.sentence(3, 10),
        "runtime_handle": tool_name,
        "tool_name": tool_name,
        "arguments": {} if src.flag(0.6) else {"query": src.words(1, 3)},
    }
    if tool_name and src.flag(0.2):
        action["tool"] = tool_name
    if action["arguments"] and src.flag(0.2):
        action["params"] = dict(action["arguments"])  # the LLM's alias, kept beside arguments
    lifecycle = src.pick(("active", "provisional", "deprecated"))
    category = src.pick(("differentiation", "reinforcement"))
    created = moment - timedelta(days=src.integer(0, 60), seconds=src.integer(0, 86399))
    rubric = _rubric(src, with_weights=True)
    provenance: Doc = {
        "created_at": iso(created),
        "updated_at": iso(moment),
        "status": {"category": category, "lifecycle": lifecycle},
        "rubric": copy.deepcopy(rubric),  # Atlas copies the entry's rubric, weights included
        "weights": dict(_WEIGHTS),
    }
    if src.flag(0.5):
        provenance["source_session_id"] = src.integer(1, 10**6)
    if src.flag(0.3):
        provenance["teacher_guidance_digest"] = src.hexdigits(16)
        provenance["source_teacher_intervention_hash"] = src.hexdigits(16)
    entry: Doc = {
        "id": entry_id or f"playbook-entry-{src.hexdigits(12)}",
        "audience": src.pick(("student", "teacher")),
        "cue": cue,
        "action": action,
        "expected_effect": src.sentence(3, 10),
        "scope": {"constraints": src.sentence(2, 6), "category": category, "applies_when": src.sentence(2, 6)},
        "metadata": _entry_metadata(src),
        "rubric": rubric,
        "generated_at": iso(created),
        "provenance": provenance,
    }
    if src.flag(0.7):
        entry["impact"] = _impact(src, moment)
    return entry


def build_registry_metadata(src: Source, moment: datetime, *, entries: int | None = None) -> Doc:
    """``learning_registry.metadata`` (= ``learning_state.metadata``) after at least one synthesis,
    or (less often) a legacy v0.1.8 free-form object."""
    if entries is None and src.flag(0.1):
        return {"synthesis_reasoning": src.sentence(3, 10)}
    count = entries if entries is not None else src.integer(0, 3)
    playbook = [build_playbook_entry(src, moment) for _ in range(count)]
    metadata: Doc = {
        "playbook_version": "playbook_entry.v1",
        "last_evaluation": {
            "timestamp": iso(moment),
            "summary": _summary(src, moment),
            # the evaluation's rubric (no weights); the id is the LLM's own, null when it sent "id": null
            "candidates": [
                {"id": e["id"] if src.flag(0.7) else None, "audience": e["audience"], "rubric": _bare(e["rubric"])}
                for e in playbook
            ],
        },
        "playbook_entries": playbook,
        "playbook_summary": _summary(src, moment),
    }
    if src.flag(0.7):
        metadata["last_updated_at"] = iso(moment)
    if src.flag(0.3):
        metadata["synthesis_reasoning"] = src.sentence(3, 10)
    if src.flag(0.2):
        metadata["validation_notes"] = [src.sentence(2, 8) for _ in range(src.integer(1, 2))]
    if src.flag(0.15):
        rejected_id = f"playbook-entry-{src.hexdigits(12)}"
        rubric = _rubric(src, with_weights=False)
        rubric["gates"]["actionability"] = False
        rubric["scores"]["actionability"] = 0.0
        metadata["last_failure"] = {
            "timestamp": iso(moment),
            "failures": [
                {
                    # the candidate's own id: null when the LLM sent "id": null
                    "id": rejected_id if src.flag(0.7) else None,
                    "gates": rubric["gates"],
                    "scores": rubric["scores"],
                    "reasons": ["actionability_gate:imperative missing"],
                }
            ],
            "rejected_candidates": [
                {
                    "id": rejected_id,
                    "audience": "student",
                    "scope": {"constraints": src.sentence(2, 6), "category": "differentiation", "applies_when": ""},
                    "status": {"category": "differentiation", "lifecycle": "rejected"},
                    "rubric": rubric,
                }
            ],
        }
    return metadata


def _bare(rubric: Doc) -> Doc:
    return {key: value for key, value in rubric.items() if key != "weights"}


def build_learning_state(src: Source, moment: datetime) -> Doc:
    """``sessions.metadata.learning_state``: cumulative pamphlets plus metadata, or the
    ``{"metadata": {}}`` artefact of a key with no registry row."""
    if src.flag(0.25):
        return {"metadata": {}}
    state: Doc = {
        "student_learning": src.sentence(4, 20),
        "teacher_learning": src.maybe(0.7, lambda: src.sentence(4, 20)),
        "metadata": build_registry_metadata(src, moment),
    }
    if src.flag(0.4):
        state["updated_at"] = spaced(moment)  # str(datetime), a space instead of "T"
    return state


def _history_reward(src: Source, score: float) -> Doc:
    """An earlier session's reward as the history carries it: ``sessions.reward`` without ``raw``,
    so with its judge's principles and samples."""
    rationale = src.sentence(2, 6)
    judged = principles(src, 0, 2)
    escalated = src.flag(0.2)
    sample = {
        "score": score,
        "rationale": rationale,
        "principles": judged,
        "uncertainty": round(src.real(0.0, 0.6), 4),
        "temperature": None,
    }
    return {
        "score": score,
        "rationale": None,
        "judges": [
            {
                "identifier": "session_reward",
                "score": score,
                "rationale": rationale,
                "principles": judged,
                "samples": [sample],
                "escalated": escalated,
                "escalation_reason": "tier1_variance_or_uncertainty" if escalated else None,
            }
        ],
    }


def build_learning_history(src: Source, before: datetime, *, populated: bool | None = None) -> Doc:
    """``learning_history``: the empty form ``{entries: [], count: 0, total_count: 0}`` or the populated one."""
    if populated is False or (populated is None and not src.key_flag(0.65)):  # shrinks to the empty form
        return {"entries": [], "count": 0, "total_count": 0}
    limit = src.pick((10, 10, 10, 5, 25, 200))
    total = src.integer(1, min(limit, 12) + 10)  # a long history is a large document; a dozen entries show it
    count = min(total, limit)
    entries: list[Doc] = []
    scores: list[float] = []
    moment = before - timedelta(hours=count + 1)
    for _ in range(count):
        moment += timedelta(minutes=src.integer(1, 59))
        score: float | None = round(src.real(0.0, 1.0), 4) if src.flag(0.9) else None
        reward = None if score is None else _history_reward(src, score)
        if score is not None:
            scores.append(score)
        entries.append(
            {
                "reward": reward,
                "student_learning": src.maybe(0.5, lambda: src.sentence(3, 10)),
                "teacher_learning": src.maybe(0.3, lambda: src.sentence(3, 10)),
                "created_at": iso(moment),
                "completed_at": iso(moment + timedelta(seconds=src.integer(1, 600))),
            }
        )
    history: Doc = {"entries": entries, "count": count, "total_count": total}

    def streak(pred: Any) -> int:
        run = 0
        for value in reversed(scores):
            if not pred(value):
                break
            run += 1
        return run

    if scores:
        history["scores"] = scores
        history["average_score"] = sum(scores) / len(scores)
        history["recent_high_score_streak"] = streak(lambda v: v >= 0.8)
        history["recent_low_score_streak"] = streak(lambda v: v <= 0.4)
        history["overall_average_score"] = round(src.real(0.0, 1.0), 4) if total > count else history["average_score"]
    else:
        history["recent_high_score_streak"] = 0
        history["recent_low_score_streak"] = 0
    history["limit"] = limit
    return history


def _entry_usage(src: Source, entry: Doc) -> Doc:
    usage: Doc = {
        "cue_hits": src.integer(0, 5),
        "action_adoptions": src.integer(0, 3),
        "successful_adoptions": src.integer(0, 2),
        "failed_adoptions": src.integer(0, 1),
        "step_ids": [1] if src.flag(0.5) else [],
        "adoption_steps": [1] if src.flag(0.3) else [],
        "runtime_handle": entry.get("action", {}).get("runtime_handle"),
        "category": entry.get("scope", {}).get("category"),
        "metadata": {
            "cue": entry.get("cue"),
            "scope": entry.get("scope"),
            "expected_effect": entry.get("expected_effect"),
        },
    }
    if src.flag(0.3):
        usage["cue_examples"] = [src.sentence(2, 8)[:200] for _ in range(src.integer(1, 2))]
    if src.flag(0.2):
        usage["adoption_examples"] = [{"status": "adopted", "step_id": 1}]
    return usage


def build_learning_usage(
    src: Source,
    *,
    entries: list[Doc],
    reward_score: float | None,
    incident_id: str | None,
    task_identifier: str | None,
    incident_tags: list[str],
    failure_steps: list[int],
    retry_count: int,
) -> Doc:
    """``learning_usage``: every entry tracked under both roles, plus the session block."""
    roles: Doc = {}
    for role in ("student", "teacher"):
        roles[role] = {entry["id"]: _entry_usage(src, entry) for entry in entries}
    hits = sum(u["cue_hits"] for u in roles["student"].values())
    adoptions = sum(u["action_adoptions"] for u in roles["student"].values())
    token_usage: Doc = {}
    if src.flag(0.7):
        prompt, completion = float(src.integer(10, 9000)), float(src.integer(1, 3000))
        token_usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "calls": float(src.integer(1, 6)),
        }
    return {
        "roles": roles,
        "session": {
            "cue_hits": hits,
            "action_adoptions": adoptions,
            "failed_adoptions": 0,
            "unique_cue_steps": [1] if hits else [],
            "unique_adoption_steps": [1] if adoptions else [],
            "reward_score": reward_score,
            "token_usage": token_usage,
            "incident_id": incident_id,
            "task_identifier": task_identifier,
            "incident_tags": incident_tags,
            "retry_count": retry_count,
            "failure_flag": bool(failure_steps),
            "failure_events": [{"step_id": step, "status": "failed"} for step in failure_steps],
        },
        "detectors": {
            role: [
                {"entry_id": e["id"], "type": e.get("cue", {}).get("type"), "pattern": e.get("cue", {}).get("pattern")}
                for e in entries
            ]
            for role in ("student", "teacher")
        },
    }
