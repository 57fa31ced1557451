"""Session rewards, reward statistics and the reward audit, built together so they agree.

The RIM evaluator makes three tier-1 calls (temperatures 0.2, 0.5, 0.8); each
either fails (an audit entry with ``error``), answers unparseably (an audit entry, no sample) or yields
a sample. With two or more samples whose scores spread more than 0.15 (population stddev) or whose
largest uncertainty exceeds 0.3, an arbiter call follows; when it yields a sample, that sample
replaces the tier-1 samples. With no sample at all, a synthetic one (score 0.0, uncertainty 1.0)
is used. ``reward``, ``reward_stats`` and ``reward_audit`` are all derived from that one story.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean, pstdev
from typing import Any

from pytest_atlas.domain._common import Doc, iso, model_name, principles
from pytest_atlas.domain._source import Source

__all__ = [
    "EMPTY_SAMPLE_RATIONALE",
    "RewardOutcome",
    "build_reward",
    "placeholder_step_reward",
    "stats_from_samples",
]

TIER1_TEMPERATURES = (0.2, 0.5, 0.8)
VARIANCE_THRESHOLD = 0.15
UNCERTAINTY_THRESHOLD = 0.3
EMPTY_SAMPLE_RATIONALE = "No valid reward sample produced."


@dataclass(frozen=True)
class RewardOutcome:
    """One session's reward story: the three JSONB documents and the samples they came from."""

    reward: Doc
    stats: Doc
    audit: list[Doc]
    samples: tuple[tuple[float, float], ...]


def stats_from_samples(samples: list[tuple[float, float]], timestamp: str | None) -> Doc:
    """``reward_stats`` for the given ``(score, uncertainty)`` samples, as the evaluator computes it."""
    scores = [score for score, _ in samples]
    uncertainties = [uncertainty for _, uncertainty in samples]
    score = sum(scores) / len(scores)
    stats: Doc = {
        "score": score,
        "score_mean": score,
        "score_stddev": pstdev(scores) if len(scores) > 1 else 0.0,
        "sample_count": len(scores),
        "uncertainty_mean": fmean(uncertainties),
        "uncertainty_stddev": pstdev(uncertainties) if len(uncertainties) > 1 else 0.0,
        "best_uncertainty": min(uncertainties),
    }
    if timestamp is not None:
        stats["timestamp"] = timestamp
    return stats


def _raw_response(src: Source, model: str, content: str) -> Any:
    if src.flag(0.1):
        return {"mock": True}
    return (
        f"ModelResponse(id='chatcmpl-{src.hexdigits(24)}', created={src.integer(1735689600, 1767225600)}, "
        f"model='{model}', object='chat.completion', system_fingerprint=None, "
        f"choices=[Choices(finish_reason='stop', index=0, message=Message(content={content!r}, "
        f"role='assistant', tool_calls=None, function_call=None))], "
        f"usage=Usage(completion_tokens={src.integer(20, 900)}, prompt_tokens={src.integer(200, 9000)}))"
    )


def _reasoning(src: Source) -> Doc:
    kind = src.integer(0, 4)
    if kind == 0:
        return {}
    if kind == 1:
        return {"reasoning_content": src.sentence(5, 20)}
    if kind == 2:
        return {"thinking": src.sentence(5, 20)}
    if kind == 3:
        return {"thinking_blocks": [{"type": "thinking", "thinking": src.sentence(3, 10)}]}
    return {"token_counts": {"reasoning_tokens": src.integer(0, 4000)}}


def _queue(src: Source) -> list[Doc]:
    # Atlas's evaluator keeps the payloads of its reasoning queue, not the {origin, payload} wrappers
    return [_reasoning(src) or {"reasoning_content": src.sentence(2, 6)} for _ in range(src.integer(1, 2))]


def _tier1_messages(src: Source, task: str) -> list[Doc]:
    system = (
        "You are the reward model. Score the session between 0 and 1 and report your uncertainty.\n"
        f"Session metadata: {json.dumps({'task': task, 'source': 'atlas run'})}"
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Task: {task}\nFinal answer: {src.sentence(3, 12)}"},
    ]


def _sample_json(score: float, uncertainty: float, rationale: str, principle_list: list[Doc]) -> str:
    return json.dumps(
        {"score": score, "uncertainty": uncertainty, "rationale": rationale, "principles": principle_list}
    )


def _draw_sample(src: Source, lo: float, hi: float, centre: float | None) -> tuple[float, float]:
    score = src.key_real(lo, hi) if centre is None else min(hi, max(lo, centre + src.key_real(-0.1, 0.1)))
    uncertainty = src.pick((0.1, 0.2, 0.05, 0.3, 0.15)) if src.flag(0.5) else src.real(0.0, 0.6)
    return score, uncertainty


def build_reward(
    src: Source,
    *,
    task: str,
    moment: datetime,
    score_range: tuple[float, float] = (0.0, 1.0),
    execution_mode: str | None = None,
    teacher_intervened: bool = False,
    exact: tuple[float, float] | None = None,
    light: bool = False,
    level: float | None = None,
) -> RewardOutcome:
    """Draw one evaluation story. ``exact=(score, uncertainty)`` forces a single sample with those values;
    ``light=True`` leaves the prose out of the audit (for callers that keep only the statistics);
    ``level`` (a fraction of the score range) draws the samples near that point of it, not anywhere."""
    lo, hi = score_range
    if exact is None and lo == hi:
        exact = (lo, src.real(0.0, 0.6))
    # keep drawn scores a hair inside the range so that their mean cannot round outside it
    margin = (hi - lo) * 1e-9
    lo, hi = lo + margin, hi - margin
    model = model_name(src)
    audit: list[Doc] = []
    samples: list[tuple[float, float, str, list[Doc]]] = []
    if level is not None:
        centre: float | None = min(hi, max(lo, lo + level * (hi - lo) + src.key_real(-0.05, 0.05) * (hi - lo)))
    else:
        centre = None if src.key_flag(0.3) else src.key_real(lo, hi)
    for index, temperature in enumerate(TIER1_TEMPERATURES):
        entry: Doc = {
            "stage": "tier1",
            "model": model,
            "temperature": temperature,
            "messages": [] if light else _tier1_messages(src, task),
        }
        # 0 ok, 1 error, 2 unparseable; when 0.0 is outside the range the synthetic empty sample
        # (score 0.0) must not happen, so the first call always succeeds then
        # (an exact sample comes from the first call alone; the other two yield nothing)
        if exact is not None:
            outcome = 0 if index == 0 else src.pick((1, 2))
        elif index == 0 and score_range[0] > 0.0:
            outcome = 0
        else:
            outcome = src.key_pick((0, 0, 0, 0, 0, 0, 1, 2))
        if outcome == 1:
            entry["error"] = src.pick(
                (
                    "RateLimitError('rate limited')",
                    "APIConnectionError('Connection error.')",
                    "Timeout('Request timed out.')",
                    "AuthenticationError('Missing API key')",
                )
            )
            audit.append(entry)
            continue
        if outcome == 2:
            content = src.pick(("I think the answer is fine.", "{'score': 0.8}", "", "```json\n{\n```"))
        else:
            score, uncertainty = exact if exact is not None else _draw_sample(src, lo, hi, centre)
            rationale = "" if light else src.sentence(4, 16)
            principle_list = [] if light else principles(src, 0, 2)
            samples.append((score, uncertainty, rationale, principle_list))
            content = "" if light else _sample_json(score, uncertainty, rationale, principle_list)
        entry["response"] = content
        if light:
            audit.append(entry)
            continue
        entry["reasoning"] = _reasoning(src)
        entry["raw_response"] = _raw_response(src, model, content)
        if src.flag(0.15):
            entry["reasoning_queue"] = _queue(src)
        audit.append(entry)
    escalated = False
    if len(samples) >= 2:
        scores = [s[0] for s in samples]
        if pstdev(scores) > VARIANCE_THRESHOLD or max(s[1] for s in samples) > UNCERTAINTY_THRESHOLD:
            arbiter_model = model_name(src)
            prompt = f"Arbitrate between {len(samples)} tier-1 judgements for: {task}"
            entry = {"stage": "arbiter", "model": arbiter_model, "messages": [{"role": "user", "content": prompt}]}
            if src.flag(0.9):
                score, uncertainty = _draw_sample(src, lo, hi, fmean(scores))
                rationale = src.sentence(4, 16)
                principle_list = principles(src, 0, 2)
                content = _sample_json(score, uncertainty, rationale, principle_list)
                entry["response"] = content
                entry["reasoning"] = _reasoning(src)
                entry["raw_response"] = _raw_response(src, arbiter_model, content)
                samples = [(score, uncertainty, rationale, principle_list)]
                escalated = True
            else:
                entry["error"] = "exception_during_arbiter_call"
                if src.flag(0.3):
                    queue = _queue(src)
                    entry["reasoning"] = {"queue": queue}
                    entry["reasoning_queue"] = queue
            audit.append(entry)
    if not samples:
        samples = [(0.0, 1.0, EMPTY_SAMPLE_RATIONALE, [])]
    pairs = [(s[0], s[1]) for s in samples]
    stats = stats_from_samples(pairs, iso(moment))
    score = stats["score"]
    best = min(samples, key=lambda s: s[1])
    focus = src.maybe(0.2, lambda: src.sentence(3, 8))
    reward: Doc = {
        "score": score,
        "rationale": None,
        "judges": [
            {
                "identifier": "session_reward",
                "score": score,
                "rationale": best[2],
                "principles": best[3],
                "samples": [
                    {"score": s[0], "rationale": s[2], "principles": s[3], "uncertainty": s[1], "temperature": None}
                    for s in samples
                ],
                "escalated": escalated,
                "escalation_reason": "tier1_variance_or_uncertainty" if escalated else None,
            }
        ],
        "raw": {
            "score": score,
            "samples": [{"score": s[0], "uncertainty": s[1]} for s in samples],
            "execution_mode": execution_mode,
            "teacher_intervened": teacher_intervened,
            "focus_prompt": focus,
        },
    }
    return RewardOutcome(reward=reward, stats=stats, audit=audit, samples=tuple(pairs))


def placeholder_step_reward(reason: str, error: str | None = None) -> Doc:
    """The placeholder step reward of the current runtime (``deferred``, ``validation_failed``, ``runtime_error``)."""
    raw: Doc = {"error": error} if error is not None else {"skipped": True, "reason": reason}
    return {"score": 0.0, "rationale": reason, "judges": [], "raw": raw}
