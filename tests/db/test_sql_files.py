"""Splitting SQL files into statements and reporting load errors with file, line and statement."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.errors import SchemaLoadError
from pytest_atlas.schema import SqlSource, fingerprint, load_sources, split_statements


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_semicolons_inside_quotes_comments_and_bodies_do_not_split() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x text DEFAULT 'a;b', \"we;ird\" int);\n"
        "/* block; /* nested; */ still comment; */\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "SELECT E'it\\'s;', 'don''t;', $$;$$, $tag$ $$; $tag$;\n"
        "-- trailing comment only\n"
    )
    assert texts(sql) == [
        "CREATE TABLE a (x text DEFAULT 'a;b', \"we;ird\" int)",
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
        "SELECT E'it\\'s;', 'don''t;', $$;$$, $tag$ $$; $tag$",
    ]


def test_statement_lines_point_at_the_first_code_line() -> None:
    sql = "\n\n-- header\n/* c */ SELECT 1;\n\nSELECT\n  2;"
    assert [(s.line, s.text) for s in split_statements(sql)] == [(4, "SELECT 1"), (6, "SELECT\n  2")]


def test_dollar_signs_inside_identifiers_are_not_quotes() -> None:
    assert texts("SELECT a$b; SELECT 2") == ["SELECT a$b", "SELECT 2"]


def test_fingerprint_changes_with_any_content() -> None:
    a = (SqlSource("a.sql", "SELECT 1;"),)
    assert fingerprint(a) == fingerprint((SqlSource("elsewhere.sql", "SELECT 1;"),))
    assert fingerprint(a) != fingerprint((SqlSource("a.sql", "SELECT 2;"),))
    assert fingerprint(a) != fingerprint((*a, SqlSource("b.sql", "")))


def test_load_error_names_file_line_and_statement(atlas_db: psycopg.Connection[Any]) -> None:
    source = SqlSource(
        "migrations/0002.sql",
        "CREATE TABLE ok_table (x int);\n\n-- next one is broken\nCREATE TABLE broken (\n  y int,\n  z nosuchtype\n);\n",
    )
    with pytest.raises(SchemaLoadError) as info:
        load_sources(atlas_db, [source])
    err = info.value
    assert (err.path, err.line) == ("migrations/0002.sql", 6)
    assert 'type "nosuchtype" does not exist' in err.message
    assert "CREATE TABLE broken" in err.statement
    assert str(err).startswith('migrations/0002.sql:6: type "nosuchtype" does not exist')
    assert "how to fix" in str(err)
    # the whole load was rolled back: the good statement before the broken one left nothing behind
    assert atlas_db.execute("SELECT to_regclass('ok_table')").fetchone() == (None,)


def test_runtime_error_without_position_points_at_the_statement(atlas_db: psycopg.Connection[Any]) -> None:
    source = SqlSource("extra.sql", "SELECT 1;\nSELECT 1/0;\n")
    with pytest.raises(SchemaLoadError) as info:
        load_sources(atlas_db, [source])
    assert info.value.line == 2
    assert "division by zero" in info.value.message
