"""Trajectory events: IntermediateStep envelopes.

A session's events are built as a tree walk: the orchestration workflow, triage, the optional
capability probe, the adaptive route, the optional plan creation (coach), then one TASK span per
step attempt with graph-bridge events inside, then the workflow end. Failed sessions stop early
and have no WORKFLOW_END; orphan callback LLM_START events are mixed in like the real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pytest_atlas.domain._common import Doc, epoch_seconds, model_name, uuid4
from pytest_atlas.domain._source import Source
from pytest_atlas.domain._vocabulary import EVENT_TYPES

__all__ = [
    "EVENT_TYPES",
    "AttemptSpan",
    "EventPlan",
    "build_events",
    "envelope",
    "minimum_events",
    "single_event",
]

_ROOT_ANCESTRY: Doc = {"function_id": "root", "function_name": "root", "parent_id": None, "parent_name": None}
_ACTORS = ("student", "teacher", "reward", "learning")
_LANGGRAPH_KEYS = ("langgraph_node", "langgraph_step", "langgraph_triggers", "checkpoint_ns", "ls_provider")


def envelope(
    *,
    parent_id: str,
    event_type: str,
    moment: float,
    name: str | None,
    uuid: str,
    metadata: Doc | None = None,
    data: Doc | None = None,
) -> Doc:
    """One IntermediateStep dump: exactly three top-level keys, exactly ten payload keys."""
    return {
        "parent_id": parent_id,
        "function_ancestry": dict(_ROOT_ANCESTRY),
        "payload": {
            "event_type": event_type,
            "event_timestamp": moment,
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


def _data(input_: Any = None, output: Any = None, chunk: Any = None) -> Doc:
    return {"input": input_, "output": output, "chunk": chunk}


@dataclass(frozen=True)
class AttemptSpan:
    """One step attempt as the events see it."""

    step_id: int
    attempt: int
    description: str
    guidance: tuple[str, ...]
    output: str
    status: str
    evaluation: Doc
    metadata: Doc | None


@dataclass
class EventPlan:
    """What the event walk needs to know about the session."""

    task: str
    mode: str
    probe: bool
    coach_plan: Doc | None
    attempts: list[AttemptSpan]
    final_answer: str | None
    failed: bool
    start: datetime
    end: datetime
    triage_summary: str = ""
    probe_mode: str | None = None
    probe_confidence: float | None = None
    route_reason: str = "no_learning_history"
    extra_per_attempt: list[int] = field(default_factory=list)


def minimum_events(*, attempts: int, probe: bool, coach: bool) -> int:
    """Events of a completed session with no graph-bridge extras."""
    return 6 + 2 * attempts + (2 if probe else 0) + (2 if coach else 0)


class _Walk:
    """Emits envelopes with increasing timestamps and a stack of open spans for parent ids."""

    def __init__(self, src: Source, start: datetime, end: datetime, count_hint: int) -> None:
        self.src = src
        self.events: list[Doc] = []
        self.stack: list[str] = []
        self.now = epoch_seconds(start)
        total = max((end - start).total_seconds(), 0.001)
        self.step = total / max(count_hint + 1, 2)

    def _tick(self) -> float:
        self.now += self.step * (0.5 + 0.5 * (len(self.events) % 3) / 2)
        return self.now

    def _emit(self, event_type: str, name: str | None, ident: str, metadata: Doc | None, data: Doc | None) -> None:
        """Append one event under the innermost open one (or the root)."""
        parent = self.stack[-1] if self.stack else "root"
        self.events.append(
            envelope(
                parent_id=parent,
                event_type=event_type,
                moment=self._tick(),
                name=name,
                uuid=ident,
                metadata=metadata,
                data=data,
            )
        )

    def start(
        self,
        event_type: str,
        name: str | None,
        *,
        metadata: Doc | None = None,
        data: Doc | None = None,
        uuid: str | None = None,
        push: bool = True,
    ) -> str:
        ident = uuid or uuid4(self.src)
        self._emit(event_type, name, ident, metadata, data)
        if push:
            self.stack.append(ident)
        return ident

    def end(
        self, event_type: str, name: str | None, ident: str, *, metadata: Doc | None = None, data: Doc | None = None
    ) -> None:
        if self.stack and self.stack[-1] == ident:
            self.stack.pop()
        self._emit(event_type, name, ident, metadata, data)

    def chunk(self, event_type: str, name: str | None, ident: str, *, metadata: Doc | None, data: Doc) -> None:
        self._emit(event_type, name, ident, metadata, data)


def _graph_metadata(src: Source, step_id: int, run_id: str, node_type: str) -> Doc:
    meta: Doc = {
        "actor": src.pick(_ACTORS) if src.flag(0.2) else "student",
        "step_id": step_id,
        "run_id": run_id,
        "node": src.pick(("agent", "tools", "LangGraph", "ChatOpenAI", "ChatAnthropic")),
        "node_type": node_type,
    }
    if src.flag(0.3):
        meta["tags"] = [src.pick(("graph:step:1", "seq:step:2", "langsmith:hidden"))]
    if src.flag(0.3):
        meta["langgraph"] = {
            key: (
                src.integer(1, 9)
                if key == "langgraph_step"
                else ["branch:to:agent"]  # LangGraph's triggers are a tuple of channel names: a JSON list
                if key == "langgraph_triggers"
                else src.words(1, 2)
            )
            for key in _LANGGRAPH_KEYS[: src.integer(1, len(_LANGGRAPH_KEYS))]
        }
    return meta


def _message(src: Source, kind: str) -> Doc:
    return {"type": kind, "content": src.sentence(2, 10), "additional_kwargs": {}}


def _fillers(walk: _Walk, src: Source, step_id: int, count: int) -> None:
    """Exactly ``count`` graph-bridge / callback events inside the current TASK span."""
    while count > 0:
        kind = src.integer(0, 3) if count >= 2 else 3
        if kind == 0 and count >= 2:  # LLM span with streamed tokens
            chunks = src.integer(0, min(count - 2, 6))
            run_id = uuid4(src)
            meta = _graph_metadata(src, step_id, run_id, "llm")
            walk.start(
                "LLM_START",
                meta["node"],
                metadata=meta,
                uuid=run_id,
                data=_data(input_={"messages": [_message(src, "human")]}),
            )
            accumulated = 0
            for _ in range(chunks):
                text = src.words(1, 3)
                accumulated += 1
                walk.chunk(
                    "LLM_NEW_TOKEN",
                    meta["node"],
                    run_id,
                    metadata=meta,
                    data=_data(chunk={"text": text, "token_counts": {"incremental": 1, "accumulated": accumulated}}),
                )
            end_meta = dict(meta)
            if src.flag(0.5):
                end_meta["token_counts"] = {"approx_total": accumulated, "chunks": chunks}
            if src.flag(0.3):
                prompt, completion = src.integer(10, 4000), src.integer(1, 800)
                end_meta["usage"] = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
            walk.end(
                "LLM_END",
                meta["node"],
                run_id,
                metadata=end_meta,
                data=_data(output={"type": "ai", "content": src.sentence(2, 12), "additional_kwargs": {}}),
            )
            count -= chunks + 2
        elif kind == 1 and count >= 2:  # tool call
            run_id = uuid4(src)
            meta = _graph_metadata(src, step_id, run_id, "tool")
            tool = src.pick(("search_logs", "http_get", "run_sql", "calculator"))
            walk.start("TOOL_START", tool, metadata=meta, uuid=run_id, data=_data(input_={"query": src.words(1, 4)}))
            walk.end("TOOL_END", tool, run_id, metadata=meta, data=_data(output=src.sentence(1, 8)))
            count -= 2
        elif kind == 2 and count >= 2:  # span
            run_id = uuid4(src)
            meta = _graph_metadata(src, step_id, run_id, src.pick(("span", "task")))
            walk.start("SPAN_START", "LangGraph", metadata=meta, uuid=run_id, data=_data(input_={"step": step_id}))
            walk.end("SPAN_END", "LangGraph", run_id, metadata=meta, data=_data(output={"status": "ok"}))
            count -= 2
        else:  # one event: an orphan callback LLM_START (never closed) or a loose span chunk
            run_id = uuid4(src)
            if src.flag(0.7):
                meta = {"actor": src.pick(_ACTORS)}
                if src.flag(0.5):
                    meta["parent_run_id"] = uuid4(src)
                walk.start(
                    "LLM_START",
                    src.pick(("chat_model", model_name(src))),
                    metadata=meta,
                    uuid=run_id,
                    data=_data(input_={"messages": [_message(src, "system"), _message(src, "human")]}),
                    push=False,
                )
            else:
                meta = _graph_metadata(src, step_id, run_id, "span")
                walk.chunk("SPAN_CHUNK", "LangGraph", run_id, metadata=meta, data=_data(chunk=src.words(1, 4)))
            count -= 1


def build_events(src: Source, plan: EventPlan, *, limit: int | None = None) -> list[Doc]:
    """The session's events in emission order; ``limit`` cuts a failed session's events short."""
    extras = sum(plan.extra_per_attempt)
    walk = _Walk(
        src,
        plan.start,
        plan.end,
        minimum_events(attempts=len(plan.attempts), probe=plan.probe, coach=plan.coach_plan is not None) + extras,
    )
    root = walk.start("WORKFLOW_START", "orchestration", data=_data(input_={"task": plan.task}))
    adapter = {"adapter": "atlas.utils.triage.default_build_dossier"}
    triage = walk.start("CUSTOM_START", "triage", data=_data(input_=adapter))
    walk.end(
        "CUSTOM_END",
        "triage",
        triage,
        data=_data(output={"summary": plan.triage_summary or plan.task, "risks": [], "tags": []}),
    )
    if plan.probe:
        probe = walk.start("CUSTOM_START", "capability_probe", data=_data(input_={"client": "LLMClient"}))
        if plan.probe_mode is None and plan.probe_confidence is None:
            output: Doc = {
                "mode": None,
                "confidence": None,
                "raw": {"disabled": True, "reason": "Missing API credentials"},
            }
        else:
            output = {"mode": plan.probe_mode, "confidence": plan.probe_confidence, "raw": {"mode": plan.probe_mode}}
        walk.end("CUSTOM_END", "capability_probe", probe, data=_data(output=output))
    route = walk.start("CUSTOM_START", "adaptive_route", data=_data(input_={"mode": plan.mode}))
    route_out: Doc = {"mode": plan.mode, "confidence": plan.probe_confidence, "reason": plan.route_reason}
    walk.end("CUSTOM_END", "adaptive_route", route, data=_data(output=route_out))
    if plan.coach_plan is not None:
        creation = walk.start("FUNCTION_START", "plan_creation", data=_data(input_={"task": plan.task}))
        walk.end("FUNCTION_END", "plan_creation", creation, data=_data(output=plan.coach_plan))
    for index, span in enumerate(plan.attempts):
        name = f"step_{span.step_id}"
        step_input = {
            "step": {
                "id": span.step_id,
                "description": span.description,
                "tool": None,
                "tool_params": None,
                "depends_on": [],
            },
            "context": {},
            "guidance": list(span.guidance),
            "attempt": span.attempt,
        }
        task_id = walk.start("TASK_START", name, data=_data(input_=step_input))
        extra = plan.extra_per_attempt[index] if index < len(plan.extra_per_attempt) else 0
        _fillers(walk, src, span.step_id, extra)
        last = index == len(plan.attempts) - 1
        if plan.failed and last:
            walk.end("TASK_END", name, task_id, data=_data(output={"error": "RuntimeError('student call failed')"}))
        else:
            walk.end(
                "TASK_END",
                name,
                task_id,
                data=_data(
                    output={
                        "trace": f"HUMAN: {span.description}\nAI: {span.output}",
                        "output": span.output,
                        "evaluation": span.evaluation,
                        "metadata": span.metadata,
                        "runtime": {"reward_skipped": True, "timings_ms": {"total_ms": round(walk.step * 1000, 3)}},
                        "status": span.status,
                        "artifacts": {},
                        "deliverable": span.output,
                    }
                ),
            )
    if not plan.failed:
        walk.end("WORKFLOW_END", "orchestration", root, data=_data(output=plan.final_answer or ""))
    events = walk.events
    if limit is not None:
        events = events[:limit]
    return events


def single_event(src: Source, start: datetime, *, event_types: Sequence[str] = EVENT_TYPES) -> Doc:
    """One envelope of any kind (for the standalone ``trajectory_events()`` strategy)."""
    event_type = src.pick(event_types)
    moment = epoch_seconds(start + timedelta(seconds=src.integer(0, 3600)))
    ident = uuid4(src)
    parent = "root" if src.flag(0.5) else uuid4(src)
    orchestrator = event_type.startswith(("WORKFLOW", "CUSTOM", "FUNCTION")) or (
        event_type.startswith("TASK") and src.flag(0.5)
    )
    if orchestrator:
        names = {
            "WORKFLOW": ("orchestration",),
            "CUSTOM": ("triage", "capability_probe", "adaptive_route"),
            "FUNCTION": ("plan_creation", "final_synthesis"),
            "TASK": (f"step_{src.integer(1, 5)}",),
        }[event_type.split("_")[0]]
        data: Doc | None = (
            _data(input_={"task": src.sentence(3, 8)})
            if event_type.endswith("START")
            else _data(output=src.sentence(1, 6))
        )
        return envelope(
            parent_id=parent,
            event_type=event_type,
            moment=moment,
            name=src.pick(names),
            uuid=ident,
            metadata=None,
            data=data,
        )
    node_type = {"LLM": "llm", "TOOL": "tool", "TASK": "task", "SPAN": "span"}[event_type.split("_")[0]]
    meta = _graph_metadata(src, src.integer(1, 5), ident, node_type)
    data = (
        _data(chunk={"text": src.words(1, 3)})
        if event_type.endswith(("TOKEN", "CHUNK"))
        else _data(input_={"messages": [_message(src, "human")]})
    )
    return envelope(
        parent_id=parent, event_type=event_type, moment=moment, name=meta["node"], uuid=ident, metadata=meta, data=data
    )
