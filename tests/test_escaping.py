"""Keys and values from a database are data: every one printed in a table is escaped, so no control
character (a terminal escape sequence, a newline that forges a row, a bidi override) reaches the terminal."""

from __future__ import annotations

import html
import re
from typing import Any

import psycopg
import pytest

from pytest_atlas._table import escape, markdown_cell, markdown_table, render_table
from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from .contracts import contract_documents as D
from .contracts import fill
from .gates.gates_seed import insert, session_row

HOSTILE_KEY = "key\x1b[2J\x1b]0;pwned\x07\nfake row\u202e"
# anything that would act on a terminal: C0/C1 controls except the newline between lines, bidi overrides
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_makes_every_control_character_visible() -> None:
    assert escape("a\x1b[31mb\nc\u202e") == "a\\x1b[31mb\\x0ac\\u202e"
    assert escape(escape("\x1b")) == escape("\x1b")  # idempotent: safe to apply twice
    assert escape("plain é ✓") == "plain é ✓"


def test_the_table_measures_escaped_cells() -> None:
    text = render_table([("key", "n"), (HOSTILE_KEY, "3"), ("k", "10")], right={1})
    _, rule, first, second = text.splitlines()
    assert not UNSAFE.search(text)
    assert len(first) == len(second) == len(rule)  # the columns still line up
    assert first.endswith(" 3") and second.endswith("10")


def test_gate_tables_escape_learning_keys_from_the_database(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    insert(atlas_db, [session_row(0.3 + i / 100, key=HOSTILE_KEY[:16], minute=i) for i in range(30)])
    insert(atlas_db, [session_row(0.3 + i / 100, key="x\x1b[2J\x07", minute=100 + i) for i in range(30)])
    atlas_db.commit()
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.9\n')
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-p", "no:randomly")
    assert result.ret == 1
    text = result.stdout.str()
    assert "x\\x1b[2J\\x07" in text and "key\\x1b[2J\\x1b]0;" in text
    assert not UNSAFE.search(text)


def test_contract_reports_escape_json_keys_and_values(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str
) -> None:
    fill.clean_database(atlas_db)
    fill.session(atlas_db, {**D.session_metadata(), "team\x1b[2J": "x", "execution_mode": "turbo\x1b]0;t\x07"})
    atlas_db.execute(
        "UPDATE sessions SET status = 'done' || chr(27) || '[2J' WHERE id = (SELECT max(id) FROM sessions)"
    )
    atlas_db.commit()
    result = pytester.runpytest("--atlas-contract", f"--atlas-target={atlas_dsn}", "-p", "no:randomly")
    assert result.ret == 1
    text = result.stdout.str()
    assert "team\\u001b[2J" in text and "done\\x1b[2J" in text
    assert not UNSAFE.search(text)


# what a key written by an agent could make of a step summary: a link whose text is not its target,
# an image fetched when the summary is opened, emphasis, HTML, an entity, a strike-through, a code
# span, math, a forged cell
MARKDOWN_KEY = "*e* [o](u) ![i](https://example.com/i.png) _u_ ~~s~~ <b>h</b> &#x2705; `c` $x$ | y"
MARKDOWN_TAGS = re.compile(r"<(a|img|em|strong|del|s|b|script|h\d)[ >]")


def _rendered(markdown: str) -> str:
    """The summary drawn to HTML the way GitHub reads it (CommonMark with GFM tables and strike-through)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def test_the_step_summary_shows_keys_from_the_database_as_text(
    pytester: pytest.Pytester, atlas_db: psycopg.Connection[Any], atlas_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert(atlas_db, [session_row(0.3 + i / 100, key=MARKDOWN_KEY, minute=i) for i in range(30)])
    atlas_db.commit()
    pytester.makefile(".toml", pyproject='[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.9\n')
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--atlas-gates", f"--atlas-target={atlas_dsn}", "-p", "no:randomly")
    assert result.ret == 1
    markdown = summary.read_text()
    page = _rendered(markdown)
    # the only markup is the summary's own: its heading, its bold counts line and the gate names of its reasons, the emphasis of its
    # chart captions, its table and code spans
    assert not {tag.group(1) for tag in MARKDOWN_TAGS.finditer(page)} - {"h3", "strong", "em"}
    assert page.count("<h3>") == 1
    assert page.count("<strong>") == markdown.count("\n- **") + markdown.count("\n**gates**") == 2
    assert page.count("<em>") == len(re.findall(r"^\*[^*]", markdown, re.MULTILINE)) == 1
    # the key is shown as the terminal's table shows it (shortened), as text
    cells = [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", page)]
    assert cells[:2] == ["floor", "*e* [o](u) !…"]


def test_markdown_cells_render_as_their_text() -> None:
    text = "a *b* _c_ [d](e) ![f](g) <h> &amp; ~~i~~ `j` $k$ \\l | m"
    table = "\n".join(markdown_table([("key", "n"), (text, "1")]))
    cells = re.findall(r"<td>(.*?)</td>", _rendered(table))
    assert [html.unescape(cell) for cell in cells] == [text, "1"]
    line = _rendered(f"- **{markdown_cell('g')}**: {markdown_cell(text)}")
    assert html.unescape(re.sub(r"<[^>]+>", "", line)).strip() == f"g: {text}"
