"""The README is what CI runs: its two set-up commands are .ci/run's, its example is a collected test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_block(after_heading: str, lang: str) -> str:
    section = README.split(after_heading, 1)[1]
    match = re.search(rf"```{lang}\n(.*?)```", section, re.DOTALL)
    assert match, f"no ```{lang} block after {after_heading!r}"
    return match.group(1)


def test_ci_runs_exactly_the_readme_commands() -> None:
    commands = [line for line in code_block("## Set-up", "bash").splitlines() if line.strip()]
    assert len(commands) == 2, "the set-up is one install command and one test command"
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    install = ci.index(commands[0])
    assert ci[-1] == commands[1], "the test command is the last thing CI runs"
    checks = ci[install + 1 : -1]
    assert checks == [
        "python3 -m ruff check .",
        "python3 -m ruff format --check .",
        "python3 -m mypy --strict",
        'python3 -c "from importlinter.cli import lint_imports_command; lint_imports_command()"',
    ], "between install and test, CI runs exactly the maintainer checks"


def test_readme_example_is_the_collected_example() -> None:
    block = code_block("## Quickstart", "python")
    lines = block.splitlines()
    assert lines[0].startswith("# test_harness.py: examples/test_quickstart.py")
    example = (ROOT / "examples" / "test_quickstart.py").read_text().splitlines()
    body = [line for line in example if not line.startswith('"""The README quickstart')]
    assert [line for line in lines[1:] if line.strip()] == [line for line in body if line.strip()]
    assert len([line for line in lines if line.strip()]) <= 16
