"""Baseline files: the reward series a trusted run saw, per gate and learning key (JSON)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_atlas.errors import BaselineFileError, InvalidArgument
from pytest_atlas.gates._query import Series

__all__ = ["FORMAT", "VERSION", "read_baseline", "write_baseline"]

FORMAT = "pytest-atlas-baseline"
VERSION = 1


def write_baseline(
    path: str | os.PathLike[str], gates: Mapping[str, Mapping[str, Series]], *, source: str | None = None
) -> Path:
    """Write ``{gate name: {learning key: series}}`` to ``path`` atomically (never half a file)."""
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
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".baseline-", suffix=".json", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, target)
    except OSError as exc:
        raise BaselineFileError(
            str(target),
            f"cannot be written: {exc.strerror or exc}",
            hint="choose a writable path for --atlas-save-baseline",
        ) from None
    return target


def read_baseline(path: str | os.PathLike[str]) -> dict[str, dict[str, Series]]:
    """Read a baseline file. Every problem raises BaselineFileError saying what and where."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineFileError(where, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineFileError(where, f"cannot be read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineFileError(where, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BaselineFileError(where, f'not a pytest-atlas baseline (expected "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise BaselineFileError(
            where,
            f"format version {document.get('version')!r} is not supported (this pytest-atlas reads version {VERSION})",
            hint="save the baseline again with this version of pytest-atlas",
        )
    gates = document.get("gates")
    if not isinstance(gates, dict):
        raise BaselineFileError(where, '"gates" must be an object of gate name -> series by learning key')
    out: dict[str, dict[str, Series]] = {}
    for name, keys in gates.items():
        if not isinstance(keys, dict):
            raise BaselineFileError(where, f"gate {name!r}: expected an object of learning key -> series")
        out[name] = {}
        for key, data in keys.items():
            if not isinstance(data, dict):
                raise BaselineFileError(where, f"gate {name!r}, key {key!r}: expected a series object")
            try:
                out[name][key] = Series.from_json(data)
            except InvalidArgument as exc:
                raise BaselineFileError(where, f"gate {name!r}, key {key!r}: {exc.problem}") from None
    return out
