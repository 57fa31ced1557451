"""Atlas's own words: the values Atlas writes to ``sessions.status``, ``sessions.review_status``,
``metadata.execution_mode`` and ``trajectory_events.event.payload.event_type``, and the names of the
quirks of real data that the JSON Schemas tolerate. Declared once, here; the builders, strategies,
factories, contracts and gates take them from :mod:`pytest_atlas.domain` (and tests check that the
JSON Schemas say the same).

Light on purpose: tuples and a dict of strings, nothing imported.
"""

from __future__ import annotations

__all__ = [
    "EVENT_TYPES",
    "EXECUTION_MODES",
    "LEGACY_EXECUTION_MODES",
    "QUIRKS",
    "RECORDED_EXECUTION_MODES",
    "REVIEW_STATUSES",
    "SESSION_STATUSES",
]

#: what Atlas writes to sessions.status: 'running' at creation, then finalize_session's outcome
SESSION_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed")
#: what Atlas and its review CLI write to sessions.review_status
REVIEW_STATUSES: tuple[str, ...] = ("pending", "approved", "quarantined")
#: the adaptive execution modes the current runtime records in metadata.execution_mode
EXECUTION_MODES: tuple[str, ...] = ("auto", "paired", "coach")
#: modes of older runtimes that survive in older databases ('escalate': v0.1.3 to v0.1.11)
LEGACY_EXECUTION_MODES: tuple[str, ...] = ("escalate",)
#: every mode a database may hold: the current ones, then the legacy ones
RECORDED_EXECUTION_MODES: tuple[str, ...] = EXECUTION_MODES + LEGACY_EXECUTION_MODES

#: the event types of Atlas's intermediate-step events (``trajectory_events.event.payload.event_type``)
EVENT_TYPES: tuple[str, ...] = (
    "LLM_START",
    "LLM_END",
    "LLM_NEW_TOKEN",
    "TOOL_START",
    "TOOL_END",
    "WORKFLOW_START",
    "WORKFLOW_END",
    "TASK_START",
    "TASK_END",
    "FUNCTION_START",
    "FUNCTION_END",
    "CUSTOM_START",
    "CUSTOM_END",
    "SPAN_START",
    "SPAN_CHUNK",
    "SPAN_END",
)

#: the quirks of real Atlas data that the schemas tolerate (their ``x-atlas-quirk`` names) and what each is
QUIRKS: dict[str, str] = {
    "alias-key": "a key that Atlas's readers accept as an alias (min_uncertainty for best_uncertainty)",
    "custom-reward-evaluator": "reward statistics or audit entries of a custom (python) reward evaluator",
    "learning-state-metadata-only": 'learning_state is {"metadata": {}} (a key without a registry row)',
    "legacy-escalate-mode": "the 'escalate' execution mode of runtimes before v0.1.12",
    "legacy-stepwise-plan": "a stepwise or multi-step plan (only one-step plans since v0.1.12)",
    "missing-learning-key": "metadata without learning_key (written before v0.1.7, or not by Atlas)",
    "mock-raw-response": 'raw_response is an object (offline mock mode writes {"mock": true})',
    "python-str-datetime": "a timestamp stored as Python's str(datetime) (a space, not 'T')",
    "reward-summary-step-average": "reward_summary is {average, count}: the session reward failed",
    "serialisation-fallback": "a bare JSON string in place of the payload (json.dumps(default=str) failed)",
    "tags-as-string": "metadata.tags is one string, not a list of strings",
    "unclamped-unit-value": "a value the prompt asks to keep in 0..1 lies outside it (nothing clamps it)",
}
