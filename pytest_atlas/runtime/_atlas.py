"""Everything the runtime touches inside arc-atlas (and litellm), in one module.

What it reaches into, and why (arc-atlas 0.1.16):

* ``litellm.acompletion`` / ``litellm.completion``, and the copy of ``acompletion`` that
  ``atlas.connectors.litellm`` imported: replaced, while a scripted run is active, by a transport
  that answers from the run's scripts. Every LLM role of Atlas reaches a provider through these
  (``atlas.utils.llm_client.LLMClient`` for the router, judges, arbiter, teacher and synthesizer;
  the litellm adapter for an LLM agent), so Atlas's own client code runs unchanged: request
  building, content and reasoning extraction, usage. A call made outside a scripted run goes to
  the original function.
* The code objects of the functions that call the client, to name the role of a call:
  ``CapabilityProbeClient.arun`` (router), ``Evaluator._sample_session`` (judge),
  ``Evaluator._escalate_session`` (arbiter), ``Teacher._review_plan_llm`` and
  ``Teacher.avalidate_step`` (teacher), ``LearningSynthesizer.asynthesize`` (synthesizer),
  ``LitellmAdapter.ainvoke`` (agent).
* ``ExecutionContext.get().metadata["execution_mode"]`` after a run: the mode Atlas chose.
* ``atlas.core._build_learning_key``: the learning key Atlas will use for a task, so that the
  caller knows before a run whether Atlas will consult the router.
* ``atlas.runtime.telemetry.langchain_callback._HANDLER`` / ``_HANDLER_VAR``: Atlas sets its
  LangChain callback in the context of the first run of a process only; every scripted run gets
  it, so a run writes the same events whether it is the first one or not.
* ``litellm.ModelResponse``: built once at import with pydantic's ReadOnly-item warnings silenced.
* Environment variables, set or cleared for the duration of a run (and restored): litellm's
  offline switches (no model-cost-map download), LangSmith tracing off, Atlas's offline mock mode
  off (it would bypass the scripts) and Atlas's behaviour overrides (``ATLAS_DRIFT_*``,
  ``ATLAS_REVIEW_*``, ``ATLAS_LEARNING_HISTORY_LIMIT``) cleared, so that only the configuration
  decides what a run writes; the API-key variable of every role points at a placeholder that is
  not a key.

Public Atlas API used as is: ``atlas.core.arun`` (with a publisher, to learn the session id),
``atlas.config.loader.load_config`` / ``parse_config``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.metadata
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any, Protocol

from pytest_atlas._dsn import Dsn, scrub
from pytest_atlas.errors import AtlasRuntimeError

__all__ = [
    "PLACEHOLDER_KEY_ENV",
    "SUPPORTED_VERSIONS",
    "Caller",
    "Outcome",
    "Responder",
    "ScriptedReply",
    "atlas_version",
    "execute",
    "learning_key_for",
    "load_user_config",
    "validate_config",
]

#: the arc-atlas versions whose internals this module was written against
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.1.16",)

#: the variable every role's ``api_key_env`` names during a run; its value is not a key
PLACEHOLDER_KEY_ENV = "PYTEST_ATLAS_SCRIPTED_LLM_KEY"
_PLACEHOLDER_KEY = "pytest-atlas-scripted-llm-no-network"

_OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
_RUN_ENV = {
    **_OFFLINE_ENV,
    PLACEHOLDER_KEY_ENV: _PLACEHOLDER_KEY,
    "LANGCHAIN_TRACING_V2": "false",
    "LANGCHAIN_TRACING": "false",
    "LANGSMITH_TRACING": "false",
    "LANGSMITH_TRACING_V2": "false",
}
_CLEARED_ENV = (
    "ATLAS_OFFLINE_MODE",
    "ATLAS_FAKE_LLM",
    "ATLAS_REVIEW_REQUIRE_APPROVAL",
    "ATLAS_REVIEW_DEFAULT_EXPORT_STATUSES",
    "ATLAS_DRIFT_ENABLED",
    "ATLAS_DRIFT_WINDOW",
    "ATLAS_DRIFT_Z_THRESHOLD",
    "ATLAS_DRIFT_MIN_BASELINE",
    "ATLAS_LEARNING_HISTORY_LIMIT",
)
_INSTALL_HINT = 'pip install "pytest-atlas[atlas]" (arc-atlas==0.1.16 and asyncpg)'


def atlas_version() -> str:
    """The installed arc-atlas version, checked: raises :class:`AtlasRuntimeError` when arc-atlas or
    asyncpg is missing or the version is not one this module supports."""
    try:
        version = importlib.metadata.version("arc-atlas")
    except importlib.metadata.PackageNotFoundError:
        raise AtlasRuntimeError(
            "the Atlas runtime needs arc-atlas, which is not installed", hint=_INSTALL_HINT
        ) from None
    if version not in SUPPORTED_VERSIONS:
        raise AtlasRuntimeError(
            f"arc-atlas {version} is installed; pytest-atlas's runtime was built for arc-atlas "
            f"{', '.join(SUPPORTED_VERSIONS)} (it scripts Atlas's LLM calls by where Atlas makes them)",
            hint=f"{_INSTALL_HINT}, or use the strategies and factories, which need no Atlas",
        )
    if importlib.util.find_spec("asyncpg") is None:
        raise AtlasRuntimeError("Atlas's storage layer needs asyncpg, which is not installed", hint=_INSTALL_HINT)
    return version


# --------------------------------------------------------------------------------------------------
# importing Atlas (offline)
# --------------------------------------------------------------------------------------------------


def _set_environment(values: Mapping[str, str], cleared: tuple[str, ...] = ()) -> dict[str, str | None]:
    saved = {name: os.environ.get(name) for name in (*values, *cleared)}
    os.environ.update(values)
    for name in cleared:
        os.environ.pop(name, None)
    return saved


def _restore_environment(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = _set_environment(values)
    try:
        yield
    finally:
        _restore_environment(saved)


@dataclass(frozen=True)
class _Atlas:
    arun: Callable[..., Any]
    load_config: Callable[[str], Any]
    parse_config: Callable[[Mapping[str, Any]], Any]
    build_learning_key: Callable[[str, Any, dict[str, Any]], str]
    litellm: Any
    litellm_connector: Any
    callback_module: Any
    execution_context: Any
    callers: Mapping[CodeType, tuple[str, str]]


@functools.cache
def _atlas() -> _Atlas:
    atlas_version()
    # litellm downloads its model cost map on import unless told not to
    with _environment(_OFFLINE_ENV):
        import atlas.core
        import atlas.runtime.telemetry.langchain_callback as callback_module
        import litellm
        from atlas.config.loader import load_config, parse_config
        from atlas.connectors import litellm as litellm_connector
        from atlas.evaluation.evaluator import Evaluator
        from atlas.learning.synthesizer import LearningSynthesizer
        from atlas.personas.teacher import Teacher
        from atlas.runtime.adaptive.probe import CapabilityProbeClient
        from atlas.runtime.orchestration.execution_context import ExecutionContext
    callers = {
        CapabilityProbeClient.arun.__code__: ("router", "route"),
        Evaluator._sample_session.__code__: ("judge", "sample"),
        Evaluator._escalate_session.__code__: ("arbiter", "escalation"),
        Teacher._review_plan_llm.__code__: ("teacher", "plan_review"),
        Teacher.avalidate_step.__code__: ("teacher", "validation"),
        LearningSynthesizer.asynthesize.__code__: ("synthesizer", "synthesis"),
        litellm_connector.LitellmAdapter.ainvoke.__code__: ("agent", "answer"),
    }
    with warnings.catch_warnings():
        # litellm's response models build their pydantic schemas on first use and warn about
        # ReadOnly TypedDict items; build them here, quietly, rather than in a user's first run
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydantic\..*")
        litellm.ModelResponse(id="warm-up", created=0, model="", choices=[{"message": {"content": ""}}])
    return _Atlas(
        arun=atlas.core.arun,
        load_config=load_config,
        parse_config=parse_config,
        build_learning_key=atlas.core._build_learning_key,
        litellm=litellm,
        litellm_connector=litellm_connector,
        callback_module=callback_module,
        execution_context=ExecutionContext,
        callers=callers,
    )


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------


def load_user_config(path: str) -> dict[str, Any]:
    """An Atlas YAML config file as Atlas reads it (validated by Atlas), keys the file sets only."""
    try:
        config = _atlas().load_config(path)
    except Exception as exc:  # Atlas's ConfigLoadError, with its own message
        raise AtlasRuntimeError(
            f"Atlas could not load the config {path}: {exc}", hint="fix the file (Atlas's own loader read it)"
        ) from None
    dumped: dict[str, Any] = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dumped


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as Atlas reads it: ``storage.database_url`` the full connection string. Call it
    where it is handed over, never keep the result in a variable (a frame shown by --showlocals
    would show the password)."""
    storage = config.get("storage")
    if not isinstance(storage, Mapping) or not isinstance(storage.get("database_url"), Dsn):
        return dict(config)
    return {**config, "storage": {**storage, "database_url": storage["database_url"].reveal()}}


def validate_config(config: Mapping[str, Any]) -> Any:
    """Atlas's ``AtlasConfig`` for ``config``, or :class:`AtlasRuntimeError` with Atlas's message.
    Atlas reads the connection string redacted here (its ``database_url`` is any string): the
    parsed configuration, kept for the learning key, holds no password."""
    storage = config.get("storage")
    if isinstance(storage, Mapping) and isinstance(storage.get("database_url"), Dsn):
        config = {**config, "storage": {**storage, "database_url": storage["database_url"].redacted}}
    try:
        return _atlas().parse_config(dict(config))
    except Exception as exc:
        # Atlas's (pydantic's) message quotes the values it refuses: a secret may be one of them
        detail = scrub(" ".join(str(exc).split()))
        raise AtlasRuntimeError(
            f"Atlas rejects the run's configuration: {detail[:600]}",
            hint="check the config= you gave (it is merged over pytest-atlas's defaults)",
        ) from None


def learning_key_for(task: str, config: Any, session_metadata: Mapping[str, Any]) -> str:
    """The learning key Atlas derives for ``task`` (its own function, on a copy of the metadata)."""
    return _atlas().build_learning_key(task, config, dict(session_metadata))


# --------------------------------------------------------------------------------------------------
# the scripted transport
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who made an LLM call: the Atlas role and what for, or ``unknown`` and where it came from."""

    role: str
    purpose: str
    where: str


@dataclass(frozen=True)
class ScriptedReply:
    """What the transport turns into a provider response."""

    content: str
    reasoning: Mapping[str, Any] | None = None  # message fields: reasoning_content, thinking, ...
    usage: Mapping[str, Any] | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()


class Responder(Protocol):
    """The per-run object that answers calls (see ``_script.Responder``)."""

    def respond(self, caller: Caller, request: Mapping[str, Any]) -> ScriptedReply: ...


_RESPONDER: contextvars.ContextVar[Responder | None] = contextvars.ContextVar("pytest_atlas_responder", default=None)
_ORIGINALS: dict[str, Any] = {}
_ACTIVE = 0
_LOCK = threading.Lock()


def _name(code: CodeType) -> str:
    return str(getattr(code, "co_qualname", code.co_name))  # co_qualname: Python 3.11+


def _caller(frame: FrameType | None) -> Caller:
    callers = _atlas().callers
    where = "?"
    depth = 0
    while frame is not None and depth < 12:
        code = frame.f_code
        found = callers.get(code)
        if found is not None:
            return Caller(found[0], found[1], _name(code))
        module = frame.f_globals.get("__name__", "")
        if where == "?" and not module.startswith(("litellm", "atlas.utils.llm_client", __name__)):
            where = f"{module}.{_name(code)}"
        frame = frame.f_back
        depth += 1
    return Caller("unknown", "unknown", where)


def _response(reply: ScriptedReply, request: Mapping[str, Any], ident: str) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    message.update(reply.reasoning or {})
    if reply.tool_calls:
        message["tool_calls"] = [dict(call) for call in reply.tool_calls]
    usage = dict(reply.usage) if reply.usage else {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return _atlas().litellm.ModelResponse(
        id=ident,
        created=1735689600,  # fixed: the same rows on every run
        model=str(request.get("model") or ""),
        choices=[{"index": 0, "finish_reason": "stop", "message": message}],
        usage=usage,
    )


_COUNTER = contextvars.ContextVar("pytest_atlas_reply_counter", default=0)


def _answer(responder: Responder, frame: FrameType | None, request: Mapping[str, Any]) -> Any:
    caller = _caller(frame)
    reply = responder.respond(caller, request)
    number = _COUNTER.get()
    _COUNTER.set(number + 1)
    return _response(reply, request, f"scripted-{caller.role}-{number}")


async def _acompletion(*args: Any, **kwargs: Any) -> Any:
    responder = _RESPONDER.get()
    if responder is None:
        return await _ORIGINALS["acompletion"](*args, **kwargs)
    return _answer(responder, sys._getframe(1), kwargs)


def _completion(*args: Any, **kwargs: Any) -> Any:
    responder = _RESPONDER.get()
    if responder is None:
        return _ORIGINALS["completion"](*args, **kwargs)
    return _answer(responder, sys._getframe(1), kwargs)


@contextmanager
def _transport() -> Iterator[None]:
    """The scripted transport in place (reference-counted: overlapping runs share it)."""
    global _ACTIVE
    atlas = _atlas()
    with _LOCK:
        if _ACTIVE == 0:
            _ORIGINALS["environment"] = _set_environment(_RUN_ENV, _CLEARED_ENV)
            _ORIGINALS["acompletion"] = atlas.litellm.acompletion
            _ORIGINALS["completion"] = atlas.litellm.completion
            _ORIGINALS["connector"] = atlas.litellm_connector.acompletion
            _ORIGINALS["suppress_debug_info"] = atlas.litellm.suppress_debug_info
            atlas.litellm.acompletion = _acompletion
            atlas.litellm.completion = _completion
            atlas.litellm_connector.acompletion = _acompletion
            atlas.litellm.suppress_debug_info = True  # no "Provider List" banner for made-up model names
        _ACTIVE += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0:
                atlas.litellm.acompletion = _ORIGINALS["acompletion"]
                atlas.litellm.completion = _ORIGINALS["completion"]
                atlas.litellm_connector.acompletion = _ORIGINALS["connector"]
                atlas.litellm.suppress_debug_info = _ORIGINALS["suppress_debug_info"]
                _restore_environment(_ORIGINALS["environment"])


# --------------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What ``arun`` did: the session it created (if any), its result or the exception it raised."""

    session_id: int | None
    final_answer: str | None
    error: BaseException | None
    execution_mode: str | None


class _Publisher:
    """Atlas's publisher protocol; the only thing wanted from it is the new session's id."""

    def __init__(self) -> None:
        self.session_id: int | None = None

    def attach(self, step_manager: Any) -> None:
        pass

    def detach(self) -> None:
        pass

    def publish_control_event(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type == "session-started" and isinstance(data.get("session_id"), int):
            self.session_id = data["session_id"]


def _execution_mode(atlas: _Atlas) -> str | None:
    mode = atlas.execution_context.get().metadata.get("execution_mode")
    return mode if isinstance(mode, str) else None


async def execute(
    task: str,
    config_path: str,
    session_metadata: dict[str, Any],
    responder: Responder,
    context: Mapping[contextvars.ContextVar[Any], Any],
) -> Outcome:
    """Run ``atlas.core.arun`` once, scripted, in a task of its own (Atlas keeps its state in context
    variables: nothing of it leaks into the caller's context). Never raises what Atlas raises."""
    atlas = _atlas()

    async def inside() -> Outcome:
        _RESPONDER.set(responder)
        _COUNTER.set(0)
        for variable, value in context.items():
            variable.set(value)
        atlas.callback_module.configure_langchain_callbacks()
        atlas.callback_module._HANDLER_VAR.set(atlas.callback_module._HANDLER)
        publisher = _Publisher()
        try:
            result = await atlas.arun(
                task, config_path, publisher=publisher, session_metadata=session_metadata, stream_progress=False
            )
        except Exception as exc:
            return Outcome(publisher.session_id, None, exc, _execution_mode(atlas))
        return Outcome(publisher.session_id, str(result.final_answer), None, _execution_mode(atlas))

    with _transport():
        return await asyncio.get_running_loop().create_task(inside())
