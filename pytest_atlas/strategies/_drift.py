"""``sessions.metadata.drift`` documents as Atlas writes them.

The arithmetic is :mod:`pytest_atlas.stats` (Atlas's baseline and assessment, reproduced exactly
and tested against Atlas's own code); this module adds what Atlas adds when it stores the result:
the ``message`` key, present only on an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_atlas.stats._atlas import assess_drift, reward_baseline

__all__ = ["drift_document", "reward_baseline"]


def drift_document(
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    threshold: float,
    window: int,
    min_baseline: int,
    learning_key: str | None,
) -> dict[str, Any]:
    """The drift document Atlas stores for ``current`` (reward_stats) against ``baseline``
    (:func:`reward_baseline` of the window, newest first, current session included)."""
    document = assess_drift(
        dict(current),
        baseline,
        threshold=threshold,
        min_baseline=min_baseline,
        window=window,
        learning_key=learning_key,
    )
    assert document is not None  # current is a dict
    if document["alert"]:
        document["message"] = f"Reward drift alert ({document['reason'] or 'threshold'})"
    return document
