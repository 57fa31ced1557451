"""The README quickstart: harness code tested against a real PostgreSQL with the Atlas schema."""

from psycopg.types.json import Jsonb


def record_run(conn, task: str, score: float) -> int:
    """Code under test: store one agent run the way Atlas does."""
    sql = "INSERT INTO sessions (task, status, reward_stats, metadata) VALUES (%s, 'succeeded', %s, %s) RETURNING id"
    return conn.execute(sql, (task, Jsonb({"score": score}), Jsonb({"learning_key": "demo"}))).fetchone()[0]


def test_record_run(atlas_db):  # a fresh database with the Atlas schema, just for this test
    session_id = record_run(atlas_db, "Summarise the incident", 0.82)
    atlas_db.commit()
    row = atlas_db.execute("SELECT reward_stats->>'score', review_status FROM sessions WHERE id = %s", (session_id,))
    assert row.fetchone() == ("0.82", "pending")
