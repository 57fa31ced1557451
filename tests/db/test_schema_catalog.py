"""The live catalog of a database built from schema.sql matches Atlas's schema, column for column.

The expected structure below is written out by hand from Atlas 0.1.15/0.1.16
(Atlas's own storage code and the tables it writes); it is deliberately not
derived from our schema.sql, so that a wrong edit to schema.sql makes this test fail.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas.schema import default_sources, load_sources

# table -> [(column, data_type, nullable, default or None)]
EXPECTED_COLUMNS: dict[str, list[tuple[str, str, bool, str | None]]] = {
    "sessions": [
        ("id", "integer", False, "nextval('sessions_id_seq'::regclass)"),
        ("task", "text", False, None),
        ("status", "text", False, "'running'::text"),
        ("metadata", "jsonb", True, None),
        ("final_answer", "text", True, None),
        ("reward", "jsonb", True, None),
        ("reward_stats", "jsonb", True, None),
        ("reward_audit", "jsonb", True, None),
        ("student_learning", "text", True, None),
        ("teacher_learning", "text", True, None),
        ("review_status", "text", False, "'pending'::text"),
        ("review_notes", "text", True, None),
        ("created_at", "timestamp with time zone", False, "now()"),
        ("completed_at", "timestamp with time zone", True, None),
    ],
    "plans": [("session_id", "integer", False, None), ("plan", "jsonb", False, None)],
    "step_results": [
        ("session_id", "integer", False, None),
        ("step_id", "integer", False, None),
        ("trace", "text", True, None),
        ("output", "text", True, None),
        ("evaluation", "jsonb", True, None),
        ("attempts", "integer", True, None),
        ("metadata", "jsonb", True, None),
    ],
    "step_attempts": [
        ("session_id", "integer", False, None),
        ("step_id", "integer", False, None),
        ("attempt", "integer", False, None),
        ("evaluation", "jsonb", True, None),
    ],
    "guidance_notes": [
        ("session_id", "integer", False, None),
        ("step_id", "integer", False, None),
        ("sequence", "integer", False, None),
        ("note", "text", False, None),
    ],
    "trajectory_events": [
        ("id", "integer", False, "nextval('trajectory_events_id_seq'::regclass)"),
        ("session_id", "integer", True, None),
        ("event", "jsonb", False, None),
        ("created_at", "timestamp with time zone", False, "now()"),
    ],
    "discovery_runs": [
        ("id", "integer", False, "nextval('discovery_runs_id_seq'::regclass)"),
        ("project_root", "text", False, None),
        ("task", "text", True, None),
        ("source", "text", False, "'discovery'::text"),
        ("payload", "jsonb", False, None),
        ("metadata", "jsonb", True, None),
        ("created_at", "timestamp with time zone", False, "now()"),
    ],
    "learning_registry": [
        ("learning_key", "text", False, None),
        ("student_learning", "text", True, None),
        ("teacher_learning", "text", True, None),
        ("metadata", "jsonb", True, None),
        ("updated_at", "timestamp with time zone", False, "now()"),
    ],
}

EXPECTED_PRIMARY_KEYS = {
    "sessions": ["id"],
    "plans": ["session_id"],
    "step_results": ["session_id", "step_id"],
    "step_attempts": ["session_id", "step_id", "attempt"],
    "guidance_notes": ["session_id", "step_id", "sequence"],
    "trajectory_events": ["id"],
    "discovery_runs": ["id"],
    "learning_registry": ["learning_key"],
}

# every foreign key: (table, column) -> sessions.id ON DELETE CASCADE
EXPECTED_FOREIGN_KEYS = {
    ("plans", "session_id"),
    ("step_results", "session_id"),
    ("step_attempts", "session_id"),
    ("guidance_notes", "session_id"),
    ("trajectory_events", "session_id"),
}

# non-primary-key indexes: name -> fragments that must appear in pg_indexes.indexdef
EXPECTED_INDEXES = {
    "sessions_learning_key_idx": ["ON public.sessions USING btree", "(metadata ->> 'learning_key'::text)"],
    "sessions_reward_score_idx": [
        "ON public.sessions USING btree",
        "(((reward_stats ->> 'score'::text))::double precision)",
        "WHERE (reward_stats IS NOT NULL)",
    ],
    "sessions_created_at_idx": ["ON public.sessions USING btree", "(created_at DESC)"],
    "sessions_metadata_gin_idx": ["ON public.sessions USING gin", "(metadata)"],
}


def columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool, str | None]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable = 'YES', column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [(name, dtype, nullable, default) for name, dtype, nullable, default in rows]


def check_catalog(conn: psycopg.Connection[Any]) -> None:
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    }
    assert tables == set(EXPECTED_COLUMNS)
    for table, expected in EXPECTED_COLUMNS.items():
        assert columns(conn, table) == expected, table

    pks = conn.execute(
        "SELECT tc.table_name, array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position)"
        " FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu"
        "   ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name"
        " WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'"
        " GROUP BY tc.table_name"
    ).fetchall()
    assert dict(pks) == EXPECTED_PRIMARY_KEYS

    fks = conn.execute(
        "SELECT tc.table_name, kcu.column_name, ccu.table_name, ccu.column_name, rc.delete_rule"
        " FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name"
        " JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name"
        " JOIN information_schema.referential_constraints rc ON rc.constraint_name = tc.constraint_name"
        " WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'"
    ).fetchall()
    assert {(t, c) for t, c, *_ in fks} == EXPECTED_FOREIGN_KEYS
    assert all((rt, rc, rule) == ("sessions", "id", "CASCADE") for _t, _c, rt, rc, rule in fks)

    indexes = dict(
        conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%%_pkey'"
        ).fetchall()
    )
    assert set(indexes) == set(EXPECTED_INDEXES)
    for name, fragments in EXPECTED_INDEXES.items():
        for fragment in fragments:
            assert fragment in indexes[name], (name, indexes[name])


def test_catalog_matches_atlas(atlas_db: psycopg.Connection[Any]) -> None:
    check_catalog(atlas_db)


def test_schema_is_idempotent(atlas_db: psycopg.Connection[Any]) -> None:
    """Applying schema.sql again to a loaded database is harmless and changes nothing."""
    atlas_db.execute("INSERT INTO sessions (task) VALUES ('kept')")
    load_sources(atlas_db, default_sources())
    load_sources(atlas_db, default_sources())
    atlas_db.commit()
    check_catalog(atlas_db)
    assert atlas_db.execute("SELECT task FROM sessions").fetchall() == [("kept",)]


def test_schema_upgrades_a_pre_v018_database(atlas_postgres: Any, atlas_db: psycopg.Connection[Any]) -> None:
    """A database created by Atlas before v0.1.8 (no review/reward_stats columns) gains them."""
    atlas_db.execute(
        "ALTER TABLE sessions DROP COLUMN review_status, DROP COLUMN review_notes,"
        " DROP COLUMN reward_stats CASCADE, DROP COLUMN reward_audit"
    )
    atlas_db.commit()
    load_sources(atlas_db, default_sources())
    names = [c[0] for c in columns(atlas_db, "sessions")]
    assert {"review_status", "review_notes", "reward_stats", "reward_audit"} <= set(names)


def test_on_delete_cascade(atlas_db: psycopg.Connection[Any]) -> None:
    sid = atlas_db.execute("INSERT INTO sessions (task) VALUES ('t') RETURNING id").fetchone()[0]
    atlas_db.execute("INSERT INTO plans VALUES (%s, '{}')", (sid,))
    atlas_db.execute("INSERT INTO step_results (session_id, step_id) VALUES (%s, 1)", (sid,))
    atlas_db.execute("INSERT INTO step_attempts (session_id, step_id, attempt) VALUES (%s, 1, 1)", (sid,))
    atlas_db.execute("INSERT INTO guidance_notes VALUES (%s, 1, 1, 'n')", (sid,))
    atlas_db.execute("INSERT INTO trajectory_events (session_id, event) VALUES (%s, '{}')", (sid,))
    atlas_db.execute("DELETE FROM sessions WHERE id = %s", (sid,))
    for table in ("plans", "step_results", "step_attempts", "guidance_notes", "trajectory_events"):
        assert atlas_db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_reward_score_index_rejects_non_numeric_scores(atlas_db: psycopg.Connection[Any]) -> None:
    """Since Atlas v0.1.13 a non-castable reward_stats.score makes the write fail (the expression index)."""
    atlas_db.execute("""INSERT INTO sessions (task, reward_stats) VALUES ('ok', '{"score": 0.5}')""")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        atlas_db.execute("""INSERT INTO sessions (task, reward_stats) VALUES ('bad', '{"score": "high"}')""")
