"""The census: the JSON paths Atlas's runtime writes against the paths ``pytest_atlas.strategies``
generates. Every path Atlas writes must be generated; every generated path must be one Atlas writes
or one that Atlas writes on a path this runtime cannot take (listed below, each with the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings

from pytest_atlas.strategies import learning_registry_rows, session_graphs

from .census import Path, census
from .corpus import corpus_rows
from .test_schemas import documents

#: how many session graphs (and registry rows) are drawn; derandomized, so always the same ones (2,000:
#: the fewest that reach every documented path without the package's literals, see generated())
EXAMPLES = 2000

_LEGACY_PLAN = "stepwise multi-step plans with tools: the removed escalate mode (0.1.3-0.1.11) and older"
_RETRY_GUIDANCE = "a validated retry: stepwise plans only (single-shot retries are final, so not validated)"
_RUNTIME_ERROR = "a parallel step that raised: stepwise plans only"
_TOOL_ADOPTION = (
    "an adopted tool call: Atlas 0.1.16's student fails every session whose agent calls a tool "
    "(it reads LangChain tool calls by attribute), before adoptions are recorded"
)
_TERMINAL_FAILURE = "a step whose final attempt failed validation: stepwise plans only"
_MESSAGE_REASONING = (
    "reasoning from the agent's AIMessage (additional_kwargs) or a token stream: agents whose chat model "
    "reports reasoning or streams; Atlas's adapter bridge passes neither"
)
_GRAPH_LLM = "LLM events of a LangGraph agent that streams through a real chat model (usage, token counts, chunks)"

#: generated paths Atlas writes, but not on any path the offline runtime can take: path prefix → why
DOCUMENTED: dict[str, dict[str, str]] = {
    "plans.plan": {
        "$.steps[*].depends_on[*]": _LEGACY_PLAN,
        "$.steps[*].tool": _LEGACY_PLAN,
        "$.steps[*].tool_params": _LEGACY_PLAN,
    },
    "sessions.metadata": {
        "$.adapter_session": "set only by adapter code of the caller's (context.metadata['adapter_session'])",
        "$.learning_history.entries[*].reward": "null when an earlier session's stored reward is not an object",
        "$.learning_usage.roles.student.<entry>.adoption_examples": _TOOL_ADOPTION,
        "$.learning_usage.roles.student.<entry>.adoption_steps[*]": _TOOL_ADOPTION,
        "$.learning_usage.roles.teacher.<entry>.adoption_examples": _TOOL_ADOPTION,
        "$.learning_usage.roles.teacher.<entry>.adoption_steps[*]": _TOOL_ADOPTION,
        "$.learning_usage.session.unique_adoption_steps[*]": _TOOL_ADOPTION,
        "$.learning_usage.session.failure_events[*]": _TERMINAL_FAILURE,
        "$.reward_audit[*].raw_response": "{mock: true}: Atlas's own offline mock mode (ATLAS_OFFLINE_MODE)",
        "$.reward_audit[*].reasoning.queue": "an arbiter call that raised after a reasoning payload was queued",
        "$.learning_state.metadata.playbook_entries[*].impact.last_observed_at": "the impact default (null) "
        "before its first observation; Atlas sets it in the same update",
    },
    "sessions.reward_audit": {
        "$[*].raw_response": "{mock: true}: Atlas's own offline mock mode (ATLAS_OFFLINE_MODE)",
        "$[*].reasoning.queue": "an arbiter call that raised after a reasoning payload was queued",
    },
    "learning_registry.metadata": {
        "$.playbook_entries[*].impact.last_observed_at": "the impact default (null) before its first "
        "observation; Atlas sets it in the same update",
    },
    "step_results.evaluation": {
        "$.reward.raw.error": _RUNTIME_ERROR,
        "$.validation.error": _RUNTIME_ERROR,
        "$.validation.validation_request.attempt_guidance[*]": _RETRY_GUIDANCE,
        "$.validation.validation_request.prior_guidance[*]": _RETRY_GUIDANCE,
        "$.validation.validation_request.step.tool": _LEGACY_PLAN,
        "$.validation.validation_request.step.tool_params": _LEGACY_PLAN,
        "$.validation.validation_request.trace.preview": "an empty trace (an agent turn with no messages)",
    },
    "step_attempts.evaluation": {
        "$.validation.validation_request.attempt_guidance[*]": _RETRY_GUIDANCE,
        "$.validation.validation_request.prior_guidance[*]": _RETRY_GUIDANCE,
        "$.validation.validation_request.step.tool": _LEGACY_PLAN,
        "$.validation.validation_request.step.tool_params": _LEGACY_PLAN,
        "$.validation.validation_request.trace.preview": "an empty trace (an agent turn with no messages)",
    },
    "step_results.metadata": {
        "$.reasoning[*].message_index": _MESSAGE_REASONING,
        "$.reasoning[*].role": _MESSAGE_REASONING,
        "$.reasoning[*].payload.chain_of_thought": _MESSAGE_REASONING,
        "$.reasoning[*].payload.chunks": _MESSAGE_REASONING,
        "$.reasoning[*].payload.content": _MESSAGE_REASONING,
        "$.reasoning[*].payload.reasoning": _MESSAGE_REASONING,
        "$.reasoning[*].payload.reasoning_content": _MESSAGE_REASONING,
        "$.reasoning[*].payload.text": _MESSAGE_REASONING,
        "$.reasoning[*].payload.thinking": _MESSAGE_REASONING,
        "$.reasoning[*].payload.token_counts": _MESSAGE_REASONING,
        "$.runtime.timings_ms.guidance_ms": "a retried attempt's timings: only in its TASK_END event, the stored "
        "step is the final attempt",
    },
    "trajectory_events.event": {
        "$.payload.data.chunk": _GRAPH_LLM,
        "$.payload.metadata.token_counts": _GRAPH_LLM,
        "$.payload.metadata.usage": _GRAPH_LLM,
        "$.payload.metadata.langgraph.checkpoint_ns": "LangGraph metadata of graphs with checkpoints or a provider",
        "$.payload.metadata.langgraph.ls_provider": "LangGraph metadata of graphs with checkpoints or a provider",
    },
}

_GENERATED: dict[str, dict[str, set[Path]]] = {}


def generated() -> dict[str, set[Path]]:
    """The census of what the strategies generate (drawn once per process)."""
    if "paths" in _GENERATED:
        return _GENERATED["paths"]
    found: list[tuple[str, Any]] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(session_graphs(), learning_registry_rows())
    def draw(graph: Any, registry: dict[str, Any]) -> None:
        for column in ("metadata", "reward", "reward_stats", "reward_audit"):
            if graph.session.get(column) is not None:
                found.append((f"sessions.{column}", graph.session[column]))
        if graph.plan is not None:
            found.append(("plans.plan", graph.plan))
        for row in graph.step_results:
            found.append(("step_results.evaluation", row["evaluation"]))
            if row.get("metadata") is not None:
                found.append(("step_results.metadata", row["metadata"]))
        found.extend(("step_attempts.evaluation", row["evaluation"]) for row in graph.step_attempts)
        found.extend(("trajectory_events.event", row["event"]) for row in graph.trajectory_events)
        if registry.get("metadata") is not None:
            found.append(("learning_registry.metadata", registry["metadata"]))

    # Hypothesis mixes the literals of every local module (pytest_atlas's own source, when it is not
    # installed under site-packages) into what it draws: then any edit anywhere in the package changes
    # which paths the examples reach (a new string in contracts/ made the rare arbiter-error branch
    # vanish). Drawn as from an installed wheel, which has no local modules: the same draws whatever
    # the package's source says. (An internal of Hypothesis: if it is gone, draw as it is.) The
    # constants an earlier test of this process drew from are cached per choice type
    # (CONSTANTS_CACHE, local ones included): drawn with an empty cache, as the first test of a
    # process, or the paths reached depend on which tests ran before in the same worker.
    from hypothesis.internal.conjecture import providers

    local = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if local is not None:
        providers._get_local_constants = providers.Constants
    if cache is not None:
        providers.CONSTANTS_CACHE = type(cache)(1024)
    try:
        draw()
    finally:
        if local is not None:
            providers._get_local_constants = local
        if cache is not None:
            providers.CONSTANTS_CACHE = cache
    _GENERATED["paths"] = census(_with_learning_state(iter(found)))
    return _GENERATED["paths"]


def _with_learning_state(found: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """A session's ``learning_state.metadata`` is a learning-registry document too (the same object)."""
    for column, document in found:
        yield column, document
        if column == "sessions.metadata" and isinstance(document.get("learning_state"), dict):
            state = document["learning_state"].get("metadata")
            if isinstance(state, dict) and state:
                yield "learning_registry.metadata", state


def written(dsn: str) -> dict[str, set[Path]]:
    rows = corpus_rows(dsn)
    return census(_with_learning_state((column, document) for column, _, document in documents(rows)))


def _documented(column: str, path: Path) -> bool:
    return any(
        path[0] == prefix or path[0].startswith((prefix + ".", prefix + "[")) for prefix in DOCUMENTED.get(column, {})
    )


def _listing(missing: dict[str, set[Path]]) -> Iterator[str]:
    for column, found in sorted(missing.items()):
        for path, kind in sorted(found):
            yield f"{column}: {path} ({kind})"


def test_every_path_atlas_writes_is_generated(atlas_dsn: str) -> None:
    atlas, strategies = written(atlas_dsn), generated()
    missing = {column: atlas[column] - strategies.get(column, set()) for column in atlas}
    lines = list(_listing(missing))
    assert not lines, f"{len(lines)} paths Atlas writes are never generated:\n" + "\n".join(lines)
    assert sum(len(found) for found in atlas.values()) > 900


def test_every_generated_path_is_written_or_documented(atlas_dsn: str) -> None:
    atlas, strategies = written(atlas_dsn), generated()
    extra = {
        column: {path for path in found - atlas.get(column, set()) if not _documented(column, path)}
        for column, found in strategies.items()
    }
    lines = list(_listing(extra))
    assert not lines, f"{len(lines)} generated paths Atlas does not write:\n" + "\n".join(lines)


def test_the_documented_list_is_not_stale(atlas_dsn: str) -> None:
    atlas, strategies = written(atlas_dsn), generated()
    stale = []
    for column, prefixes in DOCUMENTED.items():
        for prefix in prefixes:
            generated_here = {
                p for p in strategies.get(column, set()) if _documented(column, p) and p[0].startswith(prefix)
            }
            if not generated_here - atlas.get(column, set()):
                stale.append(f"{column}: {prefix} (not generated, or Atlas writes all of it now)")
    assert stale == []
