"""Baseline files are checked for internal consistency; damaged, mangled and hostile files are errors
naming the file (exit status 7), never a crash and never a silent comparison."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_atlas import BaselineFileError
from pytest_atlas.gates import Selection, fetch_series, read_baseline, read_field_baselines, write_baseline
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .gates_seed import insert, session_row


@pytest.fixture
def saved(atlas_db: psycopg.Connection[Any], tmp_path: Path) -> dict[str, Any]:
    """A baseline file written by pytest-atlas from real sessions (two keys, tasks, worst sessions)."""
    rows = [
        session_row(round(0.55 + (i * 37 % 41) / 100, 4), key=f"k{i % 2}", task=f"task {i % 3}", minute=i)
        for i in range(60)
    ]
    insert(atlas_db, rows)
    series = fetch_series(atlas_db, Selection(), digits=2)
    path = write_baseline(tmp_path / "baseline.json", {"g": series})
    document = json.loads(path.read_text())
    assert read_baseline(path)["g"]["k0"].n == 30  # the file as written is accepted
    return document


def damaged(tmp_path: Path, document: dict[str, Any], change: Any) -> Path:
    copied = copy.deepcopy(document)
    change(copied)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(copied))
    return path


def series(document: dict[str, Any]) -> dict[str, Any]:
    return document["gates"]["g"]["k0"]


CHANGES = [
    ("mean edited by hand", lambda d: series(d).update(mean=series(d)["mean"] + 0.05), "mean * does not agree"),
    (
        "variance edited",
        lambda d: series(d).update(variance=series(d)["variance"] * 4),
        "variance * does not agree with the frequency table",
    ),
    ("a count changed", lambda d: series(d)["counts"].__setitem__(0, series(d)["counts"][0] + 1), "n is 30 but"),
    ("n changed", lambda d: series(d).update(n=31), "n is 31 but the counts add up to 30"),
    ("values out of order", lambda d: series(d)["values"].reverse(), "values must be strictly increasing"),
    ("values not rounded", lambda d: series(d)["values"].__setitem__(0, series(d)["values"][0] + 0.001), "not rounded"),
    ("a negative count", lambda d: series(d)["counts"].__setitem__(0, -1), "counts[0] must be an integer"),
    ("a huge count", lambda d: series(d)["counts"].__setitem__(0, 10**30), "counts[0] must be an integer from 1"),
    ("a field removed", lambda d: series(d).pop("digits"), "missing field(s) digits"),
    ("a field added", lambda d: series(d).update(extra=1), "unknown field(s) 'extra'"),
    ("the key renamed", lambda d: d["gates"]["g"].update(renamed=d["gates"]["g"].pop("k0")), "the series says"),
    ("worst out of order", lambda d: series(d)["worst"].reverse(), "worst must list distinct sessions"),
    ("a task count changed", lambda d: next(iter(series(d)["tasks"].values())).__setitem__(1, 99), "task counts add"),
    (
        "a task mean changed",
        lambda d: next(iter(series(d)["tasks"].values())).__setitem__(0, 0.0),
        "the per-task means average",
    ),
    ("the version", lambda d: d.update(version=1), "format version 1 is not supported"),
    ("an unknown top-level field", lambda d: d.update(comment="x"), "unknown top-level field(s) 'comment'"),
    # version 2 had no field census: a file claiming version 2 with one was edited or damaged
    ("fields in a version 2 file", lambda d: d.update(version=2), "unknown top-level field(s) 'fields'"),
    ("created mangled", lambda d: d.update(created="yesterday"), '"created" must be an ISO date-time'),
]


@pytest.mark.parametrize(("what", "change", "message"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_damaged_file_is_an_error_naming_file_gate_and_key(
    saved: dict[str, Any], tmp_path: Path, what: str, change: Any, message: str
) -> None:
    path = damaged(tmp_path, saved, change)
    with pytest.raises(BaselineFileError) as info:
        read_baseline(path)
    text = str(info.value)
    assert str(path) in text and "how to fix:" in text
    pattern = ".*".join(re.escape(part) for part in message.split("*"))
    assert re.search(pattern, text.splitlines()[0]), text


def test_a_version_2_file_reads_with_no_field_census(saved: dict[str, Any], tmp_path: Path) -> None:
    path = damaged(tmp_path, saved, lambda d: (d.update(version=2), d.pop("fields")))
    assert read_baseline(path)["g"]["k0"].n == 30
    assert read_field_baselines(path) == {}


def test_nan_and_infinity_are_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(saved).replace(str(series(saved)["mean"]), "NaN", 1))
    with pytest.raises(BaselineFileError, match="NaN is not a number JSON allows"):
        read_baseline(path)
    path.write_text(json.dumps(saved).replace(str(series(saved)["mean"]), "1e999", 1))
    with pytest.raises(BaselineFileError, match="mean must be a finite number"):
        read_baseline(path)


HOSTILE = {
    "deep": lambda: '{"format": "pytest-atlas-baseline", "gates": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "huge-count": lambda: json.dumps(
        {
            "format": "pytest-atlas-baseline",
            "version": 2,
            "created": "2025-06-01T00:00:00+00:00",
            "source": None,
            "gates": {
                "no-regression": {
                    "k1": {
                        "learning_key": "k1",
                        "digits": 4,
                        "n": 10**30,
                        "mean": 0.5,
                        "variance": 0.0,
                        "values": [0.5],
                        "counts": [10**30],
                        "missing": 0,
                        "worst": [],
                        "tasks": None,
                        "uncertainty_mean": None,
                        "uncertain": 0,
                    }
                }
            },
        }
    ),
    "long-integer": lambda: '{"format": "pytest-atlas-baseline", "version": ' + "9" * 50_000 + "}",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_files_are_exit_7_naming_the_file(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, tmp_path: Path, kind: str
) -> None:
    insert(atlas_db, [session_row(0.8, minute=i) for i in range(10)])
    atlas_db.commit()
    path = tmp_path / f"{kind}.json"
    path.write_text(HOSTILE[kind]())
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.no-regression]\nkind = "regression"\n')
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-baseline={path}")
    assert result.ret == 7
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"baseline file {path}: *"])
    text = result.stdout.str()
    assert "RecursionError" not in text and "OverflowError" not in text and "Traceback" not in text
