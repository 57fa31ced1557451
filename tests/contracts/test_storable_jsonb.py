"""The storability checks agree with PostgreSQL: a document is called storable exactly when ``jsonb``
takes what ``json.dumps`` writes for it (what psycopg's ``Jsonb`` and Atlas's own store send)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pytest_atlas import check_payload, is_valid

TEXTS = {
    "ascii": "plain",
    "non-ASCII": "naïve ✓ 😀",
    "NUL": "a\x00b",
    "lone high surrogate": "a\ud800b",
    "lone high surrogate at the end": "ab\udbff",
    "lone low surrogate": "\udc00b",
    "low before high": "\udc00\ud800",
    "surrogate pair": "\ud83d\ude00",
}


def _jsonb_takes(conn: psycopg.Connection[Any], document: Any) -> bool:
    try:
        with conn.transaction():
            conn.execute("SELECT %s::text::jsonb", [json.dumps(document)])
    except psycopg.DataError:
        return False
    return True


@pytest.mark.parametrize("text", TEXTS.values(), ids=list(TEXTS))
@pytest.mark.parametrize("where", ["value", "key"])
def test_storable_exactly_when_jsonb_takes_it(atlas_db: psycopg.Connection[Any], text: str, where: str) -> None:
    caller = {"k": text} if where == "value" else {text: 1}
    document = {"learning_key": "k", "metadata": {"caller": caller}}
    takes = _jsonb_takes(atlas_db, document)
    assert is_valid(document, "session-metadata") is takes
    assert check_payload(document, "session-metadata").valid is takes


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf"), 1e308, -0.0])
def test_numbers_storable_exactly_when_jsonb_takes_them(atlas_db: psycopg.Connection[Any], number: float) -> None:
    document = {"learning_key": "k", "metadata": {"caller": number}}
    assert is_valid(document, "session-metadata") is _jsonb_takes(atlas_db, document)
