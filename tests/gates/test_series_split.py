"""A series read over a large table splits its scan into ranges of heap blocks, each grouped where
it is scanned (by a parallel worker each): the series are those a single scan gives, on quirky data
and across ranges of ids, and the split is taken only where the plan reads the whole table anyway."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pytest_atlas.gates import Selection, _scores, fetch_series
from pytest_atlas.gates import _series as series_module

from .test_score_paths import SHAPES
from .test_series_paths import FALLBACKS, INDEXABLE, _check, _load

#: a statement a series read ran: its text, the statement and its parameters
Read = tuple[str, Any, Any]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Read]:
    """Every statement a series read runs."""
    ran: list[Read] = []
    original = series_module.run

    def recording(conn: Any, query: Any, params: Any, **options: Any) -> Any:
        ran.append((query.as_string(conn), query, params))
        return original(conn, query, params, **options)

    monkeypatch.setattr(series_module, "run", recording)
    return ran


def _spread(conn: psycopg.Connection[Any]) -> None:
    """Few sessions a block (the table's later rows land in many blocks), and every table split."""
    conn.execute("ALTER TABLE sessions SET (fillfactor = 10)")


def _series_reads(reads: list[Read]) -> list[str]:
    """The texts of the series statements among ``reads`` (not the plan looked at first)."""
    return [text for text, *_ in reads if "string_agg" in text and not text.startswith("EXPLAIN")]


def _blocks_used(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(DISTINCT (ctid::text::point)[0]) FROM sessions").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def split_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scores, "SPLIT_BLOCKS", 1)


def test_block_ranges() -> None:
    assert _scores.block_ranges(2048, 2, 150000) == [682, 1365]
    assert _scores.block_ranges(10_000, 1, 180000) == [5000]
    assert _scores.block_ranges(10_000, 8, 150000) == [2500, 5000, 7500]  # at most four ranges
    assert _scores.block_ranges(2047, 2, 150000) == []  # a small table: one scan
    assert _scores.block_ranges(10_000, 0, 150000) == []  # no parallel workers
    assert _scores.block_ranges(10_000, 2, 130000) == []  # PostgreSQL 13: no TID range scans


def test_quirky_rows_split(atlas_db: psycopg.Connection[Any], split_all: None, reads: list[Read]) -> None:
    """The shapes Atlas's index accepts, bare read then exact read (1e300), each split in three."""
    _spread(atlas_db)
    rows = _load(atlas_db, INDEXABLE, FALLBACKS)
    assert _blocks_used(atlas_db) >= 30
    _check(atlas_db, rows, worsts=(1, 40), digitses=(4,))
    # the reads of one learning key may use its index (then they are not split: see the last test)
    split = [t for t in _series_reads(reads) if "learning_keys" not in t]
    assert split and all(t.count("UNION ALL") == 2 and t.count("ctid") == 4 for t in split)


def test_every_shape_split(atlas_db: psycopg.Connection[Any], split_all: None, reads: list[Read]) -> None:
    """Shapes the index would refuse (1e400 makes the bare read fail), split."""
    _spread(atlas_db)
    atlas_db.execute("DROP INDEX sessions_reward_score_idx")
    rows = _load(atlas_db, [*SHAPES, "-0.5", "-0.5"], FALLBACKS)
    _check(atlas_db, rows, worsts=(5,), digitses=(0, 4))
    split = [t for t in _series_reads(reads) if "learning_keys" not in t]
    assert split and all("UNION ALL" in t for t in split)


def test_ranges_of_ids_and_of_blocks_together(
    atlas_db: psycopg.Connection[Any], split_all: None, reads: list[Read]
) -> None:
    """A table whose ids reach 2**24 is grouped per key and range of ids in each range of blocks:
    a key's rows from every range of both kinds make one series."""
    _spread(atlas_db)
    rows: list[dict[str, Any]] = []
    for i in range(120):
        session = [5 + i, 2**24 + i, 2**25 + 3 * i][i % 3]
        key, task, score = ("a", "b")[i % 2], f"task {i % 4}", round((i * 37 % 101) / 100, 2)
        uncertainty = None if i % 5 == 0 else (i % 7) / 10
        atlas_db.execute(
            "INSERT INTO sessions (id, task, status, review_status, metadata, reward_stats) VALUES "
            "(%s, %s, 'succeeded', 'approved', %s::jsonb, %s::jsonb)",
            (
                session,
                task,
                json.dumps({"learning_key": key}),
                json.dumps({"score": score, "uncertainty_mean": uncertainty}),
            ),
        )
        rows.append({"id": session, "key": key, "task": task, "score": score, "u": uncertainty})
    assert _blocks_used(atlas_db) >= 30
    _check(atlas_db, rows, worsts=(3,), digitses=(2,))
    split = [t for t in _series_reads(reads) if "learning_keys" not in t]
    assert split and all("UNION ALL" in t and "s.id >> 24" in t for t in split)


#: sessions enough for more heap blocks than SPLIT_BLOCKS: 200 learning keys, plain scores
_FILL = """
INSERT INTO sessions (task, status, review_status, metadata, reward_stats)
SELECT 'task ' || (i %% 50), 'succeeded', 'approved',
       jsonb_build_object('learning_key', 'key-' || (i %% 200), 'execution_mode', 'auto'),
       jsonb_build_object('score', round(((i * 7919) %% 10000) / 10000.0, 4), 'uncertainty_mean', 0.1)
FROM generate_series(1, %s) AS i
"""


def test_a_large_table_is_read_by_parallel_workers_one_range_each(
    atlas_db: psycopg.Connection[Any], reads: list[Read], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a table past SPLIT_BLOCKS the gate's statement is split, and PostgreSQL runs it as a
    Parallel Append of TID range scans each grouped on its own; a selection an index narrows (one
    learning key of 200) is not split. The series are those of one scan either way."""
    atlas_db.execute(_FILL, (100_000,))
    atlas_db.execute("ANALYZE sessions")
    row = atlas_db.execute("SELECT pg_relation_size('sessions') / current_setting('block_size')::int8").fetchone()
    assert row is not None and row[0] >= _scores.SPLIT_BLOCKS
    workers = atlas_db.execute("SHOW max_parallel_workers_per_gather").fetchone()
    assert workers is not None and int(workers[0]) >= 1, "the test server allows parallel workers"

    split = fetch_series(atlas_db, Selection(), tasks=False)
    (statement,) = _series_reads(reads)
    assert "UNION ALL" in statement
    with atlas_db.transaction(force_rollback=True):
        for name, value in _scores.SPLIT_PLANNER.items():
            atlas_db.execute("SELECT set_config(%s, %s, true)", (name, value))
        (query, params) = next((q, p) for text, q, p in reads if text == statement)
        explain = psycopg.sql.SQL("EXPLAIN (COSTS OFF) {}").format(query)
        plan = "\n".join(line for (line,) in atlas_db.execute(explain, params).fetchall())
    assert "Parallel Append" in plan and plan.count("Tid Range Scan") >= 2, plan

    reads.clear()
    one = fetch_series(atlas_db, Selection.build(learning_key="key-7"), tasks=False)
    assert not any("UNION ALL" in t for t in _series_reads(reads))
    assert one["key-7"].n == split["key-7"].n == 500
    assert one["key-7"].sample.mean == split["key-7"].sample.mean

    monkeypatch.setattr(_scores, "SPLIT_BLOCKS", 10**9)  # the same table read in one scan
    whole = fetch_series(atlas_db, Selection(), tasks=False)
    assert sorted(whole) == sorted(split)
    for key, series in whole.items():
        got = split[key]
        assert (got.n, got.missing, got.worst) == (series.n, series.missing, series.worst), key
        assert got.sample.values.tolist() == series.sample.values.tolist(), key
        assert got.sample.counts.tolist() == series.sample.counts.tolist(), key
        assert abs(got.sample.mean - series.sample.mean) < 1e-12, key
        assert got.uncertainty_mean is not None and series.uncertainty_mean is not None
        assert abs(got.uncertainty_mean - series.uncertainty_mean) < 1e-12, key
