"""The one table renderer, and the escaping of everything pytest-atlas prints from a database.

Learning keys, JSON keys, status values and messages come from data nobody checked: a key holding
``\\x1b[2J`` would clear the reader's terminal, a newline would forge a table row. :func:`escape`
turns every control character (and the invisible bidirectional overrides) into a visible
``\\x..`` / ``\\u....`` escape; :func:`render_table` escapes every cell before it measures it, so
the columns still line up; :func:`markdown_table` draws the same rows as a Markdown table (for
``$GITHUB_STEP_SUMMARY``), its cells' Markdown punctuation escaped so that they show as text. Light on
purpose: no imports beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

__all__ = ["escape", "escape_lines", "markdown_cell", "markdown_code", "markdown_table", "render_table"]

# C0 and C1 controls, DEL, the line/paragraph separators and the bidirectional formatting characters
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character shown as an escape (newlines and tabs included)."""
    return _UNSAFE.sub(_escaped, text)


def escape_lines(text: str) -> str:
    """Multi-line ``text`` with its line breaks kept and every other control character escaped."""
    return "\n".join(escape(line) for line in text.split("\n"))


def render_table(rows: Sequence[Sequence[str]], *, right: Collection[int] = ()) -> str:
    """A fixed-width table: the first row is the header, a rule of dashes follows it. Columns whose
    index is in ``right`` are right-aligned (numbers). Cells are escaped; trailing blanks dropped."""
    cells = [[escape(str(cell)) for cell in row] for row in rows]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    text = [line(cells[0]), line(["-" * width for width in widths])]
    text += [line(row) for row in cells[1:]]
    return "\n".join(text)


#: the icon put before an outcome cell of a Markdown table (by the cell's first word)
_NOT_BLOCKING = "☑️"
_ICON = {"PASS": "✅", "OK": "✅", "FAIL": "❌", "NEW": "❌", "INCONCLUSIVE": "⚠️", "ERROR": "💥"}


#: the characters Markdown (CommonMark, and GitHub's tables, strike-through and math) can read as
#: markup in the middle of a line; each is written backslash-escaped, which CommonMark shows as the
#: character itself
_MARKUP = re.compile(r"([\\`*_\[\]<>&|~$])")


def markdown_cell(text: str) -> str:
    """Text for a Markdown table cell or line, shown as it is: escaped, one line, and every character
    Markdown could read as a link, an image, emphasis, HTML, an entity, code, math or a cell border
    backslash-escaped."""
    return _MARKUP.sub(r"\\\1", escape(" ".join(str(text).split("\n"))))


def markdown_code(text: str) -> str:
    """Text for a Markdown code span (shown literally, so nothing is escaped): escaped, one line, its
    backticks (which would end the span) written as quotes."""
    return escape(" ".join(str(text).split("\n"))).replace("`", "'")


def markdown_table(rows: Sequence[Sequence[str]], *, outcome_column: int | None = None) -> list[str]:
    """The lines of a Markdown table: the first row is the header. The cell in ``outcome_column``
    (``PASS``, ``FAIL (accepted)``, ...) gets its icon."""
    if not rows:
        return []
    header, *body = rows
    out = ["| " + " | ".join(markdown_cell(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    for row in body:
        cells = [markdown_cell(cell) for cell in row]
        if outcome_column is not None:
            text = str(row[outcome_column])
            label = text.split() or [""]
            # a failure the declaration accepts (or a new key it allows) does not block: no red cross
            icon = _NOT_BLOCKING if text.endswith(("(accepted)", "(allowed)")) else _ICON.get(label[0].upper(), "")
            cells[outcome_column] = f"{icon} {cells[outcome_column]}".strip()
        out.append("| " + " | ".join(cells) + " |")
    return out
