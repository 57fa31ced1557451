"""The cluster cache: two tiers (persistent, and a copy on tmpfs), eviction, pruning."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_atlas.db._cache import ClusterCache, is_tmpfs


def fake_cluster(path: Path, marker: str) -> Path:
    (path / "global").mkdir(parents=True)
    (path / "PG_VERSION").write_text("15\n")
    (path / "global" / "marker").write_text(marker)
    return path


def test_store_fills_both_tiers_and_lookup_prefers_the_hot_one(tmp_path: Path) -> None:
    hot = ClusterCache(tmp_path / "hot", max_entries=2)
    cache = ClusterCache(tmp_path / "disk", hot=hot)
    cache.store("k1", fake_cluster(tmp_path / "src", "one"))
    assert (tmp_path / "disk" / "k1" / "pgdata" / "global" / "marker").read_text() == "one"
    found = cache.lookup("k1")
    assert found == tmp_path / "hot" / "k1" / "pgdata"


def test_an_entry_only_on_disk_is_promoted_once(tmp_path: Path) -> None:
    ClusterCache(tmp_path / "disk").store("k1", fake_cluster(tmp_path / "src", "one"))
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    assert not (tmp_path / "hot" / "k1").exists()
    assert cache.lookup("k1") == tmp_path / "hot" / "k1" / "pgdata"
    assert (tmp_path / "hot" / "k1" / "pgdata" / "global" / "marker").read_text() == "one"


def test_evict_removes_every_tier_and_missing_entries_are_none(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    cache.store("k1", fake_cluster(tmp_path / "src", "one"))
    cache.evict("k1")
    assert cache.lookup("k1") is None
    assert not (tmp_path / "disk" / "k1").exists() and not (tmp_path / "hot" / "k1").exists()
    # a folder without its completion marker is not an entry
    (tmp_path / "disk" / "k2" / "pgdata").mkdir(parents=True)
    assert cache.lookup("k2") is None


def test_least_recently_used_entries_beyond_the_limit_go(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk", max_entries=3)
    for n, key in enumerate(["a", "b", "c"]):
        cache.store(key, fake_cluster(tmp_path / f"src{n}", key))
        marker = tmp_path / "disk" / key / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    cache.lookup("a")  # used: now the most recent
    cache.store("d", fake_cluster(tmp_path / "src3", "d"))
    assert sorted(p.name for p in (tmp_path / "disk").iterdir() if not p.name.startswith(".")) == ["a", "c", "d"]


def test_is_tmpfs() -> None:
    assert is_tmpfs(Path("/dev/shm"))
    assert is_tmpfs(Path("/dev/shm/some/deeper/path"))
    assert not is_tmpfs(Path(__file__))


def test_only_the_most_recently_used_hot_tiers_are_kept(tmp_path: Path) -> None:
    from pytest_atlas.db._cache import prune_tiers

    folder = tmp_path / "cache"
    for n, tier in enumerate(["t1", "t2", "t3", "t4"]):
        ClusterCache(folder / tier).store("k", fake_cluster(tmp_path / f"src{n}", tier))
        marker = folder / tier / "k" / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    prune_tiers(folder, keep="t1", max_tiers=3)
    assert sorted(p.name for p in folder.iterdir()) == ["t1", "t3", "t4"]
