"""Baseline files: the reward series a trusted run saw, per gate and learning key, and the field
census each fields gate saw (JSON)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_atlas.db import NoSpaceError, UnsafePathError, UnusableFolderError, write_output
from pytest_atlas.errors import BaselineFileError, InvalidArgument
from pytest_atlas.gates._fields import PathCensus
from pytest_atlas.gates._series import Series, check_series

__all__ = ["FORMAT", "VERSION", "read_baseline", "read_field_baselines", "write_baseline"]

FORMAT = "pytest-atlas-baseline"
#: version 2 added ``digits`` to every series (so that rounding can be checked); version 3 the
#: ``fields`` section (the field census of every fields gate)
VERSION = 3
#: the versions this pytest-atlas reads (a version 2 file has no field census)
READS = (2, 3)


def write_baseline(
    path: str | os.PathLike[str],
    gates: Mapping[str, Mapping[str, Series]],
    *,
    source: str | None = None,
    fields: Mapping[str, PathCensus] | None = None,
) -> Path:
    """Write ``{gate name: {learning key: series}}`` and the fields gates' ``{gate name: census}`` to
    ``path`` atomically (never half a file)."""
    target = Path(path)
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "gates": {
            name: {key: series.to_json() for key, series in sorted(keys.items())}
            for name, keys in sorted(gates.items())
        },
        "fields": {name: census.to_json() for name, census in sorted((fields or {}).items())},
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    try:
        write_output(target, text.encode("utf-8"))
    except (UnsafePathError, UnusableFolderError, NoSpaceError) as exc:
        raise BaselineFileError(str(target), f"is not written: {exc.problem}", hint=exc.hint) from None
    except OSError as exc:
        raise BaselineFileError(
            str(target),
            f"cannot be written: {exc.strerror or exc}",
            hint="choose a writable path for --atlas-save-baseline",
        ) from None
    return target


#: the largest baseline file read (a real one holds a few MB: tasks, frequency tables, worst sessions)
MAX_BYTES = 256 * 1024 * 1024
_TOP_LEVEL = frozenset({"format", "version", "created", "source", "gates", "fields"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked top level of a baseline file (see :func:`read_baseline`)."""
    where = str(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            raise BaselineFileError(where, f"is {size:,} bytes, more than a baseline file can be (256 MB)")
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineFileError(where, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineFileError(where, f"cannot be read: {exc}") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BaselineFileError(where, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise BaselineFileError(
            where, "not a baseline: nested deeper than any baseline file (or Python) goes"
        ) from None
    except ValueError as exc:  # NaN / Infinity, integers too long to convert
        raise BaselineFileError(where, f"not valid JSON for a baseline: {str(exc)[:200]}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BaselineFileError(where, f'not a pytest-atlas baseline (expected "format": "{FORMAT}")')
    if document.get("version") not in READS or isinstance(document.get("version"), bool):
        raise BaselineFileError(
            where,
            f"format version {_shown(document.get('version'))} is not supported "
            f"(this pytest-atlas reads versions {', '.join(map(str, READS))})",
            hint="save the baseline again with this version of pytest-atlas",
        )
    unknown = sorted(set(document) - (_TOP_LEVEL if document["version"] == 3 else _TOP_LEVEL - {"fields"}))
    if unknown:
        raise BaselineFileError(where, "unknown top-level field(s) " + ", ".join(map(_shown, unknown)))
    created = document.get("created")
    try:
        if not isinstance(created, str):
            raise ValueError
        datetime.fromisoformat(created)
    except ValueError:
        raise BaselineFileError(where, f'"created" must be an ISO date-time, got {_shown(created)}') from None
    if document.get("source") is not None and not isinstance(document.get("source"), str):
        raise BaselineFileError(where, f'"source" must be a string or null, got {_shown(document.get("source"))}')
    if document["version"] == 3 and not isinstance(document.get("fields"), dict):
        raise BaselineFileError(where, '"fields" must be an object of gate name -> field census')
    return document


def read_baseline(path: str | os.PathLike[str]) -> dict[str, dict[str, Series]]:
    """Read the reward series of a baseline file. Every problem raises BaselineFileError saying what
    and where.

    Checked: the file is at most 256 MB of UTF-8 JSON (no NaN or Infinity, nesting Python can
    load); ``format`` and ``version`` are this pytest-atlas's; exactly the top-level fields it
    writes, ``created`` an ISO date-time and ``source`` a string or null; every gate an object of
    learning key -> series whose ``learning_key`` is its key; and every series internally
    consistent (:func:`~pytest_atlas.gates._series.check_series`).
    """
    where = str(path)
    document = _document(path)
    gates = document.get("gates")
    if not isinstance(gates, dict):
        raise BaselineFileError(where, '"gates" must be an object of gate name -> series by learning key')
    out: dict[str, dict[str, Series]] = {}
    for name, keys in gates.items():
        if not isinstance(keys, dict):
            raise BaselineFileError(where, f"gate {_shown(name)}: expected an object of learning key -> series")
        out[name] = {}
        for key, data in keys.items():
            try:
                series = check_series(data)
            except InvalidArgument as exc:
                raise BaselineFileError(where, f"gate {_shown(name)}, key {_shown(key)}: {exc.problem}") from None
            if series.learning_key != key:
                raise BaselineFileError(
                    where,
                    f"gate {_shown(name)}, key {_shown(key)}: the series says it is learning key "
                    f"{_shown(series.learning_key)}",
                )
            out[name][key] = series
    return out


def read_field_baselines(path: str | os.PathLike[str]) -> dict[str, PathCensus]:
    """Read the field censuses of a baseline file (none in a version 2 file), each checked
    (:meth:`~pytest_atlas.gates._fields.PathCensus.from_json`); problems raise BaselineFileError."""
    document = _document(path)
    out: dict[str, PathCensus] = {}
    for name, data in (document.get("fields") or {}).items():
        try:
            out[name] = PathCensus.from_json(data)
        except InvalidArgument as exc:
            raise BaselineFileError(str(path), f"fields gate {_shown(name)}: {exc.problem}") from None
    return out


def _shown(value: Any) -> str:
    """A value as an error message shows it: repr (control characters escaped), at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
