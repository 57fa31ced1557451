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


@pytest.mark.parametrize("number", ["1" + "0" * 400 + ".5", "-1" + "0" * 400 + ".5"])
def test_a_stored_number_that_reads_as_infinity_is_unstorable_in_a_scan(
    atlas_db: psycopg.Connection[Any], atlas_dsn: str, number: str
) -> None:
    """jsonb keeps 10**400 + 0.5 (a numeric, written out in full), yet json.loads reads it as inf,
    which json.dumps writes back as Infinity and jsonb then rejects: the scan calls the row
    unstorable, as check_payload calls the document read from it (the fast read of jsonb rows must
    not skip that check)."""
    from pytest_atlas.contracts import check_database

    from . import contract_documents as D
    from . import fill

    fill.clean_database(atlas_db)
    sid = fill.session(atlas_db, {**D.session_metadata(), "caller": 0})
    atlas_db.execute(
        "UPDATE sessions SET metadata = jsonb_set(metadata, '{caller}', to_jsonb(%s::numeric)) WHERE id = %s",
        [number, sid],
    )
    atlas_db.commit()
    row = atlas_db.execute("SELECT metadata::text FROM sessions WHERE id = %s", [sid]).fetchone()
    assert row is not None
    assert not check_payload(json.loads(row[0]), "session-metadata").valid
    column = check_database(atlas_dsn, tables=["sessions.metadata"]).column("sessions.metadata")
    assert column.outcome == "fail" and column.rows_with_errors == 1
    assert [(group.path, group.sample_keys) for group in column.errors] == [("$.caller", [{"id": sid}])]
