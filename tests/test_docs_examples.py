"""Every example in README.md and docs/ is run: extracted from the Markdown, never copied by hand.

How to write a block (for everyone who adds or edits a page; every page under docs/ is picked up):

* ```` ```python ```` blocks run.

  - A block that defines a ``test_*`` function is a **test module**. All test modules of a page
    run together in one inner pytest (pytester) with pytest-atlas active and a server of its own;
    every test must pass. Tests may use any fixture: pytest-atlas's (``atlas_db``, ``atlas_dsn``,
    ``atlas_tx``, ``atlas_factory``, ``atlas_postgres``, ``atlas_database``, ``atlas_async_db``, and
    any ``atlas_*`` fixture a later version adds) and pytest's own (``tmp_path``, ``monkeypatch``...).
  - A block without a test function is a **snippet**: it runs as the body of a generated test whose
    arguments are the fixtures it names. A snippet that uses ``atlas_dsn`` gets the DSN of a fresh
    database with the Atlas schema; everything else it uses it must define or import itself.
  - Stand-ins for "your code" (a dashboard, a loader) are defined in the block, so that the block
    runs as it is when copied.
* A block whose **first line is a comment naming a file** (``# conftest.py``, ``# test_harness.py:
  ...``, ``-- migrations/0042_add_index.sql``) is written to that file of the page's project before
  the page runs: that is how a page shows a conftest or a SQL file its examples use.
* ```` ```toml ```` blocks are ``pyproject.toml`` fragments. A page's TOML blocks are joined in order
  (a later block may refer to a gate an earlier one declares) and parsed; when they declare gates,
  the result runs with ``--atlas-gates`` against a target holding 120 factory sessions (60 with
  ``metadata.run = "main"``, 60 with ``"candidate"``): every gate must be collected and evaluated
  (no usage error, no gate that could not be evaluated). ```` ```ini ```` blocks run the same way, as
  the page's ``tox.ini``.
* Everything else is shown, never run, and says what it is: ```` ```text ```` for what a command
  prints, ```` ```console ```` / ```` ```bash ```` for commands, ```` ```json ```` for documents,
  ```` ```sql ```` for SQL (a SQL block naming its file is written, as above). A fence without a
  language is refused: mark output as ``text``.

No page may cite files users do not have (the private Atlas inventory).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

# Load what the examples use once, outside pytester's sys.modules snapshots: numpy refuses a second
# import, and a class imported afresh inside an inner run is not the class the rest of the package
# checks against (insert_graphs() would refuse a SessionGraph as "not a SessionGraph").
import pytest_atlas.assertions._rewards
import pytest_atlas.factories
import pytest_atlas.gates._evaluate
import pytest_atlas.stats._compare
import pytest_atlas.strategies
import pytest_atlas.validation._detail  # noqa: F401

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# yaml: the CI recipes of docs/ci.md, run by tests/test_ci_recipes.py
SHOWN = {"text", "console", "bash", "sh", "json", "sql", "shell", "yaml"}
RUN = {"python", "toml", "ini"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_FILE_COMMENT = re.compile(r"^(?:#|--)\s*(?P<name>[\w./-]+\.(?:py|sql|txt|jsonl?))\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file(self) -> str | None:
        """The file the block says it is (its first line is a comment naming it), if any."""
        match = _FILE_COMMENT.match(self.text)
        return match.group("name") if match else None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, text.count("\n", 0, m.start()) + 1, m.group("lang"), textwrap.dedent(m.group("body")))
        for m in _FENCE.finditer(text)
    ]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# ------------------------------------------------------------------------------------------------
# every block says what it is; no page cites the inventory
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_block_is_marked_and_no_page_cites_files_users_lack(page: Path) -> None:
    unmarked = [b.where for b in blocks(page) if b.lang == ""]
    assert unmarked == [], "fenced blocks without a language (mark output as ```text)"
    unknown = sorted({f"{b.where}: {b.lang}" for b in blocks(page) if b.lang not in SHOWN | RUN})
    assert unknown == []
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"atlas-payloads\.md|\binventory\b|§\s*\d", text, re.IGNORECASE), page


def test_no_shipped_schema_cites_the_inventory() -> None:
    for path in sorted((ROOT / "jsonschemas").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"atlas-payloads\.md|\binventory\b|§\s*\d", text, re.IGNORECASE), path


def test_every_option_a_page_mentions_exists() -> None:
    from pytest_atlas._config import OPTIONS

    known = {option.cli for option in OPTIONS if option.cli}
    for page in PAGES:
        mentioned = set(re.findall(r"--atlas-[a-z-]+", page.read_text(encoding="utf-8")))
        assert mentioned <= known, f"{_id(page)} mentions {sorted(mentioned - known)}"


def test_the_extraction_sees_the_blocks() -> None:
    """A guard for the guard: the pages hold runnable blocks, and every kind is found."""
    found = {b.lang for page in PAGES for b in blocks(page)}
    assert {"python", "toml", "text"} <= found
    assert sum(b.lang == "python" for page in PAGES for b in blocks(page)) >= 15


# ------------------------------------------------------------------------------------------------
# Python: each page's test modules and snippets, in one inner pytest run
# ------------------------------------------------------------------------------------------------

_BUILTIN_FIXTURES = {"tmp_path", "monkeypatch", "request", "capsys", "pytestconfig", "tmp_path_factory"}


def _free_names(tree: ast.AST) -> set[str]:
    assigned: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else assigned).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            assigned.add(node.name)
            if not isinstance(node, ast.ClassDef):
                assigned.update(a.arg for a in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs])
        elif isinstance(node, ast.Import | ast.ImportFrom):
            assigned.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            assigned.add(node.name)
        elif isinstance(node, ast.arg):
            assigned.add(node.arg)
    return loaded - assigned - set(dir(builtins))


def _is_test_module(tree: ast.Module) -> bool:
    return _test_functions(tree) > 0


def _test_functions(tree: ast.Module) -> int:
    return sum(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_") for node in tree.body
    )


def python_files(page: Path) -> dict[str, str]:
    """The files of a page's project: named blocks, test modules, snippets wrapped as tests."""
    files: dict[str, str] = {}
    stem = re.sub(r"\W", "_", page.stem.lower())
    for index, block in enumerate(blocks(page)):
        if block.lang == "sql" and block.file:
            files[block.file] = block.text
        if block.lang != "python":
            continue
        try:
            tree = ast.parse(block.text)
        except SyntaxError as exc:
            raise AssertionError(f"{block.where}: not valid Python: {exc}") from None
        header = f"# from {block.where}\n"
        if block.file:
            files[block.file] = header + block.text
        elif _is_test_module(tree):
            files[f"test_{stem}_{index}.py"] = header + block.text
        else:
            fixtures = sorted(n for n in _free_names(tree) if n.startswith("atlas_") or n in _BUILTIN_FIXTURES)
            body = textwrap.indent(block.text, "    ")
            files[f"test_{stem}_{index}.py"] = f"{header}def test_snippet({', '.join(fixtures)}):\n{body}\n"
    return files


PYTHON_PAGES = [page for page in PAGES if any(b.lang == "python" for b in blocks(page))]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_id)
def test_the_python_examples_of_the_page_pass(pytester: pytest.Pytester, page: Path) -> None:
    for name, text in python_files(page).items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    tests = [name for name in python_files(page) if Path(name).name.startswith("test_")]
    assert tests, f"{_id(page)} has Python blocks but none runs as a test"
    args = ("-p", "no:randomly", "-p", "no:cacheprovider", "-q", *tests)
    if any("atlas_runtime" in python_files(page)[name] for name in tests):
        # Atlas (litellm, pydantic, LangGraph) cannot be imported again after an in-process run
        # dropped part of it from sys.modules: pages that run it get a process of their own
        result = pytester.runpytest_subprocess(*args)
    else:
        result = pytester.runpytest(*args)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, "\n".join(result.stdout.lines[-60:])
    # every test function of the page ran and passed: none left out by a file the runner misplaced
    written = sum(_test_functions(ast.parse(python_files(page)[name])) for name in tests)
    assert outcomes.get("passed", 0) == written and not outcomes.get("skipped"), outcomes


# ------------------------------------------------------------------------------------------------
# TOML and ini: declarations that parse and gates that evaluate against a seeded target
# ------------------------------------------------------------------------------------------------

CONFIG_PAGES = [page for page in PAGES if any(b.lang in ("toml", "ini") for b in blocks(page))]


def _seed(conn: psycopg.Connection[Any]) -> None:
    from pytest_atlas.factories import Factory

    factory = Factory(11)
    factory.create_sessions(conn, 60, metadata={"run": "main"}, score=(0.7, 0.9), drift_alert=False, approved=True)
    factory.create_sessions(conn, 60, metadata={"run": "candidate"}, score=(0.7, 0.9), drift_alert=False, approved=True)
    conn.commit()


@pytest.mark.parametrize("page", CONFIG_PAGES, ids=_id)
def test_the_configuration_examples_of_the_page_are_accepted_and_evaluate(
    pytester: pytest.Pytester, page: Path, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    _seed(atlas_db)
    toml = "\n".join(b.text for b in blocks(page) if b.lang == "toml")
    ini = "\n".join(b.text for b in blocks(page) if b.lang == "ini")
    for kind, text in (("pyproject.toml", toml), ("tox.ini", ini)):
        if not text.strip():
            continue
        if kind == "pyproject.toml":
            document = tomllib.loads(text)  # a fragment that is not TOML fails here, naming the error
            declares = "gates" in document.get("tool", {}).get("pytest-atlas", {})
        else:
            declares = "atlas_gate" in text
        for other in ("pyproject.toml", "tox.ini"):
            (pytester.path / other).unlink(missing_ok=True)
        (pytester.path / kind).write_text(text, encoding="utf-8")
        if not declares:
            continue
        report = pytester.path / "report.json"
        result = pytester.runpytest(
            "--atlas-gates", f"--atlas-target={atlas_dsn}", f"--atlas-report={report}", "-p", "no:randomly"
        )
        assert result.ret in (0, 1, 6), "\n".join(result.stdout.lines[-40:] + result.stderr.lines[-10:])
        gates = json.loads(report.read_text())["results"]["gate"]
        assert gates and [g["name"] for g in gates if g["outcome"] == "error"] == [], gates
