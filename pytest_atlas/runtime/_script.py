"""Scripted LLM responses: what each Atlas role answers during a run, and the defaults.

A role's script is a response (a string, a JSON-able mapping, a :class:`Reply`, a
:class:`ProviderError`), a list of responses (one per call, in call order), a function of the
:class:`LLMCall`, or ``None`` (the role must not be called).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_atlas.domain import EXECUTION_MODES
from pytest_atlas.errors import ScriptError
from pytest_atlas.runtime._atlas import Caller, ScriptedReply

__all__ = [
    "MODES",
    "ROLES",
    "LLMCall",
    "ProviderError",
    "Reply",
    "Responder",
    "RunPlan",
    "Script",
    "default_scripts",
]

#: the roles whose LLM calls a run scripts (``agent``: an agent that is itself an LLM adapter)
ROLES: tuple[str, ...] = ("router", "judge", "arbiter", "teacher", "synthesizer", "agent")
#: the modes a script can make Atlas run in (the current runtime's execution modes)
MODES: tuple[str, ...] = EXECUTION_MODES
#: the router's confidence for each mode (inside Atlas's default thresholds 0.85 / 0.65 / 0.35)
_CONFIDENCE = {"auto": 0.9, "paired": 0.7, "coach": 0.45}


@dataclass(frozen=True)
class LLMCall:
    """One LLM call Atlas made during a run: who made it, what for, and what it sent.

    ``role`` is one of :data:`ROLES` (or ``"unknown"``); ``purpose`` says what for (``route``,
    ``sample``, ``escalation``, ``plan_review``, ``validation``, ``synthesis``, ``answer``);
    ``index`` counts the role's calls in this run from 0; ``temperature`` is what Atlas asked for
    (the judges sample at 0.2, 0.5 and 0.8).
    """

    role: str
    purpose: str
    index: int
    model: str
    messages: tuple[Mapping[str, Any], ...]
    temperature: float | None
    task: str

    @property
    def prompt(self) -> str:
        """The text of the last message (what the role was asked)."""
        return str(self.messages[-1].get("content", "")) if self.messages else ""

    @property
    def payload(self) -> Any:
        """The last message decoded as JSON when it starts with a JSON document (the router, the
        teacher and the synthesizer send JSON), else ``None``."""
        text = self.prompt.lstrip()
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return None
        return value


@dataclass(frozen=True)
class Reply:
    """A response with more than content. ``content`` is sent as is when it is a string, as JSON
    otherwise. ``reasoning`` is the provider's reasoning: a string (``reasoning_content``) or the
    message fields themselves (``{"thinking": ...}``, ``{"thinking_blocks": [...]}``); ``usage`` the
    token usage (non-negative ints; ``completion_tokens_details`` may carry ``reasoning_tokens``);
    ``tool_calls`` the tool calls of an LLM agent's answer."""

    content: Any
    reasoning: str | Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    tool_calls: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class ProviderError:
    """A response that fails the way a provider call fails (the client raises ``message``): what
    Atlas does then is what it does in production (judges record an error, the probe falls back)."""

    message: str = "scripted provider error"


class ScriptedProviderError(RuntimeError):
    """The exception a :class:`ProviderError` response raises inside Atlas."""


#: what a role answers: a response, a list of responses (one per call), a function of the call, or None
Script = str | Mapping[str, Any] | Reply | ProviderError | Sequence[Any] | Callable[[LLMCall], Any] | None


@dataclass(frozen=True)
class RunPlan:
    """What a run was asked for; the default scripts answer accordingly."""

    task: str
    score: float
    uncertainty: float
    escalate: bool
    mode: str | None
    guidance: str | None
    learn: bool


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


_PRINCIPLES = [
    {"name": "task_fit", "weight": 0.6, "description": "The answer does what the task asks."},
    {"name": "clarity", "weight": 0.4, "description": "The answer is clear and complete."},
]


def _sample(score: float, uncertainty: float, who: str) -> dict[str, Any]:
    return {
        "score": score,
        "uncertainty": uncertainty,
        "rationale": f"Scripted {who}: the answer is scored {score:.2f}.",
        "principles": _PRINCIPLES,
    }


def _judge(plan: RunPlan) -> Callable[[LLMCall], Any]:
    def judge(call: LLMCall) -> Any:
        position = {0.2: 0, 0.5: 1, 0.8: 2}.get(call.temperature or 0.0, call.index % 3)
        if plan.escalate:  # the judges disagree and are unsure: Atlas asks the arbiter
            score = _clip(plan.score + (position - 1) * 0.25)
            return _sample(score, 0.55 + 0.05 * position, "judge")
        return _sample(plan.score, plan.uncertainty, "judge")

    return judge


def _teacher(plan: RunPlan) -> Callable[[LLMCall], Any]:
    def teacher(call: LLMCall) -> Any:
        payload = call.payload if isinstance(call.payload, dict) else {}
        if call.purpose == "plan_review":  # approve the student's plan as it is
            steps = (payload.get("plan") or {}).get("steps") or [{"id": 1, "description": call.task, "depends_on": []}]
            return {"steps": steps}
        rejected_before = any(guidance for guidance in payload.get("attempt_guidance") or [])
        if plan.guidance and not rejected_before:
            return {"valid": False, "guidance": plan.guidance}
        return {"valid": True, "guidance": None}

    return teacher


_WORD = re.compile(r"[A-Za-z]{4,}")


def _synthesis(plan: RunPlan) -> dict[str, Any]:
    if not plan.learn:
        return {
            "version": "playbook_entry.v1",
            "student_pamphlet": None,
            "teacher_pamphlet": None,
            "playbook_entries": [],
            "session_student_learning": None,
            "session_teacher_learning": None,
            "metadata": None,
        }
    word = _WORD.search(plan.task)
    cue = word.group(0).lower() if word else "answer"
    return {
        "version": "playbook_entry.v1",
        "student_pamphlet": "Lead with the outcome, then give the evidence for it.",
        "teacher_pamphlet": "Ask for the outcome first when an answer buries it.",
        "playbook_entries": [
            {
                "id": None,
                "audience": "student",
                "cue": {"type": "keyword", "pattern": cue, "description": f"The task mentions {cue!r}."},
                "action": {
                    "imperative": "State the outcome in the first sentence",
                    "runtime_handle": None,
                    "tool_name": None,
                    "arguments": {},
                },
                "expected_effect": "Readers see the result before the details.",
                "scope": {
                    "category": "reinforcement",
                    "constraints": "Written answers only.",
                    "applies_when": "The task asks for a written answer.",
                },
                "metadata": {},
            }
        ],
        "session_student_learning": "The answer led with the outcome.",
        "session_teacher_learning": None,
        "metadata": {"synthesis_reasoning": "Scripted synthesis."},
    }


def default_scripts(plan: RunPlan) -> dict[str, Script]:
    """The scripts a run uses for the roles it was given none for (``agent`` has none: an LLM agent
    must be scripted)."""
    mode = plan.mode or "paired"
    return {
        "router": {"mode": mode, "confidence": _CONFIDENCE[mode]},
        "judge": _judge(plan),
        "arbiter": _sample(plan.score, plan.uncertainty, "arbiter"),
        "teacher": _teacher(plan),
        "synthesizer": _synthesis(plan),
    }


def _hint(role: str) -> str:
    return (
        f"script it: run(..., responses={{{role!r}: ...}}) or AtlasRuntime(..., responses=...) with a "
        "response, a list of responses (one per call) or a function of the LLMCall"
    )


@dataclass
class Responder:
    """Answers the LLM calls of one run from its scripts; records every call and every problem
    (Atlas swallows some exceptions, so problems are raised again after the run)."""

    scripts: Mapping[str, Script]
    task: str
    calls: list[LLMCall] = field(default_factory=list)
    problems: list[ScriptError] = field(default_factory=list)

    def respond(self, caller: Caller, request: Mapping[str, Any]) -> ScriptedReply:
        index = sum(1 for call in self.calls if call.role == caller.role)
        temperature = request.get("temperature")
        call = LLMCall(
            role=caller.role,
            purpose=caller.purpose,
            index=index,
            model=str(request.get("model") or ""),
            messages=tuple(dict(m) for m in request.get("messages") or ()),
            temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
            task=self.task,
        )
        self.calls.append(call)
        try:
            return self._reply(call, caller)
        except ScriptError as problem:
            self.problems.append(problem)
            raise

    def _reply(self, call: LLMCall, caller: Caller) -> ScriptedReply:
        role = call.role
        if role == "unknown":
            raise ScriptError(
                role,
                f"an LLM call from {caller.where} (model {call.model!r}) is not one of Atlas's roles that "
                "pytest-atlas scripts; it was not sent anywhere",
                hint="this Atlas version calls an LLM from a place the runtime does not know; "
                "use the supported arc-atlas version",
            )
        if role not in self.scripts or self.scripts[role] is None:
            raise ScriptError(
                role,
                f"Atlas's {role} made an LLM call ({call.purpose}, model {call.model!r}) and no response is "
                "scripted for it; pytest-atlas never sends a call to a provider",
                hint=_hint(role),
            )
        script = self.scripts[role]
        if isinstance(script, Sequence) and not isinstance(script, str):
            if call.index >= len(script):
                raise ScriptError(
                    role,
                    f"Atlas's {role} made call {call.index + 1} ({call.purpose}); its script has only "
                    f"{len(script)} response{'' if len(script) == 1 else 's'}",
                    hint=_hint(role),
                )
            script = script[call.index]
        value: Any = script
        if callable(value):
            try:
                value = value(call)
            except Exception as exc:
                raise ScriptError(
                    role, f"the script for Atlas's {role} raised {exc!r} on call {call.index + 1}", hint=_hint(role)
                ) from exc
        return _scripted(role, value)


def _scripted(role: str, value: Any) -> ScriptedReply:
    if isinstance(value, ProviderError):
        raise ScriptedProviderError(value.message)
    reply = value if isinstance(value, Reply) else Reply(value)
    content = reply.content
    if not isinstance(content, str):
        try:
            content = json.dumps(content, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ScriptError(
                role,
                f"the response scripted for Atlas's {role} is not JSON ({exc}): {reply.content!r:.200}",
                hint="script a string, or a mapping / list of JSON values (finite numbers)",
            ) from None
    for name, number in (reply.usage or {}).items():
        values = number.values() if str(name).endswith("_details") and isinstance(number, Mapping) else [number]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ScriptError(
                role,
                f"Reply.usage must hold non-negative ints (and *_details mappings of them), got {reply.usage!r}",
                hint=_hint(role),
            )
    reasoning = reply.reasoning
    fields: dict[str, Any] = {}
    if isinstance(reasoning, str):
        fields = {"reasoning_content": reasoning}
    elif isinstance(reasoning, Mapping):
        fields = dict(reasoning)
    elif reasoning is not None:
        raise ScriptError(role, f"Reply.reasoning must be a string or a mapping, got {reasoning!r}", hint=_hint(role))
    return ScriptedReply(content=content, reasoning=fields, usage=reply.usage, tool_calls=tuple(reply.tool_calls))
