"""Atlas's own words: the values Atlas writes to ``sessions.status``, ``sessions.review_status`` and
``metadata.execution_mode``. Declared once, here; strategies, factories, contracts and gates take
them from this module (and a test checks the JSON Schemas say the same).

Light on purpose: tuples of strings, nothing imported.
"""

from __future__ import annotations

__all__ = ["EXECUTION_MODES", "LEGACY_EXECUTION_MODES", "REVIEW_STATUSES", "SESSION_STATUSES"]

#: what Atlas writes to sessions.status: 'running' at creation, then finalize_session's outcome
SESSION_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed")
#: what Atlas and its review CLI write to sessions.review_status
REVIEW_STATUSES: tuple[str, ...] = ("pending", "approved", "quarantined")
#: the adaptive execution modes the current runtime records in metadata.execution_mode
EXECUTION_MODES: tuple[str, ...] = ("auto", "paired", "coach")
#: modes of older runtimes that survive in older databases ('escalate': v0.1.3 to v0.1.11)
LEGACY_EXECUTION_MODES: tuple[str, ...] = ("escalate",)
