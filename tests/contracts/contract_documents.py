"""Realistic Atlas payloads, written by hand from what Atlas writes.

Every builder returns a fresh document, so tests may mutate what they get. The shapes follow what Atlas
0.1.15/0.1.16 writes on its main paths (paired run with RIM reward, learning enabled, drift on); the
``*_quirk`` variants reproduce the oddities Atlas is known to write, one at a time.
"""

from __future__ import annotations

import copy
from typing import Any

LEARNING_KEY = "5d0c3b1f4a0e6f7d8c9b2a1e3f4d5c6b7a8e9f0d1c2b3a4e5f6d7c8b9a0e1f2d"
DIGEST = "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e"
TS = "2025-11-03T14:22:05.118402+00:00"
PY_TS = "2025-11-03 14:22:05.118402+00:00"

SYSTEM_PROMPT = (
    "You are the Atlas session reward model. Score the agent's final answer from 0 to 1 and report your "
    'uncertainty. Session metadata: {"source": "atlas run", "incident_id": "INC-4471"}'
)


def principles() -> list[dict[str, Any]]:
    return [
        {"name": "Correctness", "weight": 0.5, "description": "The answer resolves the task."},
        {"name": "Evidence", "weight": 0.3, "description": "Claims are backed by tool output."},
        {"name": "Concision", "weight": 0.2, "description": "No padding."},
    ]


def judge_sample(score: float = 0.82, uncertainty: float = 0.12) -> dict[str, Any]:
    return {
        "score": score,
        "rationale": "The root cause is identified and the fix is verified against the logs.",
        "principles": principles(),
        "uncertainty": uncertainty,
        "temperature": None,
    }


def session_reward() -> dict[str, Any]:
    samples = [judge_sample(0.82, 0.12), judge_sample(0.78, 0.18), judge_sample(0.86, 0.1)]
    score = sum(s["score"] for s in samples) / 3
    return {
        "score": score,
        "rationale": None,
        "judges": [
            {
                "identifier": "session_reward",
                "score": score,
                "rationale": samples[2]["rationale"],
                "principles": principles(),
                "samples": samples,
                "escalated": False,
                "escalation_reason": None,
            }
        ],
        "raw": {
            "score": score,
            "samples": [{"score": s["score"], "uncertainty": s["uncertainty"]} for s in samples],
            "execution_mode": "paired",
            "teacher_intervened": True,
            "focus_prompt": None,
        },
    }


def escalated_session_reward() -> dict[str, Any]:
    reward = session_reward()
    arbiter = judge_sample(0.64, 0.2)
    reward["score"] = 0.64
    judge = reward["judges"][0]
    judge.update(score=0.64, samples=[arbiter], escalated=True, escalation_reason="tier1_variance_or_uncertainty")
    reward["raw"].update(score=0.64, samples=[{"score": 0.64, "uncertainty": 0.2}])
    return reward


def fallback_session_reward() -> dict[str, Any]:
    """No valid sample: the synthetic sample with uncertainty 1.0."""
    sample = {
        "score": 0.0,
        "rationale": "No valid reward sample produced.",
        "principles": [],
        "uncertainty": 1.0,
        "temperature": None,
    }
    return {
        "score": 0.0,
        "rationale": None,
        "judges": [
            {
                "identifier": "session_reward",
                "score": 0.0,
                "rationale": sample["rationale"],
                "principles": [],
                "samples": [sample],
                "escalated": False,
                "escalation_reason": None,
            }
        ],
        "raw": {
            "score": 0.0,
            "samples": [{"score": 0.0, "uncertainty": 1.0}],
            "execution_mode": "auto",
            "teacher_intervened": False,
            "focus_prompt": "Prefer verified fixes.",
        },
    }


def reward_stats() -> dict[str, Any]:
    return {
        "score": 0.82,
        "score_mean": 0.82,
        "score_stddev": 0.03265986323710903,
        "sample_count": 3,
        "uncertainty_mean": 0.13333333333333333,
        "uncertainty_stddev": 0.03399346342395189,
        "best_uncertainty": 0.1,
        "timestamp": TS,
    }


def audit_tier1(temperature: float = 0.2) -> dict[str, Any]:
    return {
        "stage": "tier1",
        "model": "gemini/gemini-2.5-flash",
        "temperature": temperature,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Task: investigate the checkout latency spike.\nFinal answer: ..."},
        ],
        "response": '{"score": 0.82, "uncertainty": 0.12, "rationale": "...", "principles": []}',
        "reasoning": {},
        "raw_response": "ModelResponse(id='chatcmpl-8f1d', created=1762179725, model='gemini-2.5-flash', "
        "object='chat.completion', choices=[Choices(finish_reason='stop', index=0, message=Message("
        "content='{...}', role='assistant'))], usage=Usage(completion_tokens=88, prompt_tokens=1900))",
    }


def audit_tier1_error(temperature: float = 0.8) -> dict[str, Any]:
    entry = audit_tier1(temperature)
    for key in ("response", "reasoning", "raw_response"):
        del entry[key]
    entry["error"] = "RateLimitError('litellm.RateLimitError: quota exceeded')"
    return entry


def audit_arbiter() -> dict[str, Any]:
    return {
        "stage": "arbiter",
        "model": "gemini/gemini-2.5-pro",
        "messages": [{"role": "user", "content": "Reconcile the tier-1 samples ..."}],
        "response": '{"score": 0.64, "uncertainty": 0.2, "rationale": "...", "principles": []}',
        "reasoning": {"queue": [{"thinking": "The samples disagree on evidence."}]},
        "raw_response": "ModelResponse(id='chatcmpl-99aa', model='gemini-2.5-pro')",
        "reasoning_queue": [{"thinking": "The samples disagree on evidence."}],
    }


def reward_audit() -> list[dict[str, Any]]:
    return [audit_tier1(0.2), audit_tier1(0.5), audit_tier1(0.8)]


def escalated_reward_audit() -> list[dict[str, Any]]:
    return [audit_tier1(0.2), audit_tier1_error(0.5), audit_tier1(0.8), audit_arbiter()]


def drift(alert: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "alert": alert,
        "drift_alert": alert,
        "reason": "score_z" if alert else None,
        "score_delta": -0.31 if alert else 0.01,
        "score_z": -3.4 if alert else 0.2,
        "score_mad_z": -2.9 if alert else 0.1,
        "uncertainty_delta": 0.02,
        "uncertainty_z": 0.5,
        "uncertainty_mad_z": None,
        "threshold": 3.0,
        "window": 50,
        "learning_key": LEARNING_KEY,
        "baseline": {
            "window": 50,
            "sample_count": 6,
            "score_mean": 0.81,
            "score_median": 0.82,
            "score_stddev": 0.09,
            "uncertainty_mean": 0.14,
            "uncertainty_median": 0.13,
            "uncertainty_stddev": 0.04,
            "best_uncertainty_mean": 0.1,
            "best_uncertainty_median": 0.1,
            "best_uncertainty_stddev": 0.0,
        },
    }
    if alert:
        payload["message"] = "Reward drift alert (score_z)"
    return payload


def insufficient_drift() -> dict[str, Any]:
    payload = drift(False)
    payload.update(reason="insufficient_baseline", score_z=None, score_mad_z=None, uncertainty_z=None)
    payload["baseline"]["sample_count"] = 1
    payload["baseline"]["score_stddev"] = 0.0
    return payload


def rubric(weights: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gates": {"actionability": True, "cue": True, "generality": True},
        "scores": {"actionability": 1, "generality": 1, "hookability": 0.6, "concision": 0.8125},
        "weighted_total": 0.8013,
        "failure_reasons": [],
    }
    if weights:
        out["weights"] = {"actionability": 0.4, "generality": 0.3, "hookability": 0.2, "concision": 0.1}
    return out


def summary() -> dict[str, Any]:
    return {
        "total_candidates": 2,
        "passed": 2,
        "failed": 0,
        "pass_rate": 1.0,
        "gate_failures": {},
        "average_weighted_score": 0.79,
        "timestamp": TS,
        "weights": {"actionability": 0.4, "generality": 0.3, "hookability": 0.2, "concision": 0.1},
        "accepted": True,
        "provisional_count": 0,
        "blocking_failures": 0,
    }


def playbook_entry(entry_id: str = "playbook-entry-3fa2b1c9d8e7") -> dict[str, Any]:
    return {
        "id": entry_id,
        "audience": "student",
        "cue": {
            "type": "regex",
            "pattern": "latency|p99",
            "description": "Latency regressions",
            "regex": "latency|p99",
        },
        "action": {
            "imperative": "Pull the p99 latency histogram before proposing a fix.",
            "runtime_handle": "metrics.query",
            "tool_name": "metrics.query",
            "arguments": {"window": "1h"},
            "tool": "metrics.query",
        },
        "expected_effect": "Fixes are grounded in measured latency.",
        "scope": {
            "constraints": "Only for services with metrics.",
            "category": "differentiation",
            "applies_when": "A latency incident is reported.",
        },
        "metadata": {"validation_status": "validated"},
        "rubric": rubric(),
        "generated_at": TS,
        "provenance": {
            "created_at": TS,
            "updated_at": TS,
            "source_session_id": 41,
            "teacher_guidance_digest": "a1b2c3d4e5f60718",
            "status": {"category": "differentiation", "lifecycle": "active"},
            "rubric": rubric(),
            "weights": {"actionability": 0.4, "generality": 0.3, "hookability": 0.2, "concision": 0.1},
        },
        "impact": {
            "sessions_observed": 4,
            "sessions_with_hits": 3,
            "sessions_without_hits": 1,
            "total_cue_hits": 5,
            "total_adoptions": 3,
            "successful_adoptions": 2,
            "failed_adoptions": 1,
            "reward_with_sum": 2.46,
            "reward_with_count": 3,
            "reward_without_sum": 0.61,
            "reward_without_count": 1,
            "tokens_with_sum": 5400.0,
            "tokens_with_count": 3,
            "tokens_without_sum": 2100.0,
            "tokens_without_count": 1,
            "incident_ids": ["INC-4471", "INC-4502"],
            "incident_tags": ["latency"],
            "retry_sum": 1,
            "retry_samples": 4,
            "failure_events": 1,
            "first_observed_at": TS,
            "last_observed_at": TS,
        },
    }


def registry_metadata() -> dict[str, Any]:
    return {
        "synthesis_reasoning": "Both sessions needed the latency histogram first.",
        "playbook_version": "playbook_entry.v1",
        "last_evaluation": {
            "timestamp": TS,
            "summary": summary(),
            "candidates": [{"id": "playbook-entry-3fa2b1c9d8e7", "audience": "student", "rubric": rubric(False)}],
        },
        "playbook_entries": [playbook_entry()],
        "playbook_summary": summary(),
        "last_updated_at": TS,
    }


def registry_metadata_with_failure() -> dict[str, Any]:
    meta = registry_metadata()
    meta["last_failure"] = {
        "timestamp": TS,
        "failures": [
            {
                "id": "pb-9",
                "gates": {"actionability": False, "cue": True, "generality": True},
                "scores": {"actionability": 0},
                "reasons": ["actionability_gate:no runtime handle"],
            }
        ],
        "rejected_candidates": [
            {
                "id": "pb-9",
                "audience": "teacher",
                "scope": {"category": "reinforcement"},
                "status": {"category": "reinforcement", "lifecycle": "rejected"},
                "rubric": rubric(False),
            }
        ],
    }
    deprecated = playbook_entry("pb-old")
    deprecated["provenance"]["status"]["lifecycle"] = "deprecated"
    meta["playbook_entries"].append(deprecated)
    return meta


def learning_usage() -> dict[str, Any]:
    entry = {
        "cue_hits": 2,
        "action_adoptions": 1,
        "successful_adoptions": 1,
        "failed_adoptions": 0,
        "step_ids": [1],
        "adoption_steps": [1],
        "runtime_handle": "metrics.query",
        "category": "differentiation",
        "metadata": {
            "cue": {"type": "regex", "pattern": "latency|p99"},
            "scope": {"category": "differentiation"},
            "expected_effect": "Grounded fixes.",
        },
    }
    return {
        "roles": {
            "student": {"playbook-entry-3fa2b1c9d8e7": entry},
            "teacher": {"playbook-entry-3fa2b1c9d8e7": copy.deepcopy(entry)},
        },
        "session": {
            "cue_hits": 2,
            "action_adoptions": 1,
            "failed_adoptions": 0,
            "unique_cue_steps": [1],
            "unique_adoption_steps": [1],
            "reward_score": 0.82,
            "token_usage": {"prompt_tokens": 1830.0, "completion_tokens": 412.0, "total_tokens": 2242.0, "calls": 3.0},
            "incident_id": "INC-4471",
            "task_identifier": "Checkout latency spike",
            "incident_tags": ["latency"],
            "retry_count": 0,
            "failure_flag": False,
            "failure_events": [],
        },
        "detectors": {
            "student": [{"entry_id": "playbook-entry-3fa2b1c9d8e7", "type": "regex", "pattern": "latency|p99"}],
            "teacher": [{"entry_id": "playbook-entry-3fa2b1c9d8e7", "type": "regex", "pattern": "latency|p99"}],
        },
    }


def learning_history() -> dict[str, Any]:
    past = session_reward()
    del past["raw"]
    return {
        "entries": [
            {
                "reward": past,
                "student_learning": "Check the histogram first.",
                "teacher_learning": None,
                "created_at": TS,
                "completed_at": TS,
            },
            {
                "reward": {"score": 0.35, "rationale": None, "judges": []},
                "student_learning": None,
                "teacher_learning": "Ask for logs.",
                "created_at": TS,
                "completed_at": None,
            },
        ],
        "count": 2,
        "total_count": 7,
        "scores": [0.82, 0.35],
        "average_score": 0.585,
        "overall_average_score": 0.61,
        "recent_high_score_streak": 0,
        "recent_low_score_streak": 1,
        "limit": 10,
    }


def triage_dossier() -> dict[str, Any]:
    return {
        "task": "Investigate the checkout latency spike.",
        "summary": "SRE investigation for checkout",
        "risks": [{"category": "availability", "description": "Checkout p99 above SLO", "severity": "high"}],
        "signals": [
            {"name": "p99_ms", "value": 2300, "confidence": 0.9, "annotation": None},
            {"name": "alerts", "value": ["HighLatency"], "confidence": None, "annotation": "pager"},
        ],
        "persona_references": [{"persona_id": "sre-oncall", "rationale": None, "weight": 1.0, "tags": []}],
        "embeddings": {"task": {"vector": [0.12, -0.4, 0.33], "model": "text-embedding-3-small", "note": None}},
        "tags": ["latency", "checkout"],
        "metadata": {
            "learning_key": LEARNING_KEY,
            "source": "atlas run",
            "incident_id": "INC-4471",
            "service": "checkout",
        },
        "fingerprint_hint": "sre::checkout",
    }


def learning_state() -> dict[str, Any]:
    """The state after a synthesis in this session (no updated_at)."""
    return {
        "student_learning": "Pull latency histograms before proposing fixes.",
        "teacher_learning": None,
        "metadata": registry_metadata(),
    }


def session_metadata() -> dict[str, Any]:
    """sessions.metadata of a successful paired run (success path, RIM reward, learning on, drift on)."""
    return {
        "source": "atlas run",
        "incident_id": "INC-4471",
        "incident_tags": ["latency"],
        "tags": ["latency", "checkout"],
        "learning_key": LEARNING_KEY,
        "review": {"require_approval": True, "default_export_statuses": ["approved"], "include_all_statuses": False},
        "drift": drift(False),
        "drift_alert": False,
        "reward_audit": reward_audit(),
        "triage_dossier": triage_dossier(),
        "adaptive_summary": {
            "adaptive_mode": "paired",
            "mode_history": [{"mode": "paired", "confidence": 0.72}],
            "confidence": 0.72,
            "probe": {"mode": "paired", "confidence": 0.72},
        },
        "execution_mode": "paired",
        "session_reward": session_reward(),
        "reward_stats": reward_stats(),
        "token_usage": {"prompt_tokens": 1830, "completion_tokens": 412, "total_tokens": 2242, "calls": 3},
        "learning_usage": learning_usage(),
        "student_learning": "Query the latency histogram before touching the cache.",
        "teacher_learning": "Intervene early when no metrics were pulled.",
        "session_learning_note": "Student: Query the histogram first. Teacher: Intervene early.",
        "learning_state": learning_state(),
        "reward_summary": {
            "score": 0.82,
            "score_stddev": 0.0327,
            "uncertainty_mean": 0.1333,
            "uncertainty_stddev": 0.034,
        },
        "learning_history": learning_history(),
        "teacher_notes": ["Check the p99 histogram before changing the cache TTL."],
        "applied_student_learning": {"digest": DIGEST, "char_count": 47, "entry_count": 1},
    }


def running_session_metadata() -> dict[str, Any]:
    return {"source": "atlas run", "task_num": 3, "learning_key": LEARNING_KEY}


def failed_session_metadata() -> dict[str, Any]:
    meta = session_metadata()
    for key in (
        "review",
        "drift",
        "drift_alert",
        "session_reward",
        "reward_stats",
        "reward_audit",
        "teacher_notes",
        "student_learning",
        "teacher_learning",
        "session_learning_note",
    ):
        meta.pop(key, None)
    meta["reward_summary"] = {"average": None, "count": 0}
    meta["adaptive_summary"] = {"adaptive_mode": "paired", "mode_history": [{"mode": "paired"}]}
    meta["learning_history"] = {"entries": [], "count": 0, "total_count": 0}
    return meta


def drift_alert_session_metadata() -> dict[str, Any]:
    meta = session_metadata()
    meta["drift"] = drift(True)
    meta["drift_alert"] = True
    meta["review_status"] = "pending"
    meta["review_notes"] = "Reward drift alert (score_z)"
    meta["session_reward"] = escalated_session_reward()
    meta["reward_audit"] = escalated_reward_audit()
    return meta


def auto_approved_session_metadata() -> dict[str, Any]:
    meta = session_metadata()
    meta["review"] = {"require_approval": False, "default_export_statuses": [], "include_all_statuses": True}
    meta["review_status"] = "approved"
    meta["review_notes"] = "Auto-approved (review gating disabled)."
    meta["execution_mode"] = "auto"
    meta["adaptive_summary"] = {
        "adaptive_mode": "auto",
        "mode_history": [{"mode": "auto", "confidence": 1.0}],
        "confidence": 1.0,
    }
    meta["learning_history"] = {"entries": [], "count": 0, "total_count": 0}
    del meta["learning_usage"]
    return meta


def plan() -> dict[str, Any]:
    return {
        "steps": [
            {
                "id": 1,
                "description": "Produce the complete answer for the task in a single response.",
                "tool": None,
                "tool_params": None,
                "depends_on": [],
            }
        ],
        "execution_mode": "single_shot",
    }


def coach_plan() -> dict[str, Any]:
    doc = plan()
    doc["steps"][0]["description"] += (
        "\nFollow this reviewed plan while responding:\n1. Pull the p99 histogram.\n2. Compare with last deploy."
    )
    return doc


def stepwise_plan() -> dict[str, Any]:
    return {
        "steps": [
            {
                "id": 1,
                "description": "Collect metrics",
                "tool": "metrics.query",
                "tool_params": {"window": "1h"},
                "depends_on": [],
            },
            {"id": 2, "description": "Diagnose", "tool": None, "tool_params": None, "depends_on": [1, "1"]},
        ],
        "execution_mode": "stepwise",
    }


def placeholder_reward(reason: str = "deferred") -> dict[str, Any]:
    return {"score": 0.0, "rationale": reason, "judges": [], "raw": {"skipped": True, "reason": reason}}


def step_evaluation_passthrough() -> dict[str, Any]:
    return {"validation": {"valid": True, "guidance": None}, "reward": placeholder_reward()}


def step_evaluation_teacher() -> dict[str, Any]:
    return {
        "validation": {
            "valid": False,
            "guidance": "Pull the p99 histogram before proposing a cache change.",
            "reasoning": {"thinking": "No metrics were cited."},
            "status": "needs_revision",
            "artifacts": {},
            "text": "The answer lacks evidence.",
            "cached": False,
            "validation_request": {
                "step": {"id": 1, "description": "Produce the complete answer for the task in a single response."},
                "trace": {"hash": DIGEST, "preview": "HUMAN: Investigate...\nAI: The cache TTL..."},
                "status": "ok",
                "student_response": "Lower the cache TTL.",
                "reason": None,
                "structured_output": {
                    "hash": DIGEST,
                    "keys": ["deliverable", "artifacts"],
                    "content": {},
                    "preview": "{...}",
                },
                "deliverable": None,
                "artifacts": None,
                "prior_results": {"hash": DIGEST, "changed": False, "content": {}, "preview": "{}"},
                "prior_guidance": [],
                "attempt_guidance": [],
                "available_tools": [
                    {
                        "name": "metrics.query",
                        "description": "Query metrics",
                        "parameters": {"type": "object", "properties": {}, "required": []},
                    }
                ],
            },
        },
        "reward": placeholder_reward("validation_failed"),
    }


def step_evaluation_runtime_error() -> dict[str, Any]:
    return {
        "validation": {"valid": False, "error": "TimeoutError()"},
        "reward": {"score": 0.0, "rationale": "runtime_error", "judges": [], "raw": {"error": "TimeoutError()"}},
    }


def step_metadata() -> dict[str, Any]:
    return {
        "reasoning": [
            {"message_index": 1, "role": "ai", "payload": {"reasoning_content": "Check metrics first."}},
            {
                "origin": "student",
                "payload": {
                    "chunks": ["Check", " metrics"],
                    "token_counts": {"approx_total": 4, "chunks": 2},
                    "text": "Check metrics",
                },
            },
            {
                "origin": "student",
                "payload": {
                    "stream_snapshot": {
                        "agent": {"messages": ["{'type': 'system', 'content': 'You are the student...'}"]}
                    },
                    "output_text": "Done",
                },
            },
        ],
        "usage": {"prompt_tokens": 1830, "completion_tokens": 412, "total_tokens": 2242},
        "artifacts": {"histogram": "p99=2300ms"},
        "deliverable": "Roll back deploy 4471; p99 returns to 310 ms.",
        "result": {"deliverable": "Roll back deploy 4471.", "artifacts": {}},
        "structured_output": {
            "deliverable": "Roll back deploy 4471.",
            "artifacts": {},
            "result": None,
            "text": "Roll back deploy 4471.",
            "status": "ok",
        },
        "text": "Roll back deploy 4471; p99 returns to 310 ms.",
        "status": "ok",
        "runtime": {
            "reward_skipped": True,
            "timings_ms": {"student_ms": 5123.4, "validation_ms": 812.0, "guidance_ms": 0.4, "total_ms": 5936.1},
        },
    }


def _envelope(
    event_type: str, name: str | None, metadata: Any, data: Any, uuid: str, parent: str = "root"
) -> dict[str, Any]:
    return {
        "parent_id": parent,
        "function_ancestry": {"function_id": "root", "function_name": "root", "parent_id": None, "parent_name": None},
        "payload": {
            "event_type": event_type,
            "event_timestamp": 1762179725.118402,
            "span_event_timestamp": None,
            "framework": None,
            "name": name,
            "tags": None,
            "metadata": metadata,
            "data": data,
            "usage_info": None,
            "UUID": uuid,
        },
    }


def trajectory_events() -> list[dict[str, Any]]:
    run = "018f3c2a-9b7e-7c1d-8e2f-3a4b5c6d7e8f"
    return [
        _envelope(
            "WORKFLOW_START",
            "orchestration",
            None,
            {"input": {"task": "Investigate the checkout latency spike."}, "output": None, "chunk": None},
            "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        ),
        _envelope(
            "CUSTOM_END",
            "adaptive_route",
            None,
            {
                "input": {"mode": "paired"},
                "output": {"mode": "paired", "confidence": 0.72, "reason": "capability_probe"},
                "chunk": None,
            },
            "7a1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        ),
        _envelope(
            "LLM_START",
            "ChatGoogleGenerativeAI",
            {
                "actor": "student",
                "step_id": 1,
                "run_id": run,
                "node": "agent",
                "node_type": "llm",
                "tags": ["seq:step:1"],
                "langgraph": {"langgraph_node": "agent", "langgraph_step": 1},
            },
            {
                "input": {"messages": [{"type": "human", "content": "Investigate...", "additional_kwargs": {}}]},
                "output": None,
                "chunk": None,
            },
            run,
            parent="8b1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        ),
        _envelope(
            "LLM_START",
            "chat_model",
            {"actor": "student", "parent_run_id": None},
            {
                "input": {"messages": [{"type": "human", "content": "Investigate...", "additional_kwargs": {}}]},
                "output": None,
                "chunk": None,
            },
            run,
        ),
        _envelope(
            "SPAN_CHUNK",
            "agent",
            {"actor": "student", "step_id": 1, "run_id": run, "node": "agent", "node_type": "span"},
            {
                "input": None,
                "output": None,
                "chunk": {"text": "Check", "token_counts": {"incremental": 1, "accumulated": 1}},
            },
            run,
        ),
        _envelope(
            "LLM_END",
            "ChatGoogleGenerativeAI",
            {
                "actor": "student",
                "step_id": 1,
                "run_id": run,
                "node": "agent",
                "node_type": "llm",
                "token_counts": {"approx_total": 412, "chunks": 37},
                "usage": {"prompt_tokens": 1830, "completion_tokens": 412, "total_tokens": 2242},
            },
            {"input": None, "output": {"type": "ai", "content": "Roll back deploy 4471."}, "chunk": None},
            run,
        ),
        _envelope(
            "TASK_END",
            "step_1",
            None,
            {"input": None, "output": {"trace": "HUMAN: ...", "output": {}, "status": "completed"}, "chunk": None},
            "9c1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        ),
        _envelope(
            "WORKFLOW_END",
            "orchestration",
            None,
            {"input": None, "output": "Roll back deploy 4471.", "chunk": None},
            "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        ),
    ]


def discovery_payload() -> dict[str, Any]:
    return {
        "plan": {"steps": ["reset", "act", "summarize"], "notes": "{'nested': {'too': 'deep'}}"},
        "final_answer": "Order 1182 refunded.",
        "telemetry": {
            "events": [
                {
                    "type": "env_reset",
                    "origin": "atlas",
                    "payload": {"observation": {"ticket": 1182}},
                    "timestamp": 1762179725.1,
                },
                {"type": "tool_call", "origin": "agent", "payload": {"tool": "refund"}, "timestamp": 1762179726.4},
                {
                    "type": "env_step",
                    "origin": "atlas",
                    "payload": {"step_index": 1, "reward": 1.0, "done": True, "info": {}},
                    "timestamp": 1762179726.9,
                },
            ],
            "agent_emitted": True,
        },
        "reward": {"total": 1.0, "last": 1.0, "steps": 1},
        "schema": {
            "observation": {"python_type": "dict", "shape": {"kind": "mapping", "keys": ["ticket"]}},
            "action": {"python_type": "str", "example": "refund 1182"},
            "reward": {"python_type": "float"},
        },
        "history": [
            {
                "step_index": 1,
                "observation": {"ticket": 1182, "status": "refunded"},
                "action": "refund 1182",
                "reward": 1.0,
                "done": True,
                "info": {},
                "submit": False,
                "metadata": {},
            },
        ],
        "capabilities": {"llm": {"provider": "openai", "model": "gpt-4.1-mini", "source": "agent.llm"}},
    }


def empty_discovery_payload() -> dict[str, Any]:
    return {
        "plan": None,
        "final_answer": None,
        "telemetry": {"events": [], "agent_emitted": False},
        "reward": {"total": None, "last": None, "steps": 0},
        "schema": {},
        "history": [],
        "capabilities": {"llm": {"provider": None, "model": None, "source": None}},
    }


def _target(role: str) -> dict[str, Any]:
    return {
        "selection": "candidate",
        "kwargs": {},
        "config": None,
        "role": role,
        "module": f"support_bot.{role}",
        "qualname": "SupportEnv" if role == "environment" else "SupportAgent",
        "file": f"support_bot/{role}.py",
        "hash": DIGEST,
        "auto_wrapped": False,
        "score": 7,
        "reason": "implements reset/step",
        "is_factory": False,
        "signals": {"instantiations": None, "abstract_methods": [], "prompt_literals": 2, "config_literals": 0},
        "capabilities": {"reset": True, "step": True, "close": False},
    }


def discovery_metadata() -> dict[str, Any]:
    payload = discovery_payload()
    factory = _target("agent")
    factory.update(selection="factory", factory={"module": "support_bot.agent", "qualname": "build_agent"})
    return {
        "version": 1,
        "generated_at": TS,
        "project_root": "/srv/support-bot",
        "environment": _target("environment"),
        "agent": factory,
        "capabilities": {
            "control_loop": "self",
            "supports_stepwise": True,
            "plan_description": '{\n  "steps": []\n}',
            "telemetry_agent_emitted": True,
            "preferred_mode": "auto",
            "llm": {"provider": "openai", "model": "gpt-4.1-mini", "source": "agent.llm", "inferred": True},
        },
        "schema": payload["schema"],
        "reward": payload["reward"],
        "telemetry": payload["telemetry"],
        "sample_history": payload["history"],
        "plan_preview": payload["plan"],
        "final_answer_sample": payload["final_answer"],
        "preflight": {"notes": ["agent exposes summarize()"], "auto_skip": False},
        "synthesis": {"notes": ["wrapped the agent factory"]},
    }


def runtime_discovery_metadata() -> dict[str, Any]:
    return {
        "capabilities": {"control_loop": "self", "preferred_mode": "auto"},
        "run_artifact": "/srv/support-bot/.atlas/runs/2025-11-03T14-22-05.json",
    }


def export_trace() -> dict[str, Any]:
    meta = session_metadata()
    events = [{"id": 100 + i, "event": event, "created_at": TS} for i, event in enumerate(trajectory_events())]
    meta.update(
        session_id=42,
        status="succeeded",
        created_at=TS,
        completed_at=TS,
        trajectory_events=events,
        review_status="approved",
    )
    step_reward = placeholder_reward()
    return {
        "task": "Investigate the checkout latency spike.",
        "final_answer": "Roll back deploy 4471.",
        "plan": plan(),
        "steps": [
            {
                "step_id": 1,
                "description": plan()["steps"][0]["description"],
                "trace": "HUMAN: Investigate...\nAI: Roll back deploy 4471.",
                "output": "Roll back deploy 4471.",
                "reward": {"score": 0.0, "judges": [], "rationale": "deferred", "raw": step_reward},
                "tool": None,
                "tool_params": {},
                "context": {"prior_results": {}, "prior_results_text": {}},
                "validation": {"valid": True, "guidance": None},
                "attempts": 1,
                "guidance": [],
                "runtime": step_metadata()["runtime"],
                "artifacts": {"histogram": "p99=2300ms"},
                "deliverable": "Roll back deploy 4471.",
                "reasoning": step_metadata()["reasoning"],
                "text": "Roll back deploy 4471.",
                "metadata": {
                    **step_metadata(),
                    "attempt_history": [{"attempt": 1, "evaluation": step_evaluation_passthrough()}],
                    "attempt_details": [{"attempt": 1, "evaluation": step_evaluation_passthrough()}],
                    "raw_evaluation": step_evaluation_passthrough(),
                    "depends_on": [],
                },
            }
        ],
        "session_metadata": meta,
        "execution_mode": "paired",
        "review_status": "approved",
        "reward_stats": reward_stats(),
        "reward_audit": reward_audit(),
        "session_reward": session_reward(),
        "student_learning": "Query the latency histogram before touching the cache.",
        "adaptive_summary": meta["adaptive_summary"],
        "triage_dossier": meta["triage_dossier"],
        "reward_summary": meta["reward_summary"],
        "drift": meta["drift"],
        "learning_key": LEARNING_KEY,
        "learning_history": meta["learning_history"],
        "teacher_notes": meta["teacher_notes"],
        "drift_alert": False,
        "trajectory_events": events,
    }


#: schema name -> builders of realistic valid documents that must validate without any warning
CLEAN: dict[str, list[Any]] = {
    "session-metadata": [
        session_metadata,
        running_session_metadata,
        drift_alert_session_metadata,
        auto_approved_session_metadata,
    ],
    "session-reward": [session_reward, escalated_session_reward, fallback_session_reward],
    "reward-stats": [reward_stats],
    "reward-audit": [reward_audit, escalated_reward_audit],
    "drift": [lambda: drift(False), lambda: drift(True), insufficient_drift],
    "trajectory-event": [lambda i=i: trajectory_events()[i] for i in range(len(trajectory_events()))],
    "plan": [plan, coach_plan],
    "step-evaluation": [step_evaluation_passthrough, step_evaluation_teacher],
    "step-metadata": [
        step_metadata,
        lambda: {
            "runtime": {
                "reward_skipped": True,
                "timings_ms": {"student_ms": 1.0, "validation_ms": 0.0, "total_ms": 1.0},
            }
        },
    ],
    "discovery-payload": [discovery_payload, empty_discovery_payload],
    "discovery-metadata": [discovery_metadata, runtime_discovery_metadata],
    "learning-registry-metadata": [registry_metadata, registry_metadata_with_failure],
    "export-trace": [export_trace],
}
