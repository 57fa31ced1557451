"""The value a session graph is: one ``sessions`` row and the rows that hang off it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SessionGraph"]

Doc = dict[str, Any]


@dataclass
class SessionGraph:
    """One Atlas session with its plan, step results, attempts, guidance notes and trajectory events.

    Every part is plain data: dicts whose keys are the table's columns (JSONB columns hold parsed
    JSON: dicts, lists, strings, numbers, booleans, ``None``), ``created_at``/``completed_at`` are
    timezone-aware :class:`~datetime.datetime` values. ``plan`` is ``None`` when the session has no
    ``plans`` row (running and failed sessions).

    Values that Atlas stores twice (``reward_stats`` in its column and in the metadata, a step's
    evaluation in ``step_results`` and its last ``step_attempts`` row) are the same Python objects:
    change them through :meth:`as_dict` (a deep copy) when the two must differ.
    """

    session: Doc
    plan: Doc | None = None
    step_results: list[Doc] = field(default_factory=list)
    step_attempts: list[Doc] = field(default_factory=list)
    guidance_notes: list[Doc] = field(default_factory=list)
    trajectory_events: list[Doc] = field(default_factory=list)

    # -- convenience ----------------------------------------------------------------------------------

    @property
    def learning_key(self) -> str | None:
        metadata = self.session.get("metadata")
        key = metadata.get("learning_key") if isinstance(metadata, dict) else None
        return key if isinstance(key, str) else None

    @property
    def score(self) -> float | None:
        """``reward_stats.score`` (what Atlas's drift detection and reward filters read)."""
        stats = self.session.get("reward_stats")
        value = stats.get("score") if isinstance(stats, dict) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def plan_rows(self) -> list[Doc]:
        """The ``plans`` rows: one ``{"plan": ...}`` or none."""
        return [] if self.plan is None else [{"plan": self.plan}]

    def rows(self) -> dict[str, list[Doc]]:
        """Table name → rows (without ids and ``session_id``), in insertion order."""
        return {
            "sessions": [self.session],
            "plans": [] if self.plan is None else [{"plan": self.plan}],
            "step_results": self.step_results,
            "step_attempts": self.step_attempts,
            "guidance_notes": self.guidance_notes,
            "trajectory_events": self.trajectory_events,
        }

    def as_dict(self) -> Doc:
        """A deep copy as one plain dict (``{"session": ..., "plan": ..., "step_results": [...], ...}``)."""
        return {
            "session": copy.deepcopy(self.session),
            "plan": copy.deepcopy(self.plan),
            "step_results": copy.deepcopy(self.step_results),
            "step_attempts": copy.deepcopy(self.step_attempts),
            "guidance_notes": copy.deepcopy(self.guidance_notes),
            "trajectory_events": copy.deepcopy(self.trajectory_events),
        }

    def __repr__(self) -> str:
        """A one-line summary; ``as_dict()`` has everything."""
        session = self.session
        return (
            f"SessionGraph(task={session.get('task')!r}, status={session.get('status')!r}, "
            f"review_status={session.get('review_status')!r}, score={self.score!r}, "
            f"steps={len(self.step_results)}, attempts={len(self.step_attempts)}, "
            f"guidance_notes={len(self.guidance_notes)}, events={len(self.trajectory_events)})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this (the summary, not 30 kB of JSON)."""
        printer.text(repr(self))
