"""Plans, step evaluations and step metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pytest_atlas.domain._common import Doc
from pytest_atlas.domain._rewards import placeholder_step_reward
from pytest_atlas.domain._source import Source

__all__ = [
    "SINGLE_SHOT_DESCRIPTION",
    "StepSketch",
    "build_plan",
    "build_step_metadata",
    "build_validation",
    "sketch_steps",
]

SINGLE_SHOT_DESCRIPTION = "Produce the complete answer for the task in a single response."
_TOOLS = ("search_logs", "http_get", "run_sql", "read_file", "calculator")


@dataclass(frozen=True)
class StepSketch:
    """A plan step and how its execution went: attempts, guidance between attempts, outcome."""

    step_id: int
    description: str
    tool: str | None
    tool_params: Doc | None
    depends_on: tuple[int | str, ...]
    attempts: int
    guidance: tuple[str, ...]
    runtime_error: bool = False


def _guidance(src: Source) -> str:
    return src.pick(
        ("Cite the failing log line.", "Answer the question that was asked.", "Include the rollback command.", "")
    ) or src.sentence(4, 14)


def sketch_steps(
    src: Source,
    *,
    count: int,
    stepwise: bool,
    mode: str,
    attempts: tuple[int, int],
    coach_lines: list[str] | None = None,
) -> list[StepSketch]:
    """The steps of a plan with their attempt counts (attempts ≥1; guidance notes = attempts - 1)."""
    steps: list[StepSketch] = []
    for index in range(count):
        step_id = index + 1
        if stepwise:
            description = src.sentence(3, 10)
            tool = src.pick(_TOOLS) if src.flag(0.4) else None
            params = {"query": src.words(1, 3), "limit": src.integer(1, 100)} if tool and src.flag(0.7) else None
            earlier = list(range(1, step_id))
            depends: tuple[int | str, ...] = tuple(
                (dep if src.flag(0.7) else str(dep)) for dep in earlier if src.flag(0.5)
            )
        else:
            description = SINGLE_SHOT_DESCRIPTION
            if coach_lines:
                numbered = "\n".join(f"{i}. {line}" for i, line in enumerate(coach_lines, start=1))
                description = f"{description}\nFollow this reviewed plan while responding:\n{numbered}"
            tool, params, depends = None, None, ()
        lo, hi = max(attempts[0], 1), max(attempts[1], 1)
        if mode == "auto":  # no validation, so no retries (unless more attempts were asked for)
            hi = lo
        # a parallel-step runtime error (stepwise plans only) leaves attempts at 0
        runtime_error = stepwise and attempts[0] == 0 and src.flag(0.1)
        count_attempts = 0 if runtime_error else src.key_integer(lo, hi)
        guidance = tuple(_guidance(src) for _ in range(max(count_attempts - 1, 0)))
        steps.append(StepSketch(step_id, description, tool, params, depends, count_attempts, guidance, runtime_error))
    return steps


def build_plan(steps: list[StepSketch], *, stepwise: bool) -> Doc:
    """``plans.plan``: ``{steps, execution_mode}`` with all five step keys present."""
    return {
        "steps": [
            {
                "id": step.step_id,
                "description": step.description,
                "tool": step.tool,
                "tool_params": step.tool_params,
                "depends_on": list(step.depends_on),
            }
            for step in steps
        ],
        "execution_mode": "stepwise" if stepwise else "single_shot",
    }


#: a tool of the agent's config as the teacher's request lists it
_TOOL: Doc = {
    "name": "search_logs",
    "description": "Search the service logs",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}


def _validation_request(src: Source, step: StepSketch, output: str, attempt: int, guidance: list[str]) -> Doc:
    digest = src.hexdigits(64)
    request: Doc = {
        "step": {"id": step.step_id, "description": step.description},
        "trace": {"hash": src.hexdigits(64), "preview": src.maybe(0.9, lambda: f"HUMAN: {step.description[:40]}")},
        # the agent's own status and reason (null for a plain-text answer)
        "status": src.pick(("completed", "ok", None)),
        "student_response": output,
        "reason": src.maybe(0.2, lambda: src.sentence(2, 8)),
        "structured_output": {
            "hash": digest,
            "keys": ["deliverable", "artifacts"],
            "content": {"deliverable": output},
            "preview": output[:120],
        },
        "deliverable": None if src.flag(0.3) else {"hash": src.hexdigits(64), "content": output},
        # Atlas's student always reports artifacts (possibly {}): a blob reference with the keys
        "artifacts": None if src.flag(0.1) else {"hash": src.hexdigits(64), "content": {}, "keys": [], "preview": "{}"},
        "prior_results": {"hash": src.hexdigits(64), "changed": attempt > 1, "content": {}, "preview": "{}"},
        "prior_guidance": guidance[: attempt - 1],
        "attempt_guidance": guidance[: attempt - 1],
        "available_tools": [] if src.flag(0.7) else [_TOOL],
    }
    if step.tool:
        request["step"]["tool"] = step.tool
        request["step"]["tool_params"] = step.tool_params
    if src.flag(0.2):
        request["teacher_playbook"] = src.sentence(4, 12)
        request["teacher_playbook_hash"] = src.hexdigits(16)
    return request


def build_validation(
    src: Source, step: StepSketch, *, mode: str, attempt: int, output: str, cached: bool = False
) -> Doc:
    """The ``validation`` half of a step evaluation for one attempt (final attempts are valid)."""
    final = attempt >= step.attempts
    if mode == "auto" or (final and src.flag(0.5)):
        return {"valid": True, "guidance": None}
    valid = final
    guidance_list = list(step.guidance)
    validation: Doc = {
        "valid": valid,
        "guidance": None if valid else (guidance_list[attempt - 1] if attempt - 1 < len(guidance_list) else None),
        "status": src.pick(("completed", "passed", None)),
        "artifacts": {},
        "cached": cached,
        "validation_request": _validation_request(src, step, output, attempt, guidance_list),
    }
    if src.flag(0.3):
        validation["reasoning"] = {"reasoning_content": src.sentence(3, 10)}
    if src.flag(0.3):
        validation["text"] = src.sentence(2, 8)
    if src.flag(0.2):
        validation["reason"] = src.sentence(2, 8)
    if src.flag(0.2):
        validation["deliverable"] = output
    return validation


def evaluation_for(src: Source, step: StepSketch, *, mode: str, attempt: int, output: str) -> Doc:
    """``{validation, reward}`` for one attempt; the reward is always a placeholder."""
    if step.runtime_error:
        error = "RuntimeError('parallel step failed')"
        return {
            "validation": {"valid": False, "error": error},
            "reward": placeholder_step_reward("runtime_error", error),
        }
    validation = build_validation(src, step, mode=mode, attempt=attempt, output=output)
    reason = "deferred" if validation.get("valid") else "validation_failed"
    return {"validation": validation, "reward": placeholder_step_reward(reason)}


def _reasoning_item(src: Source) -> Doc:
    if src.flag(0.5):
        payload_key = src.pick(("reasoning_content", "reasoning", "thinking", "chain_of_thought"))
        return {"message_index": src.integer(0, 6), "role": "ai", "payload": {payload_key: src.sentence(3, 12)}}
    kind = src.integer(0, 2)
    if kind == 0:
        chunks = [src.words(1, 3) for _ in range(src.integer(1, 4))]
        payload: Doc = {
            "chunks": chunks,
            "token_counts": {"approx_total": len(chunks), "chunks": len(chunks)},
            "text": " ".join(chunks),
        }
    elif kind == 1:
        # values nested deeper than six levels are stored as Python repr strings
        payload = {
            "stream_snapshot": {
                "agent": {
                    "messages": [
                        "{'type': 'system', 'content': 'You are the student.'}",
                        "{'type': 'ai', 'content': " + repr(src.words(1, 4)) + "}",
                    ]
                }
            },
            "output_text": src.sentence(2, 8),
        }
    else:
        payload = {"content": src.sentence(2, 8)}
    return {"origin": "student", "payload": payload}


def step_output(src: Source) -> str:
    """``step_results.output``: raw agent text or the JSON of the normalised structured output."""
    text = src.sentence(2, 16)
    if src.flag(0.3):
        return json.dumps({"deliverable": text, "artifacts": {}})
    return text


def build_step_metadata(src: Source, *, output: str, empty_allowed: bool = True) -> Doc | None:
    """Open step metadata; ``None`` when empty (Atlas writes NULL for ``{}``)."""
    if empty_allowed and src.flag(0.1):
        return None
    student_ms = round(src.real(50.0, 60000.0), 3)
    validation_ms = round(src.real(0.0, 20000.0), 3)
    timings: Doc = {"student_ms": student_ms, "validation_ms": validation_ms}
    total = student_ms + validation_ms
    if src.flag(0.3):
        guidance_ms = round(src.real(0.0, 5000.0), 3)
        timings["guidance_ms"] = guidance_ms
        total += guidance_ms
    timings["total_ms"] = round(total, 3)
    artifacts: Doc = {} if src.flag(0.6) else {"files": [src.words(1, 1) + ".txt"], "count": src.integer(0, 9)}
    # an agent's result may say deliverable: null
    deliverable: str | None = output if src.flag(0.9) else None
    metadata: Doc = {
        "reasoning": [_reasoning_item(src) for _ in range(src.integer(0, 3))],
        "artifacts": artifacts,
        "deliverable": deliverable,
        "result": {"deliverable": deliverable, "artifacts": artifacts},
        "structured_output": {
            "deliverable": deliverable,
            "artifacts": artifacts,
            "result": {"deliverable": deliverable},
            "text": output,
        },
        "runtime": {"reward_skipped": True, "timings_ms": timings},
    }
    if src.flag(0.4):
        prompt, completion = src.integer(10, 9000), src.integer(1, 2000)
        metadata["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if src.flag(0.3):  # litellm's Usage dumped whole
            metadata["usage"].update(completion_tokens_details=None, prompt_tokens_details=None)
    if src.flag(0.2):
        metadata["reason"] = src.sentence(2, 8)
        metadata["structured_output"]["reason"] = metadata["reason"]
    if src.flag(0.3):
        metadata["text"] = output
    if src.flag(0.2):
        metadata["status"] = src.pick(("ok", "completed", "needs_review"))
        metadata["structured_output"]["status"] = metadata["status"]
    return metadata
