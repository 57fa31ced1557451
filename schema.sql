-- Atlas SDK runtime schema (arc-atlas 0.1.15 / 0.1.16), as pytest-atlas loads it into test databases.
--
-- Table for table and column for column what Atlas's storage layer reads and writes, so that
-- Atlas itself (atlas.runtime.storage.Database) can write to a database built from this file.
-- Every statement is idempotent: applying the file twice is harmless, and applying it to a
-- database created by an older Atlas adds the columns that appeared in v0.1.8.
--
-- This file is the single source of truth for pytest-atlas: it ships inside the wheel and
-- tests/test_schema_catalog.py checks the live catalog against it.

-- One row per agent run ------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS sessions (
    id               SERIAL PRIMARY KEY,
    task             TEXT        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'running',
    metadata         JSONB,
    final_answer     TEXT,
    reward           JSONB,
    reward_stats     JSONB,
    reward_audit     JSONB,
    student_learning TEXT,
    teacher_learning TEXT,
    review_status    TEXT        NOT NULL DEFAULT 'pending',
    review_notes     TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at     TIMESTAMPTZ
);

-- Databases created before v0.1.8 lack these columns.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS review_status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS review_notes TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS reward_stats JSONB;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS reward_audit JSONB;

-- Learning-key lookups (baseline, history, export filters).
CREATE INDEX IF NOT EXISTS sessions_learning_key_idx
    ON sessions ((metadata ->> 'learning_key'));

-- Reward filters of the training-data client. Since v0.1.13 this expression index makes a write fail
-- when a non-null reward_stats.score cannot be cast to float.
CREATE INDEX IF NOT EXISTS sessions_reward_score_idx
    ON sessions (((reward_stats ->> 'score')::float))
    WHERE reward_stats IS NOT NULL;

CREATE INDEX IF NOT EXISTS sessions_created_at_idx
    ON sessions (created_at DESC);

CREATE INDEX IF NOT EXISTS sessions_metadata_gin_idx
    ON sessions USING gin (metadata);

-- The plan of a session (one per session) ------------------------------------------------------
CREATE TABLE IF NOT EXISTS plans (
    session_id INTEGER PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    plan       JSONB NOT NULL
);

-- Final result of each plan step -----------------------------------------------------------------
CREATE TABLE IF NOT EXISTS step_results (
    session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    step_id    INTEGER NOT NULL,
    trace      TEXT,
    output     TEXT,
    evaluation JSONB,
    attempts   INTEGER,
    metadata   JSONB,
    PRIMARY KEY (session_id, step_id)
);

-- Every attempt at a step (validation + placeholder reward) ---------------------------------------
CREATE TABLE IF NOT EXISTS step_attempts (
    session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    step_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    evaluation JSONB,
    PRIMARY KEY (session_id, step_id, attempt)
);

-- Teacher guidance given between attempts ---------------------------------------------------------
CREATE TABLE IF NOT EXISTS guidance_notes (
    session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    step_id    INTEGER NOT NULL,
    sequence   INTEGER NOT NULL,
    note       TEXT    NOT NULL,
    PRIMARY KEY (session_id, step_id, sequence)
);

-- IntermediateStep envelopes, written in emission order at the end of the session -----------------
CREATE TABLE IF NOT EXISTS trajectory_events (
    id         SERIAL PRIMARY KEY,
    session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    event      JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- `atlas env init` / `atlas run` discovery results ---------------------------------------------------
CREATE TABLE IF NOT EXISTS discovery_runs (
    id           SERIAL PRIMARY KEY,
    project_root TEXT        NOT NULL,
    task         TEXT,
    source       TEXT        NOT NULL DEFAULT 'discovery',
    payload      JSONB       NOT NULL,
    metadata     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Cumulative learning state (pamphlets + playbook metadata) per learning key ------------------------
CREATE TABLE IF NOT EXISTS learning_registry (
    learning_key     TEXT PRIMARY KEY,
    student_learning TEXT,
    teacher_learning TEXT,
    metadata         JSONB,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
