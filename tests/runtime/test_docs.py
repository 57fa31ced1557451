"""Every Python example of docs/runtime.md runs, as written, in a project of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def files(block: str) -> dict[str, str]:
    """A block is one or more files, each starting with a ``# name.py`` (or ``# folder/name.py``) line."""
    out: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        match = re.fullmatch(r"# ((?:\w+/)?\w+\.py)", line)
        if match:
            current = match.group(1)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    assert out, "every example starts with '# <file>.py'"
    return {name: "\n".join(lines) + "\n" for name, lines in out.items()}


@pytest.fixture(scope="module", autouse=True)
def atlas_loaded() -> None:
    """Atlas imported in this process first: pytester's in-process runs then keep it loaded (it would
    drop modules an inner run imported, and litellm's exit hook would import itself again)."""
    from pytest_atlas.runtime import _atlas

    _atlas._atlas()


def examples() -> dict[str, dict[str, str]]:
    """The page's examples: a block on its own, or the blocks of one folder together (a folder holds
    an example's own conftest.py, so that it does not replace the conftest of another example)."""
    out: dict[str, dict[str, str]] = {}
    for block in BLOCKS:
        found = files(block)
        first = next(iter(found))
        out.setdefault(first.partition("/")[0] if "/" in first else first, {}).update(found)
    return out


EXAMPLES = examples()


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 5
    assert len(EXAMPLES) == 4


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_example_runs(pytester: pytest.Pytester, example: str) -> None:
    found = EXAMPLES[example]
    for name, text in found.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    tests = sum(text.count("\ndef test_") + text.startswith("def test_") for text in found.values())
    result.assert_outcomes(passed=tests)
