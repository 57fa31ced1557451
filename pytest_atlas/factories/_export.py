"""Loading ``arc-atlas export`` JSONL files back into a database.

Each line becomes a session graph: the columns come from the line's top-level keys and from the
keys the exporter added to ``session_metadata`` (``status``, ``created_at``, ``completed_at``);
each exported step gives a ``step_results`` row (its evaluation from ``metadata.raw_evaluation``,
its attempts from ``metadata.attempt_details``, its guidance notes from ``guidance``); the events
give ``trajectory_events`` rows in file order. The graphs are then inserted with COPY.

What the exporter loses cannot come back: NULL ``final_answer``/``trace``/
``output`` became ``""``, notes were stripped, and ``session_metadata`` keeps the setdefault copies
of ``review_status``, ``reward_stats`` and ``reward_audit``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

import psycopg

from pytest_atlas.domain import EXPORT_METADATA_KEYS, STEP_EXPORT_KEYS, SessionGraph
from pytest_atlas.errors import ExportFormatError, InvalidArgument
from pytest_atlas.factories._insert import insert_graphs

__all__ = ["graph_from_export", "load_export", "read_export"]

Doc = dict[str, Any]


def _when(value: Any, source: str, line: int, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ExportFormatError(source, line, f"{field} is {value!r}, expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExportFormatError(source, line, f"{field} is {value!r}, expected an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ExportFormatError(source, line, f"{field} is {value!r}, which has no UTC offset")
    return moment


def _strip_step_metadata(metadata: Any, depends_on: Any) -> Doc | None:
    if not isinstance(metadata, dict):
        return None
    stored = dict(metadata)
    for key in STEP_EXPORT_KEYS:
        if key == "depends_on" and stored.get(key) != depends_on:
            continue  # the step's own depends_on key, not the exporter's copy of the plan's
        stored.pop(key, None)
    if set(stored) == {"raw"}:  # a non-object value the exporter wrapped
        return stored  # kept as is: nothing tells an original {"raw": ...} apart
    return stored or None


def graph_from_export(
    record: Doc, *, keep_export_keys: bool = False, source: str = "<export>", line: int = 1
) -> SessionGraph:
    """One export line (parsed) as a :class:`SessionGraph`, without touching a database."""
    if not isinstance(record, dict):
        raise ExportFormatError(source, line, f"expected a JSON object, got {type(record).__name__}")
    for key, kind in (("task", str), ("steps", list), ("session_metadata", dict)):
        if not isinstance(record.get(key), kind):
            raise ExportFormatError(source, line, f"{key!r} is missing or not a {kind.__name__}")
    exported_meta: Doc = record["session_metadata"]
    metadata = dict(exported_meta)
    if not keep_export_keys:
        for key in EXPORT_METADATA_KEYS:
            metadata.pop(key, None)
    status = exported_meta.get("status")
    status = status if isinstance(status, str) and status else "succeeded"
    final_answer = record.get("final_answer")
    if status == "running" and final_answer == "":
        final_answer = None  # NULL while running; the exporter wrote ""
    session: Doc = {
        "task": record["task"],
        "status": status,
        "metadata": metadata or None,
        "final_answer": final_answer,
        "reward": record.get("session_reward") or None,
        "reward_stats": record.get("reward_stats") or None,
        "reward_audit": record.get("reward_audit") or None,
        "student_learning": record.get("student_learning"),
        "teacher_learning": record.get("teacher_learning"),
        "review_status": record.get("review_status") or "pending",
        "review_notes": record.get("review_notes"),
        "created_at": _when(exported_meta.get("created_at"), source, line, "session_metadata.created_at"),
        "completed_at": _when(exported_meta.get("completed_at"), source, line, "session_metadata.completed_at"),
    }
    plan = record.get("plan")
    plan_steps: dict[Any, Doc] = {}
    if isinstance(plan, dict):
        plan_steps = {s.get("id"): s for s in plan.get("steps") or [] if isinstance(s, dict)}
    graph = SessionGraph(session=session, plan=plan if isinstance(plan, dict) and plan else None)
    for position, step in enumerate(record["steps"]):
        if not isinstance(step, dict) or not isinstance(step.get("step_id"), int):
            raise ExportFormatError(source, line, f"steps[{position}] has no integer step_id")
        step_id = step["step_id"]
        raw_meta = step.get("metadata")
        metadata_doc: Doc = raw_meta if isinstance(raw_meta, dict) else {}
        evaluation = metadata_doc.get("raw_evaluation")
        if evaluation == {"raw": None} or evaluation is None:
            evaluation = None
        details = metadata_doc.get("attempt_details") or metadata_doc.get("attempt_history") or []
        graph.step_results.append(
            {
                "step_id": step_id,
                "trace": step.get("trace"),
                "output": step.get("output"),
                "evaluation": evaluation,
                "attempts": step.get("attempts"),
                "metadata": _strip_step_metadata(metadata_doc, plan_steps.get(step_id, {}).get("depends_on")),
            }
        )
        for detail in details:
            if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
                graph.step_attempts.append(
                    {"step_id": step_id, "attempt": detail["attempt"], "evaluation": detail.get("evaluation")}
                )
        for sequence, note in enumerate(step.get("guidance") or [], start=1):
            graph.guidance_notes.append({"step_id": step_id, "sequence": sequence, "note": str(note)})
    events: Any = record.get("trajectory_events")
    if not isinstance(events, list):
        events = exported_meta.get("trajectory_events")
    if not isinstance(events, list):
        events = []
    for position, item in enumerate(events):
        if not isinstance(item, dict) or "event" not in item:
            raise ExportFormatError(source, line, f"trajectory_events[{position}] has no 'event'")
        graph.trajectory_events.append(
            {
                "event": item["event"],
                "created_at": _when(item.get("created_at"), source, line, f"trajectory_events[{position}].created_at"),
            }
        )
    return graph


def read_export(
    path_or_lines: str | PathLike[str] | Iterable[str | Doc], *, keep_export_keys: bool = False
) -> list[SessionGraph]:
    """Parse an export (a path, or an iterable of JSON lines or already parsed dicts) into graphs."""
    if isinstance(path_or_lines, (str, PathLike)):
        path = Path(path_or_lines)
        if not path.is_file():
            raise InvalidArgument(
                f"load_export(): no such file: {path}",
                hint="pass the path of a file written by `arc-atlas export --output PATH`, or the lines themselves",
            )
        source = str(path)
        with path.open(encoding="utf-8") as handle:
            lines: list[str | Doc] = list(handle)
    else:
        try:
            lines = list(path_or_lines)
        except TypeError:
            raise InvalidArgument(
                f"load_export(): invalid path_or_lines={path_or_lines!r}: expected a path or an iterable of lines",
            ) from None
        source = "<lines>"
    graphs: list[SessionGraph] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, dict):
            record: Any = raw
        elif isinstance(raw, (str, bytes)):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ExportFormatError(source, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        else:
            raise ExportFormatError(source, number, f"expected a JSON line or a dict, got {type(raw).__name__}")
        graphs.append(graph_from_export(record, keep_export_keys=keep_export_keys, source=source, line=number))
    return graphs


def load_export(
    conn: psycopg.Connection[Any],
    path_or_lines: str | PathLike[str] | Iterable[str | Doc],
    *,
    keep_export_keys: bool = False,
) -> list[int]:
    """Insert the sessions of an ``arc-atlas export`` file; returns the new ``sessions.id`` values.

    ``path_or_lines``: a path to the JSONL file, or an iterable of its lines (strings) or parsed
    objects. ``keep_export_keys=True`` keeps ``session_metadata`` exactly as exported (with the
    exporter's ``session_id``, ``status``, ``created_at``, ``completed_at`` and
    ``trajectory_events`` keys); by default those go back into their columns and tables. The file
    is read whole and checked before anything is inserted; the sessions go in with COPY under a
    savepoint (nothing is committed).
    """
    graphs = read_export(path_or_lines, keep_export_keys=keep_export_keys)
    return insert_graphs(conn, graphs)
