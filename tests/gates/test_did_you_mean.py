"""One misspelt name in a declaration gets one message shape wherever declarations are checked:
``unknown <what> '<wrong>' (did you mean '<nearest>'?)``, where it was declared (the file and its
table, the ini line, the marker's test), and ``how to fix: valid <what>s...: <every valid one>``.

The shapes differed: ``unknown option(s) threshhold`` (unquoted, "allowed here:"), ``unknown
selection option 'statuss'`` ("use ..."), ``'gate': unknown key`` (the key outside the sentence),
``kind must be one of ..., got 'thresold'``, and no suggestion at all for an execution mode, a
contract table or a schemas key; a payload schema's suggestion was in the hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_atlas import AtlasError, ConfigError
from pytest_atlas.contracts import check_database
from pytest_atlas.gates._declare import parse_ini_line, read_pyproject
from pytest_atlas.validation import validator_for

GATE = "[tool.pytest-atlas.gates.g]\n"

#: (pyproject text, the table named, what is unknown, the wrong name, the nearest, some valid ones)
PYPROJECT = {
    "gate-option": (
        GATE + 'kind = "drift"\nwindw = 5',
        "[tool.pytest-atlas.gates].g",
        "option",
        "windw",
        "window",
        "min_baseline, review_status",
    ),
    "selection-option": (
        GATE + 'kind = "review"\nlearnig_key = "k"',
        "[tool.pytest-atlas.gates].g",
        "option",
        "learnig_key",
        "learning_key",
        "include_quarantined, last, learning_key",
    ),
    "baseline-selection-option": (
        GATE + 'kind = "regression"\nbaseline = { statuss = "succeeded" }',
        "[tool.pytest-atlas.gates].g",
        "selection option",
        "statuss",
        "status",
        "since, status, task, until",
    ),
    "kind": (GATE + 'kind = "thresold"', "[tool.pytest-atlas.gates].g", "kind", "thresold", "threshold", "drift"),
    "execution-mode": (
        GATE + 'kind = "execution_modes"\nmodes = { coahc = 0.2 }',
        "[tool.pytest-atlas.gates].g",
        "execution mode",
        "coahc",
        "coach",
        "auto, coach",
    ),
    "tool-key": ("[tool.pytest-atlas]\ngats = 1", "[tool.pytest-atlas]", "key", "gats", "gates", "accept, gates"),
    "accept-key": (
        GATE + 'kind = "review"\n[[tool.pytest-atlas.accept]]\ngate = "g"\nuntil = 2999-01-01\nreson = "x"',
        "[[tool.pytest-atlas.accept]][0]",
        "key",
        "reson",
        "reason",
        "gate, learning_key, reason, until",
    ),
}


def shape(what: str, wrong: str, nearest: str) -> str:
    return f"unknown {what} {wrong!r} (did you mean {nearest!r}?)"


@pytest.mark.parametrize("case", list(PYPROJECT), ids=str)
def test_a_misspelt_name_in_pyproject_has_one_message_shape(tmp_path: Path, case: str) -> None:
    text, table, what, wrong, nearest, valid = PYPROJECT[case]
    (tmp_path / "pyproject.toml").write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        read_pyproject(tmp_path / "pyproject.toml")
    message = str(info.value)
    assert f"pyproject.toml {table}" in message, message
    assert shape(what, wrong, nearest) in message, message
    assert f"how to fix: valid {what}s" in message and valid in message, message


@pytest.mark.parametrize(
    ("line", "what", "wrong", "nearest"),
    [
        ("g: kind=threshold threshold=0.7 threshhold=0.7", "option", "threshhold", "threshold"),
        ("g: kind=thresold threshold=0.7", "kind", "thresold", "threshold"),
    ],
)
def test_a_misspelt_name_in_an_ini_line_has_the_same_shape(line: str, what: str, wrong: str, nearest: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ini_line(line, "tox.ini atlas_gate")
    message = str(info.value)
    assert "tox.ini atlas_gate" in message and shape(what, wrong, nearest) in message, message
    assert f"how to fix: valid {what}s" in message, message


def test_a_misspelt_name_in_a_marker_has_the_same_shape(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
import pytest

@pytest.mark.atlas_gate("g", kind="threshold", threshold=0.5, threshhold=0.5)
def test_harness():
    pass
"""
    )
    result = pytester.runpytest("--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_marked.py::test_harness: gate 'g' (threshold): " + shape("option", "threshhold", "threshold"),
            "  how to fix: valid options of a threshold gate: *",
        ]
    )


def test_a_misspelt_name_is_a_usage_error_that_says_where(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=GATE + 'kind = "drift"\nwindw = 5\n')
    result = pytester.runpytest("--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid value for pyproject.toml [[]tool.pytest-atlas.gates].g: 'g': gate 'g' (drift): "
            + shape("option", "windw", "window"),
            "  how to fix: valid options of a drift gate: allow_inconclusive, by_key, *",
        ]
    )


@pytest.mark.parametrize(
    ("options", "what", "wrong", "nearest"),
    [
        ({"tables": ["sesions"]}, "table", "sesions", "sessions"),
        ({"tables": ["sessions.metdata"]}, "JSON column", "sessions.metdata", "sessions.metadata"),
        ({"schemas": {"sesions.metadata": "session-metadata"}}, "table", "sesions", "sessions"),
    ],
    ids=["table", "column", "schemas-key"],
)
def test_a_misspelt_contract_option_has_the_same_shape(
    options: dict[str, object], what: str, wrong: str, nearest: str
) -> None:
    """Checked before any connection (the DSN names no server)."""
    with pytest.raises(AtlasError) as info:
        check_database("postgresql://u@127.0.0.1:1/x", **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert shape(what, wrong, nearest) in message, message
    assert f"how to fix: valid {what}s" in message, message


def test_a_misspelt_payload_schema_has_the_same_shape() -> None:
    with pytest.raises(AtlasError) as info:
        validator_for("sesion-metadata")
    message = str(info.value)
    assert shape("payload schema", "sesion-metadata", "session-metadata") in message, message
    assert "how to fix: valid payload schemas: " in message, message


@pytest.mark.parametrize("kind", ["Threshold", " threshold ", "THRESHOLD"])
def test_a_kind_spelt_in_another_case_or_with_spaces_is_still_accepted(kind: str) -> None:
    """Only a name no spelling of the kinds matches is unknown: the kind's case and surrounding
    spaces were always forgiven (the one-message-shape check first refused 'Threshold')."""
    from pytest_atlas.gates import GateSpec

    assert GateSpec.build("g", {"kind": kind, "threshold": 0.5}).kind == "threshold"
