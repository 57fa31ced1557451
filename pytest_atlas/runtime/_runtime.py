"""``AtlasRuntime``: Atlas's own runtime, run offline against a database, with scripted LLM roles."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import psycopg

from pytest_atlas._dsn import asyncpg_dsn, hide_password, redact_text, scrub, secrets_of
from pytest_atlas.errors import AtlasRuntimeError, InvalidArgument, ScriptError
from pytest_atlas.runtime import _atlas
from pytest_atlas.runtime._agent import AGENT, AgentPlan, ScriptedFailure, is_agent
from pytest_atlas.runtime._presets import RuntimeHistory, run_history
from pytest_atlas.runtime._script import MODES, ROLES, LLMCall, Responder, RunPlan, Script, default_scripts
from pytest_atlas.runtime._settings import base_config, is_scripted, run_config

__all__ = ["AtlasRuntime", "RunRecord"]

P = ParamSpec("P")
_DEFAULT_SCORE = 0.8
_DEFAULT_UNCERTAINTY = 0.1


@dataclass(frozen=True)
class RunRecord:
    """One scripted run: the session it wrote and how it went.

    ``mode`` is the mode Atlas chose (from the session's metadata), ``routed`` whether Atlas asked
    the router, ``calls`` every LLM call Atlas made, in order.
    """

    session_id: int
    task: str
    status: str
    learning_key: str
    mode: str | None
    routed: bool
    final_answer: str | None
    calls: tuple[LLMCall, ...]

    def calls_of(self, role: str) -> tuple[LLMCall, ...]:
        """The calls one role made."""
        return tuple(call for call in self.calls if call.role == role)


def _fail(name: str, value: object, expected: str, hint: str | None = None) -> InvalidArgument:
    return InvalidArgument(
        f"AtlasRuntime.run(): invalid {name}={value!r}: expected {expected}",
        hint=hint or f"pass {name} as {expected}, or leave it out",
    )


def _unit(name: str, value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(name, value, "a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise _fail(name, value, "a number between 0 and 1")
    return float(value)


def _responses(where: str, value: Any) -> dict[str, Script]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{where}: responses must be a mapping of role to script, got {type(value).__name__}",
            hint=f"e.g. responses={{'judge': {{'score': 0.3, 'uncertainty': 0.1}}}}; roles: {', '.join(ROLES)}",
        )
    unknown = sorted(str(role) for role in value if role not in ROLES)
    if unknown:
        raise InvalidArgument(
            f"{where}: unknown role{'s' if len(unknown) > 1 else ''} in responses: {', '.join(unknown)}",
            hint=f"the roles are {', '.join(ROLES)}",
        )
    return dict(value)


def _blocking(
    method: Callable[Concatenate[AtlasRuntime, P], Coroutine[Any, Any, int]],
) -> Callable[Concatenate[AtlasRuntime, P], int]:
    """The synchronous twin of an ``async`` method: the same signature, run in a new event loop."""

    def run(self: AtlasRuntime, /, *args: P.args, **kwargs: P.kwargs) -> int:
        """Run Atlas once on ``task`` and return the new ``sessions.id`` (see :meth:`arun`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(method(self, *args, **kwargs))
        raise AtlasRuntimeError(
            "AtlasRuntime.run() cannot be called inside a running event loop",
            hint="in async code use: sid = await atlas_runtime.arun(...)",
        )

    run.__doc__ = method.__doc__
    run.__wrapped__ = method  # type: ignore[attr-defined]  # help() and inspect show arun's signature
    return run


class AtlasRuntime:
    """Atlas's runtime (``atlas.core.arun``), offline, writing real rows into the database ``dsn``.

    Every LLM role is scripted: the router, the judges, the arbiter, the teacher and the
    learning synthesizer answer what :meth:`run` asks for, or what ``responses`` says; nothing is
    ever sent to a provider and no API key is needed. ``agent`` is the agent Atlas runs:
    ``None`` (the built-in echo agent), a Bring-Your-Own-Agent function ``(prompt, metadata)``
    (sync or async), an object with ``ainvoke(prompt, metadata)``, a ``"module:function"`` path,
    or an Atlas ``agent:`` config section (a mapping with ``type``, used as Atlas would use it).
    ``config`` is an Atlas config (a YAML path or a mapping, whole or partial) merged over
    pytest-atlas's defaults; the database, the API-key variables and, with ``mode=``, the routing
    are always set by the runtime.

    Raises :class:`~pytest_atlas.errors.AtlasRuntimeError` at once when arc-atlas or asyncpg is
    missing or the installed arc-atlas is not a supported version.
    """

    def __init__(
        self,
        dsn: str,
        *,
        agent: Any = None,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        responses: Mapping[str, Script] | None = None,
    ) -> None:
        self.atlas_version = _atlas.atlas_version()
        if not isinstance(dsn, str) or not dsn:
            raise InvalidArgument(
                f"AtlasRuntime(): dsn must be a PostgreSQL URL or key=value string, got {dsn!r}", hint="pass atlas_dsn"
            )
        self._dsn = hide_password(dsn)
        del dsn  # this frame (shown by --showlocals when a check below fails) holds the redacted form only
        # what Atlas's storage (asyncpg, which reads URLs only) is given: key=value pairs as a URL
        self._storage_dsn = asyncpg_dsn(self._dsn, "AtlasRuntime()")
        self._agent_arg = agent
        self._config_arg = config
        self._responses = _responses("AtlasRuntime()", responses)
        self._target, section = self._agent(agent)
        self._base = base_config(self._user_config(config), agent=section, scripted=self._target is not None)
        self._scripted_agent = is_scripted(self._base)
        # the agent's name is part of the learning key Atlas derives
        self._atlas_config = _atlas.validate_config(run_config(self._base, self._storage_dsn, mode=None, routed=False))
        self.runs: list[RunRecord] = []
        self._folder: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None

    @property
    def dsn(self) -> str:
        """The database the runtime writes to (the connection string as given)."""
        return self._dsn.reveal()

    # -- construction ---------------------------------------------------------------------------------

    @staticmethod
    def _agent(agent: Any) -> tuple[Any, Mapping[str, Any] | None]:
        """(callable target, None) for a scripted agent; (None, section) for an Atlas agent config."""
        if agent is None:
            return None, None
        if isinstance(agent, Mapping):
            if "type" not in agent:
                raise InvalidArgument(
                    "AtlasRuntime(): an agent given as a mapping is an Atlas agent: config section and needs 'type'",
                    hint="e.g. {'type': 'python', 'name': 'mine', 'system_prompt': '...', 'import_path': 'my.agent'}",
                )
            return None, agent
        if isinstance(agent, str):
            module, _, attribute = agent.partition(":")
            if not module or not attribute:
                raise InvalidArgument(
                    f"AtlasRuntime(): agent={agent!r} is not a 'module:function' path",
                    hint="e.g. 'my_harness.agent:run'",
                )
            import importlib

            try:
                target = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError) as exc:
                raise InvalidArgument(f"AtlasRuntime(): cannot import agent {agent!r}: {exc}") from None
            agent = target
        if not is_agent(agent):
            raise InvalidArgument(
                f"AtlasRuntime(): agent must be a function (prompt, metadata), an object with ainvoke(), a "
                f"'module:function' path or an Atlas agent config mapping, got {type(agent).__name__}"
            )
        return agent, None

    @staticmethod
    def _user_config(config: Any) -> dict[str, Any] | None:
        if config is None:
            return None
        if isinstance(config, Mapping):
            return copy.deepcopy(dict(config))
        if isinstance(config, (str, os.PathLike)):
            path = Path(config)
            if not path.is_file():
                raise InvalidArgument(f"AtlasRuntime(): config file {path} does not exist")
            return _atlas.load_user_config(str(path))
        raise InvalidArgument(f"AtlasRuntime(): config must be a YAML path or a mapping, got {type(config).__name__}")

    def using(
        self, *, agent: Any = None, config: Any = None, responses: Mapping[str, Script] | None = None
    ) -> AtlasRuntime:
        """Another runtime on the same database, with this one's settings except those given."""
        return AtlasRuntime(
            self.dsn,
            agent=agent if agent is not None else self._agent_arg,
            config=config if config is not None else self._config_arg,
            responses={**self._responses, **(responses or {})},
        )

    # -- running ---------------------------------------------------------------------------------------

    async def arun(
        self,
        task: str,
        *,
        score: float | None = None,
        uncertainty: float | None = None,
        escalate: bool = False,
        mode: str | None = None,
        fail: bool | str = False,
        guidance: str | None = None,
        learn: bool = True,
        answer: Any = None,
        plan: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        learning_key: str | None = None,
        responses: Mapping[str, Script] | None = None,
    ) -> int:
        """Run Atlas once on ``task`` and return the new ``sessions.id`` (:meth:`run` in sync code).

        ``score`` (default 0.8) is the session reward the judges give, ``uncertainty`` (default 0.1)
        how unsure they are: above Atlas's threshold (0.3) Atlas escalates to the arbiter, which
        confirms the score. ``escalate=True`` makes the judges disagree and be unsure, so the
        arbiter decides. ``mode`` makes Atlas run in ``"auto"``, ``"paired"`` or ``"coach"``: the
        router picks it when the learning key has history (Atlas consults the router only then),
        ``mode_override`` otherwise; ``None`` leaves routing to Atlas (no history: paired).
        ``fail`` makes the agent raise (a string: the message), so the session ends ``failed``.
        ``guidance`` makes the teacher reject the first attempt with that guidance (paired and
        coach): Atlas retries, writes the guidance note and a second attempt. ``learn`` makes the
        synthesizer propose a playbook entry (``False``: it learns nothing). ``answer`` is what the
        echo agent answers (a string, or a mapping it returns as JSON), ``plan`` the steps it plans
        in coach mode. ``metadata`` is the caller's session metadata, ``learning_key`` the session's
        learning key (default: the one Atlas derives). ``responses`` overrides the scripts of
        single roles for this run.

        Raises :class:`~pytest_atlas.errors.ScriptError` when Atlas made an LLM call no script
        answers (after Atlas wrote the session), and
        :class:`~pytest_atlas.errors.AtlasRuntimeError` when the run failed without ``fail``.
        """
        if not isinstance(task, str) or not task.strip() or "\x00" in task:
            raise _fail("task", task, "a non-empty string without NUL characters")
        run_plan = RunPlan(
            task=task,
            score=_unit("score", score, _DEFAULT_SCORE),
            uncertainty=_unit("uncertainty", uncertainty, _DEFAULT_UNCERTAINTY),
            escalate=_flag("escalate", escalate),
            mode=_mode(mode),
            guidance=_text("guidance", guidance),
            learn=_flag("learn", learn),
        )
        failure = _failure(fail)
        if failure is not None and not self._scripted_agent:
            raise _fail(
                "fail",
                fail,
                "False with an agent from an Atlas config",
                hint="fail= makes the built-in agent or your agent function raise; an agent Atlas builds from "
                "your config fails only when it raises itself",
            )
        if (answer is not None or plan is not None) and not (self._scripted_agent and self._target is None):
            raise _fail(
                "answer", answer, "None when the agent is your own", hint="answer= and plan= set the echo agent"
            )
        session_metadata = _metadata(metadata)
        if learning_key is not None:
            if not isinstance(learning_key, str) or not learning_key.strip():
                raise _fail("learning_key", learning_key, "a non-empty string")
            session_metadata["learning_key"] = learning_key
        run_responses = _responses("AtlasRuntime.run()", responses)

        key = _atlas.learning_key_for(task, self._atlas_config, session_metadata)
        # Atlas consults the router only for a key with history; without it, mode= is an override
        routed = run_plan.mode is not None and self._has_history(key)
        config = run_config(self._base, self._storage_dsn, mode=run_plan.mode, routed=routed)
        scripts: dict[str, Script] = {**default_scripts(run_plan), **self._responses, **run_responses}
        responder = Responder(scripts=scripts, task=task)
        agent_plan = AgentPlan(target=self._target, task=task, answer=answer, plan=plan, fail=failure)

        path = self._write(config)
        try:
            outcome = await _atlas.execute(task, str(path), session_metadata, responder, {AGENT: agent_plan})
        finally:
            path.unlink(missing_ok=True)
        return self._finish(task, key, outcome, responder, failure)

    #: :meth:`arun` for code without a running event loop (the same arguments; it runs one)
    run = _blocking(arun)

    def _finish(
        self,
        task: str,
        key: str,
        outcome: _atlas.Outcome,
        responder: Responder,
        failure: str | None,
    ) -> int:
        error = outcome.error
        sid = outcome.session_id
        if responder.problems:
            problem = responder.problems[0]
            where = f" (session {sid} was written with status {'failed' if error else 'succeeded'})" if sid else ""
            cause = problem.__cause__ or error
            raise ScriptError(problem.role, problem.problem + where, hint=problem.hint, session_id=sid) from cause
        if sid is None:
            raise AtlasRuntimeError(
                f"Atlas did not create a session for {task!r}: {self._redacted(_describe(error))}",
                hint="check the DSN: server reachable, user and password right, database there with the Atlas "
                "schema (atlas_dsn's is)",
            ) from None
        expected_failure = error is not None and failure is not None and _caused_by(error, ScriptedFailure)
        if error is not None and not expected_failure:
            detail = self._redacted(_describe(error))
            raise AtlasRuntimeError(
                f"the Atlas run of {task!r} failed (session {sid} is 'failed'): {detail}",
                hint="if your agent raised, that is what failed; pass fail=True to ask for a failed session",
            ) from error
        if failure is not None and error is None:
            raise AtlasRuntimeError(
                f"the Atlas run of {task!r} was asked to fail but succeeded (session {sid})",
                hint="fail= makes the agent raise when Atlas asks it for an answer",
            )
        record = RunRecord(
            session_id=sid,
            task=task,
            status="failed" if error is not None else "succeeded",
            learning_key=key,
            mode=outcome.execution_mode,
            routed=any(call.role == "router" for call in responder.calls),
            final_answer=outcome.final_answer,
            calls=tuple(responder.calls),
        )
        self.runs.append(record)
        return sid

    def history(
        self,
        scenario: str,
        *,
        sessions: int = 20,
        seed: int = 0,
        learning_key: str | None = None,
        task: str | None = None,
        baseline: float = 0.8,
        shift: float | None = None,
        **options: Any,
    ) -> RuntimeHistory:
        """Run Atlas ``sessions`` times on one learning key with the rewards of a
        :func:`~pytest_atlas.strategies.reward_history` scenario: ``"stable"``, ``"step_change"``
        (a drop of ``shift``, default 0.3, two thirds of the way) or ``"gradual_decline"``. Atlas
        writes the reward statistics, drift assessments and review statuses itself. Other
        :meth:`run` arguments (``mode``, ``learn``, ``metadata``, ``responses``, ...) apply to
        every run."""
        return run_history(
            self,
            scenario,
            sessions=sessions,
            seed=seed,
            learning_key=learning_key,
            task=task,
            baseline=baseline,
            shift=shift,
            options=options,
        )

    @property
    def last(self) -> RunRecord:
        """The record of the latest run."""
        if not self.runs:
            raise AtlasRuntimeError("no run yet", hint="call atlas_runtime.run(task) first")
        return self.runs[-1]

    # -- the database ----------------------------------------------------------------------------------

    def _redacted(self, text: str) -> str:
        """``text`` (a message of Atlas, asyncpg or psycopg) without the DSN's password in any form
        it takes (as written, decoded, as a ``password=`` value), nor any other secret of the run."""
        return scrub(redact_text(text, *secrets_of(self.dsn), *secrets_of(self._storage_dsn.reveal())))

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return list(conn.execute(sql, params).fetchall())
        except psycopg.Error as exc:
            raise AtlasRuntimeError(
                f"cannot read the Atlas database: {self._redacted(str(exc).strip())}",
                hint="check the DSN: server reachable, user and password right, database there with the Atlas "
                "schema (atlas_dsn's is)",
            ) from None

    def _has_history(self, learning_key: str) -> bool:
        """Whether Atlas will find learning history for the key (its own query: rewarded sessions)."""
        rows = self._query(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE metadata->>'learning_key' = %s AND reward IS NOT NULL)",
            [learning_key],
        )
        return bool(rows[0][0])

    # -- the config file -------------------------------------------------------------------------------

    def _write(self, config: Mapping[str, Any]) -> Path:
        """The run's config as a file Atlas can load (JSON is YAML), in a private folder (0700) of
        this runtime's: it holds the DSN."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="pytest-atlas-runtime-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        fd, name = tempfile.mkstemp(suffix=".json", dir=self._folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_atlas.plain_config(config), handle)
        return Path(name)

    def close(self) -> None:
        """Remove the runtime's private folder (runs may not be started after this)."""
        if self._cleanup is not None:
            self._cleanup()
        self._folder = None
        self._cleanup = None

    def __repr__(self) -> str:
        agent = "echo" if self._target is None and self._scripted_agent else "yours"
        return f"AtlasRuntime(atlas={self.atlas_version}, agent={agent}, runs={len(self.runs)})"


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "a non-empty string or None")
    return value


def _mode(value: Any) -> str | None:
    if value is None:
        return None
    if value not in MODES:
        raise _fail("mode", value, "one of " + ", ".join(repr(m) for m in MODES) + " or None")
    return str(value)


def _failure(value: Any) -> str | None:
    if value is False:
        return None
    if value is True:
        return "scripted agent failure"
    if isinstance(value, str) and value:
        return value
    raise _fail("fail", value, "True, False or an error message")


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _fail("metadata", value, "a mapping with string keys")
    return copy.deepcopy(dict(value))  # Atlas mutates the dict it is given


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
