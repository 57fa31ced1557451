"""Gate declarations: TOML tables, ini lines, the allow-list, and their error messages."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from pytest_atlas import ConfigError, InvalidArgument
from pytest_atlas.gates import GateSpec, Selection
from pytest_atlas.gates._declare import parse_ini_line, read_pyproject


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    return path


def test_tables_arrays_and_ini_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[tool.pytest-atlas.gates]]
name = "floor"
kind = "threshold"
threshold = 0.7
since = 2025-01-01
metadata = { run = "nightly" }

[[tool.pytest-atlas.accept]]
gate = "floor"
until = 2026-02-01
reason = "ticket 7"
""",
    )
    declared = read_pyproject(path, ["modes: kind=execution_modes modes={coach=0.2} by_key=false"], "tox.ini")
    floor, modes = declared.gates
    assert declared.origins == ("pyproject.toml", "tox.ini")
    assert floor.options.threshold == 0.7 and floor.selection.metadata == {"run": "nightly"}
    assert floor.selection.since is not None and floor.selection.since.isoformat() == "2025-01-01T00:00:00+00:00"
    assert modes.options.modes == {"coach": (0.0, 0.2)} and modes.by_key is False
    (accepted,) = declared.accepted
    assert accepted.until == date(2026, 2, 1) and accepted.expired(date(2026, 2, 2))
    assert not accepted.expired(date(2026, 2, 1)) and accepted.matches("floor", "any key")


def test_ini_values_are_toml_or_bare_words() -> None:
    spec = parse_ini_line(
        'r: kind=regression status=["succeeded","failed"] learning_key=abc min_effect=false', "ini atlas_gate"
    )
    assert spec.selection.status == ("succeeded", "failed") and spec.selection.learning_key == ("abc",)
    assert spec.options.min_effect is None
    with pytest.raises(ConfigError, match="expected 'NAME: key=value"):
        parse_ini_line("no colon here", "ini atlas_gate")
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_ini_line("g: kind=threshold threshold", "ini atlas_gate")


def test_ini_values_are_whole_toml_values_spaces_included() -> None:
    """A TOML string, array or inline table with spaces in it is one value (it was split at the spaces:
    ``task="Task 1: triage"`` was refused with "'1:': expected key=value")."""
    spec = parse_ini_line(
        'r: kind = regression task="Task 1: triage" metadata={ run = "main", team = "a b" } '
        'status=["succeeded", "failed"] learning_key=abc',
        "ini atlas_gate",
    )
    assert spec.selection.task == ("Task 1: triage",)
    assert spec.selection.metadata == {"run": "main", "team": "a b"}
    assert spec.selection.status == ("succeeded", "failed") and spec.selection.learning_key == ("abc",)
    modes = parse_ini_line("m: kind=execution_modes modes={ coach = 0.2, auto = [0.5, 1.0] }", "ini atlas_gate")
    assert modes.options.modes == {"coach": (0.0, 0.2), "auto": (0.5, 1.0)}
    fields = parse_ini_line('f: kind=fields exclude=["$.a b", "$.c"]', "ini atlas_gate")
    assert fields.options.exclude == ("$.a b", "$.c")
    with pytest.raises(ConfigError, match="threshold is given twice"):
        parse_ini_line("g: kind=threshold threshold=0.3 threshold=0.9", "ini atlas_gate")
    with pytest.raises(ConfigError, match=re.escape("'0.9': expected key=value")):
        parse_ini_line("g: kind=threshold threshold=0.3 0.9", "ini atlas_gate")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tool.pytest-atlas.gates.g]\nkind = "treshold"', "unknown kind 'treshold' (did you mean 'threshold'?)"),
        ('[tool.pytest-atlas.gates.g]\nkind = "threshold"', "a threshold gate needs threshold"),
        ('[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = "high"', "threshold must be a number"),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "regression"\ntolerance = 0.1\nmin_effect = 0.05',
            "min_effect must be larger than tolerance",
        ),
        ('[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nlast = 0', "last must be a positive"),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nsince = "yesterday"',
            "since is 'yesterday', not an ISO date",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nsince = 2025-02-01\nuntil = 2025-01-01',
            "is not before until",
        ),
        ('[tool.pytest-atlas.gates.g]\nkind = "execution_modes"\nmodes = { turbo = 0.2 }', "unknown execution mode"),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nalpha = 0.9',
            "alpha must be a number in (0, 0.5]",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n'
            '[[tool.pytest-atlas.accept]]\ngate = "h"\nuntil = 2026-01-01\nreason = "x"',
            "names no declared gate",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n'
            '[[tool.pytest-atlas.accept]]\ngate = "g"\nreason = "x"',
            "needs an expiry date",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n'
            '[[tool.pytest-atlas.accept]]\ngate = "g"\nuntil = 2026-01-01',
            "say why the regression is accepted",
        ),
        ("[tool.pytest-atlas\n", "not valid TOML"),
        # every option against its type, range and Atlas's own words
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 7',
            "threshold must be a number in [0, 1], got 7",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nstatus = ["succeded"]',
            "status 'succeded' is not a value Atlas writes (did you mean 'succeeded'?)",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "review"\nreview_status = "reviewed"',
            "review_status 'reviewed' is not a value Atlas writes",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "regression"\nbaseline = { status = "done" }',
            "baseline: status 'done' is not a value Atlas writes",
        ),
        ('[tool.pytest-atlas.gates.g]\nkind = "regression"\nmin_effect = 2', "min_effect must be a number in (0, 1]"),
        ('[tool.pytest-atlas.gates.g]\nkind = "regression"\ntolerance = -0.1', "tolerance must be a number in [0, 1]"),
        ('[tool.pytest-atlas.gates.g]\nkind = "regression"\ndigits = 20', "digits must be an integer from 0 to 12"),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "regression"\nallow_new_keys = "yes"',
            "allow_new_keys must be true or false",
        ),
        ('[tool.pytest-atlas.gates.g]\nkind = "drift"\nmin_baseline = 80', "min_baseline (80) is larger than window"),
        ('[tool.pytest-atlas.gates.g]\nkind = "drift"\nz_threshold = 0', "z_threshold must be a number above 0"),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nmethod = "anova"',
            "method 'anova' is not a known method",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nn_resamples = 100000000',
            "n_resamples must be an integer from 100 to 1000000",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nmax_uncertainty = 3',
            "max_uncertainty must be a number in [0, 1]",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\nlearning_key = ["a", ""]',
            "learning_key holds an empty or unusable string ''",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "review"\nmax_pending_share = 1.5',
            "max_pending_share must be a number in [0, 1]",
        ),
        ('[tool.pytest-atlas.gates.g]\nkind = "review"\ndescription = 3', "description must be a string"),
    ],
)
def test_every_mistake_names_itself(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        read_pyproject(write(tmp_path, toml))
    assert "pyproject.toml" in str(info.value)
    if "gates.g]" in toml and "accept" not in toml:  # the gate's name and where it was declared
        assert "[tool.pytest-atlas.gates].g" in str(info.value) and "gate 'g'" in str(info.value)


def test_ini_lines_and_markers_name_the_gate_and_where_it_was_declared(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\natlas_gate =\n    floor: kind=threshold threshold=7\n")
    ini = pytester.runpytest("--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly")
    assert ini.ret == pytest.ExitCode.USAGE_ERROR
    ini.stderr.fnmatch_lines(
        ["*tox.ini atlas_gate (floor)*gate 'floor': threshold must be a number in [[]0, 1], got 7*"]
    )
    (pytester.path / "tox.ini").unlink()
    pytester.makepyfile(
        test_marked="""
import pytest

@pytest.mark.atlas_gate("share", kind="execution_modes", modes={"turbo": 0.2})
def test_harness():
    pass
"""
    )
    marker = pytester.runpytest("--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly")
    assert marker.ret == pytest.ExitCode.INTERRUPTED  # a collection error of its module
    marker.stdout.fnmatch_lines(["*test_marked.py::test_harness: gate 'share': modes: unknown execution mode 'turbo'*"])


def test_duplicate_names_between_pyproject_and_ini(tmp_path: Path) -> None:
    path = write(tmp_path, '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n')
    with pytest.raises(ConfigError, match="gate names must be unique"):
        read_pyproject(path, ["g: kind=review"])


def test_no_pyproject_is_no_gates(tmp_path: Path) -> None:
    assert read_pyproject(tmp_path / "pyproject.toml").gates == ()


def test_spec_and_selection_refuse_bad_names() -> None:
    with pytest.raises(InvalidArgument, match="gate name 'a:b' is not usable"):
        GateSpec.build("a:b", {"kind": "review"})
    with pytest.raises(InvalidArgument, match="unknown selection option 'learningkey'"):
        Selection.build(learningkey="x")
    assert Selection.build(review_status="quarantined").excludes_quarantined() is False
    assert Selection().excludes_quarantined() is True


def test_an_acceptance_covers_failures_through_its_last_day_and_then_fails_the_gate() -> None:
    from pytest_atlas._outcome import Outcome
    from pytest_atlas.gates import Acceptance, GateResult, KeyResult, accept

    failed = KeyResult("k1", 10, "mean", 0.5, "[0.4, 0.6]", ">= 0.7", Outcome.FAIL, "below")
    result = GateResult("floor", "threshold", (failed,))
    entry = Acceptance("floor", date(2026, 3, 31), "ticket 42", "k1")
    on_the_day = accept(result, [entry], date(2026, 3, 31))
    assert on_the_day.outcome is Outcome.PASS and on_the_day.rows[0].accepted == "until 2026-03-31: ticket 42"
    after = accept(result, [entry], date(2026, 4, 1))
    assert after.outcome is Outcome.FAIL and after.rows[0].accepted is None
    assert after.expired == ("accepted regression expired on 2026-03-31: gate floor, learning key k1 (ticket 42)",)
    other_key = accept(result, [Acceptance("floor", date(2026, 3, 31), "t", "k2")], date(2026, 3, 1))
    assert other_key.outcome is Outcome.FAIL


def test_every_kind_is_one_table_entry_and_its_options_are_its_own() -> None:
    """Declarations go through the table: a kind accepts exactly its module's options."""
    from pytest_atlas.gates import KINDS

    assert list(KINDS) == ["threshold", "regression", "drift", "review", "execution_modes", "fields"]
    assert KINDS["review"].option_names == {"max_pending_share"}
    assert "alpha" in KINDS["threshold"].option_names and "alpha" not in KINDS["drift"].option_names
    with pytest.raises(InvalidArgument, match=r"gate 'd' \(drift\): unknown option 'alpha'"):
        GateSpec.build("d", {"kind": "drift", "alpha": 0.01})
    spec = GateSpec.build("m", {"kind": "execution_modes", "modes": {"coach": [0.1, 0.2]}, "status": "failed"})
    assert spec.describe() == {"kind": "execution_modes", "status": ["failed"], "modes": {"coach": [0.1, 0.2]}}


@pytest.mark.parametrize(
    ("toml", "message", "valid"),
    [
        # a table of [tool.pytest-atlas] with a typo: its gates were silently not declared
        (
            '[tool.pytest-atlas.gate.floor]\nkind = "threshold"\nthreshold = 0.5',
            "[tool.pytest-atlas]: unknown key 'gate' (did you mean 'gates'?)",
            "valid keys of [tool.pytest-atlas]: accept, gates",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n'
            '[[tool.pytest-atlas.acept]]\ngate = "g"\nuntil = 2026-01-01\nreason = "x"',
            "[tool.pytest-atlas]: unknown key 'acept' (did you mean 'accept'?)",
            "valid keys of [tool.pytest-atlas]: accept, gates",
        ),
        # a stray key: nothing close to suggest, but the valid ones are listed
        (
            '[tool.pytest-atlas]\nthreshold = 0.7\n[tool.pytest-atlas.gates.g]\nkind = "review"',
            "[tool.pytest-atlas]: unknown key 'threshold'\n",
            "valid keys of [tool.pytest-atlas]: accept, gates",
        ),
        # the table itself misspelt
        (
            '[tool.pytest_atlas.gates.g]\nkind = "review"',
            "[tool.pytest_atlas]: 'pytest_atlas': unknown table (did you mean [tool.pytest-atlas]?)",
            "pytest-atlas reads [tool.pytest-atlas]",
        ),
        # one gate's keys: tables and arrays of tables, and the selection nested in a regression gate
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshhold = 0.5',
            "unknown option 'threshhold' (did you mean 'threshold'?)",
            "valid options of a threshold gate: allow_inconclusive, alpha",
        ),
        (
            '[[tool.pytest-atlas.gates]]\nname = "g"\nkind = "review"\nmax_pending_shar = 0.1',
            "unknown option 'max_pending_shar' (did you mean 'max_pending_share'?)",
            "valid options of a review gate: ",
        ),
        (
            '[tool.pytest-atlas.gates.g]\nkind = "regression"\nbaseline = { statuss = "succeeded" }',
            "baseline: unknown selection option 'statuss' (did you mean 'status'?)",
            "valid selection options: include_quarantined, last, learning_key",
        ),
        # an accepted regression's keys
        (
            '[tool.pytest-atlas.gates.g]\nkind = "threshold"\nthreshold = 0.5\n'
            '[[tool.pytest-atlas.accept]]\ngate = "g"\nuntil = 2026-01-01\nreasn = "x"',
            "unknown key 'reasn' (did you mean 'reason'?)",
            "valid keys of an accepted regression: gate, learning_key, reason, until",
        ),
    ],
    ids=["gate-table", "acept-table", "stray-key", "tool-table", "gate-key", "gate-array-key", "nested", "accept-key"],
)
def test_unknown_keys_are_refused_at_every_level(tmp_path: Path, toml: str, message: str, valid: str) -> None:
    """An unknown table or key is a mistake, never ignored: ``[tool.pytest-atlas.gate.X]`` declared
    no gate at all (and the run passed on the other gates)."""
    with pytest.raises(ConfigError) as info:
        read_pyproject(write(tmp_path, toml))
    text = str(info.value) + "\n"
    assert "pyproject.toml" in text and message in text, text
    assert f"how to fix: {valid}" in text, text


def test_other_tools_tables_are_left_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[tool.pytest]\nminversion = "8.0"\n[tool.atlas]\nx = 1\n[tool.pytest-atlas.gates.g]\nkind = "review"\n',
    )
    assert [gate.name for gate in read_pyproject(path).gates] == ["g"]


def test_an_unknown_key_is_a_usage_error_at_startup(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest-atlas.gates.g]\nkind = "review"\n[tool.pytest-atlas.gate.floor]\nkind = "threshold"\n',
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid value for pyproject.toml [[]tool.pytest-atlas]: unknown key 'gate' (did you mean 'gates'?)",
            "  how to fix: valid keys of [[]tool.pytest-atlas]: accept, gates",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


_BAD_MARKERS = {
    "test_bad_option": """
import pytest

@pytest.mark.atlas_gate("share", kind="execution_modes", modes={"turbo": 0.2})
def test_harness():
    pass
""",
    "test_no_name": """
import pytest

@pytest.mark.atlas_gate(kind="review")
def test_harness():
    pass
""",
    "test_twice": """
import pytest

@pytest.mark.parametrize("model", ["a", "b"])
@pytest.mark.atlas_gate("per-model", kind="review")
def test_harness(model):
    pass
""",
    "test_also_in_pyproject": """
import pytest

class TestHarness:
    @pytest.mark.atlas_gate("floor", kind="review")
    def test_harness(self):
        pass
""",
}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_bad_marker_is_a_collection_error_that_shows_its_message(pytester: pytest.Pytester, xdist: list[str]) -> None:
    """Each mistake in an ``atlas_gate`` marker is an error of the module it is in, with its message,
    in one process and under pytest-xdist alike (a worker's usage error was an INTERNALERROR of
    the controller, and the message was lost). Nothing runs."""
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.5\n')
    pytester.makepyfile(**_BAD_MARKERS, test_fine="def test_fine():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--atlas-gates", "--atlas-target=postgresql://u@127.0.0.1:1/x", "-p", "no:randomly", *xdist
    )
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output, output
    assert result.ret == pytest.ExitCode.INTERRUPTED, output
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_also_in_pyproject.py*",
            "*gate name 'floor' is declared twice (test_also_in_pyproject.py::TestHarness::test_harness*",
            "*give each gate its own name*",
            "*ERROR collecting test_bad_option.py*",
            "test_bad_option.py::test_harness: gate 'share': modes: unknown execution mode 'turbo'",
            "*ERROR collecting test_no_name.py*",
            "test_no_name.py::test_harness: @pytest.mark.atlas_gate needs the gate name as its first argument*",
            "*ERROR collecting test_twice.py*",
            "gate name 'per-model' is declared twice (test_twice.py::test_harness[[]b[]]; first in *[[]a[]])",
            "*a marker on a parametrized test declares its gate once per parameter*",
        ]
    )
    assert "Interrupted: 4 errors during collection !!!" in output, output
    # the declared gate is reported as not run, and why (pytest-xdist's controller only knows it was interrupted)
    assert any(
        re.fullmatch(r"floor: not run: the run (was interrupted|stopped) before it.*", line)
        for line in result.stdout.lines
    ), output
    assert re.fullmatch(r"=+ 4 errors in .*", result.stdout.lines[-1]), result.stdout.lines[-1]
