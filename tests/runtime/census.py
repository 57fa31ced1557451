"""The census: the JSON paths (and their types) of documents, normalised so that documents of the
same shape have the same paths.

A path is ``$`` then ``.key`` per object key and ``[*]`` per array item; its type is the JSON type
of the value (``integer`` and ``number`` apart: Atlas writes 0.0, not 0). Keys that are data, not
field names, are replaced: entry ids under ``learning_usage.roles.<role>``, embedding names, step
ids; the keys a caller, an agent or an LLM chooses are folded into one placeholder each, and the
insides of the agent's own values (artifacts, deliverables, results) are not walked: their content
is the agent's, only their type is Atlas's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pytest_atlas._violation import json_type

Path = tuple[str, str]

#: the top-level keys of sessions.metadata that Atlas writes itself (the others are the caller's)
ATLAS_SESSION_KEYS = frozenset(
    {
        "learning_key",
        "review",
        "drift",
        "drift_alert",
        "review_status",
        "review_notes",
        "reward_audit",
        "triage_dossier",
        "adaptive_summary",
        "execution_mode",
        "session_reward",
        "reward_stats",
        "token_usage",
        "learning_usage",
        "student_learning",
        "teacher_learning",
        "session_learning_note",
        "learning_state",
        "reward_summary",
        "learning_history",
        "teacher_notes",
        "adapter_session",
        "applied_student_learning",
        "applied_teacher_learning",
    }
)
#: keys of a playbook entry's metadata that Atlas sets (the others are the synthesizer LLM's)
_ENTRY_METADATA_KEYS = frozenset({"validation_status", "validation_warnings", "runtime_mapping"})
#: keys of the registry metadata that Atlas sets or its prompt names (the others are the LLM's)
_REGISTRY_KEYS = frozenset(
    {
        "playbook_version",
        "last_evaluation",
        "playbook_entries",
        "playbook_summary",
        "last_updated_at",
        "last_failure",
        "synthesis_reasoning",
        "validation_notes",
    }
)
#: subtrees whose content is not Atlas's structure: only the node's own type is recorded
_OPAQUE = tuple(
    re.compile(pattern)
    for pattern in (
        r"\$\.triage_dossier\.metadata",  # the caller's keys, copied
        r".*\.(artifacts|deliverable|result)",  # the agent's values
        r".*\.validation_request\.[a-z_]+\.content",  # copies of the agent's values
        r".*\.parameters\.properties",  # a tool's parameter schema
        r".*\.(probe_raw|probe\.raw)",  # the router LLM's raw answer
        r"\$\.payload\.data\.(input|output|chunk)",  # event payloads: any JSON
    )
)


kind = json_type  # the JSON type name (integer and number apart)


def _segment(column: str, path: str, key: str) -> str:
    if re.fullmatch(r"\d+", key):
        return "<n>"
    if re.search(r"\.learning_usage\.roles\.\w+$", path):
        return "<entry>"
    if path.endswith(".embeddings"):
        return "<name>"
    if column == "sessions.metadata" and path == "$" and key not in ATLAS_SESSION_KEYS:
        return "<caller>"
    if path.endswith(".playbook_entries[*].metadata") and key not in _ENTRY_METADATA_KEYS:
        return "<llm>"
    registry = path == "$" if column == "learning_registry.metadata" else path.endswith(".learning_state.metadata")
    if registry and key not in _REGISTRY_KEYS:
        return "<llm>"
    return key


def paths(column: str, document: Any) -> set[Path]:
    found: set[Path] = set()

    def walk(value: Any, path: str) -> None:
        if path.endswith((".<caller>", ".<llm>")):  # values the caller or an LLM chose: any JSON
            found.add((path, "any"))
            return
        found.add((path, kind(value)))
        if any(pattern.fullmatch(path) for pattern in _OPAQUE):
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{_segment(column, path, str(key))}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[*]")

    walk(document, "$")
    return found


def census(documents: Iterator[tuple[str, Any]]) -> dict[str, set[Path]]:
    """Column → the paths of all its documents."""
    out: dict[str, set[Path]] = {}
    for column, document in documents:
        out.setdefault(column, set()).update(paths(column, document))
    return out
