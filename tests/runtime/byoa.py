"""A Bring-Your-Own-Agent module, the way a harness author writes one for Atlas's Python adapter."""

from __future__ import annotations

import json
from typing import Any

CALLS: list[dict[str, Any]] = []


def agent(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    """A plain function: Atlas runs it in a worker thread and stores its text."""
    CALLS.append(dict(metadata or {}))
    if (metadata or {}).get("mode") == "planning":
        return json.dumps({"steps": [{"id": 1, "description": "Look it up", "depends_on": []}]})
    return json.dumps({"status": "ok", "result": {"deliverable": f"BYOA: {(metadata or {}).get('task_payload')}"}})
