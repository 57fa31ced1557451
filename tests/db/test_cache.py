"""The cluster cache: two tiers (persistent, and a copy on tmpfs), manifests that catch damage,
eviction, pruning that spares entries in use, and what interrupted stores leave."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from pytest_atlas.db._cache import (
    ClusterCache,
    DamagedEntry,
    copy_entry,
    copy_tree,
    enforce_budget,
    hot_usage,
    is_tmpfs,
    prune_tiers,
)
from pytest_atlas.db._fs import FileLock, UnsafePathError, free_bytes

pytest_plugins = ["pytester"]

ME = os.geteuid()


def fake_cluster(path: Path, marker: str) -> Path:
    (path / "global").mkdir(parents=True)
    (path / "PG_VERSION").write_text("15\n")
    (path / "global" / "marker").write_text(marker)
    (path / "postmaster.pid").write_text("123\n")  # never cached
    return path


def store(cache: ClusterCache, key: str, src: Path) -> None:
    with cache.lock(key):
        cache.store(key, src, owner=ME)


def test_store_fills_both_tiers_and_lookup_prefers_the_hot_one(tmp_path: Path) -> None:
    hot = ClusterCache(tmp_path / "hot", max_entries=2)
    cache = ClusterCache(tmp_path / "disk", hot=hot)
    cache.prepare()
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    assert (tmp_path / "disk" / "k1" / "pgdata" / "global" / "marker").read_text() == "one"
    assert not (tmp_path / "disk" / "k1" / "pgdata" / "postmaster.pid").exists()
    with cache.lock("k1", shared=True):
        found = cache.lookup("k1")
    assert found is not None and found.pgdata == tmp_path / "hot" / "k1" / "pgdata"
    assert set(found.manifest) == {"PG_VERSION", "global/marker"}
    assert found.manifest["global/marker"].size == 3


def test_the_cache_is_private_to_the_invoking_user(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "a" / "b" / "cache")
    cache.prepare()
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    for folder in (tmp_path / "a", tmp_path / "a" / "b", cache.root, cache.root / "k1", cache.root / "k1" / "pgdata"):
        st = folder.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (ME, 0o700), folder


def test_an_entry_only_on_disk_is_checked_then_promoted_once(tmp_path: Path) -> None:
    store(ClusterCache(tmp_path / "disk"), "k1", fake_cluster(tmp_path / "src", "one"))
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    assert not (tmp_path / "hot" / "k1").exists()
    with cache.lock("k1", shared=True):
        found = cache.lookup("k1")
    assert found is not None and found.pgdata == tmp_path / "hot" / "k1" / "pgdata"
    assert (tmp_path / "hot" / "k1" / "pgdata" / "global" / "marker").read_text() == "one"


def test_a_damaged_entry_is_caught_by_its_manifest(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk")
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    marker = tmp_path / "disk" / "k1" / "pgdata" / "global" / "marker"
    marker.write_text("two")  # same size, other bytes: only the CRC tells
    entry = cache.lookup("k1")
    assert entry is not None and entry.persistent
    with pytest.raises(DamagedEntry, match="CRC-32 differs"):
        copy_entry(entry, tmp_path / "copy1")
    marker.write_text("")  # truncated: the sizes tell
    with pytest.raises(DamagedEntry, match="has 0 bytes"):
        copy_entry(entry, tmp_path / "copy2")
    marker.unlink()
    with pytest.raises(DamagedEntry, match="missing"):
        copy_entry(entry, tmp_path / "copy3")
    # before anything starts (the report header): the damaged entry is removed
    assert cache.check("k1") == (
        False,
        f"damaged entry removed, rebuilt on first use ({marker} is missing (1 file(s) missing))",
    )
    assert cache.lookup("k1") is None


def test_a_damaged_copy_in_memory_is_replaced_from_the_persistent_entry(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    (tmp_path / "hot" / "k1" / "pgdata" / "PG_VERSION").write_text("")
    hit, note = cache.check("k1")
    assert hit and note is not None and note.startswith("damaged copy in memory removed, copied again from the cache")
    assert not (tmp_path / "hot" / "k1").exists() and (tmp_path / "disk" / "k1").exists()
    with cache.lock("k1", shared=True):
        found = cache.lookup("k1")
    assert found is not None and (found.pgdata / "PG_VERSION").read_text() == "15\n"


def test_evict_removes_every_tier_and_missing_entries_are_none(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    with cache.lock("k1"):
        cache.evict("k1")
        assert cache.lookup("k1") is None
    assert not (tmp_path / "disk" / "k1").exists() and not (tmp_path / "hot" / "k1").exists()
    # a folder without its completion marker is not an entry
    (tmp_path / "disk" / "k2" / "pgdata").mkdir(parents=True)
    assert cache.lookup("k2") is None


def test_least_recently_used_entries_beyond_the_limit_go_unless_in_use(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk", max_entries=3)
    for n, key in enumerate(["a", "b", "c"]):
        store(cache, key, fake_cluster(tmp_path / f"src{n}", key))
        marker = tmp_path / "disk" / key / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    cache.lookup("a")  # used: now the most recent
    with cache.lock("b", shared=True):  # another run is copying "b": it stays
        store(cache, "d", fake_cluster(tmp_path / "src3", "d"))
    entries = sorted(p.name for p in (tmp_path / "disk").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert entries == ["a", "b", "c", "d"]
    store(cache, "e", fake_cluster(tmp_path / "src4", "e"))
    entries = sorted(p.name for p in (tmp_path / "disk").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert entries == ["a", "d", "e"]
    assert not (tmp_path / "disk" / "b.lock").exists()  # a pruned entry's lock file goes with it


def test_leftovers_of_interrupted_stores_are_removed_once_their_owner_is_gone(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk")
    cache.prepare()
    live = cache.root / ".k1.aaaa1111.tmp"
    dead = cache.root / ".k2.bbbb2222.tmp"
    trash = cache.root / ".k3.cccc3333.trash"
    for folder in (live, dead, trash):
        (folder / "pgdata").mkdir(parents=True)
    (cache.root / "gone.lock").write_bytes(b"")  # a lock file whose entry is gone
    holder = FileLock.acquire(cache.root / "k1.lock")  # a store of k1 is running
    try:
        cache.prepare()
        assert sorted(Path(p).name for p in cache.cleaned) == [dead.name, trash.name]
        assert live.exists() and not dead.exists() and not trash.exists()
        assert not (cache.root / "gone.lock").exists()
        assert (cache.root / "k1.lock").exists()  # held: kept
    finally:
        assert holder is not None
        holder.release()


def test_a_link_in_the_cluster_never_travels_into_the_cache(tmp_path: Path) -> None:
    cache = ClusterCache(tmp_path / "disk")
    cache.prepare()
    src = fake_cluster(tmp_path / "src", "one")
    secret = tmp_path / "secret"
    secret.write_text("root's file")
    (src / "global" / "planted").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="not a regular file or folder"), cache.lock("k1"):
        cache.store("k1", src, owner=ME)
    assert cache.lookup("k1") is None
    assert [p.name for p in cache.root.iterdir() if not p.name.endswith(".lock")] == []
    (src / "global" / "planted").unlink()
    os.link(secret, src / "global" / "hardlinked")
    with pytest.raises(UnsafePathError, match="2 links"), cache.lock("k1"):
        cache.store("k1", src, owner=ME)
    (src / "global" / "hardlinked").unlink()
    with pytest.raises(UnsafePathError, match="belongs to"), cache.lock("k1"):
        cache.store("k1", src, owner=ME + 1)  # files of another account than the one named


def test_is_tmpfs() -> None:
    assert is_tmpfs(Path("/dev/shm"))
    assert is_tmpfs(Path("/dev/shm/some/deeper/path"))
    assert not is_tmpfs(Path(__file__))


def test_only_the_most_recently_used_hot_tiers_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    for n, tier in enumerate(["t1", "t2", "t3", "t4", "t5"]):
        store(ClusterCache(folder / tier), "k", fake_cluster(tmp_path / f"src{n}", tier))
        marker = folder / tier / "k" / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    with ClusterCache(folder / "t2").lock("k", shared=True):  # in use by another run: stays
        prune_tiers(folder, keep="t1", max_tiers=3)
    assert sorted(p.name for p in folder.iterdir()) == ["t1", "t2", "t4", "t5"]


def test_an_entry_pruned_from_the_disk_tier_leaves_nothing_in_memory(tmp_path: Path) -> None:
    hot = ClusterCache(tmp_path / "hot", max_entries=4)
    cache = ClusterCache(tmp_path / "disk", max_entries=1, hot=hot)
    cache.prepare()
    store(cache, "k1", fake_cluster(tmp_path / "src1", "one"))
    os.utime(tmp_path / "disk" / "k1" / "atlas-cache.json", (time.time() - 60, time.time() - 60))
    store(cache, "k2", fake_cluster(tmp_path / "src2", "two"))
    for tier in ("disk", "hot"):
        assert sorted(p.name for p in (tmp_path / tier).iterdir()) == ["k2", "k2.lock"], tier


def test_the_hot_tiers_together_hold_at_most_their_budget(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    for n, tier in enumerate(["t1", "t2", "t3"]):
        store(ClusterCache(folder / tier), f"k{n}", fake_cluster(tmp_path / f"src{n}", "x" * 1000))
        marker = folder / tier / f"k{n}" / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    sizes = [info.size for info in hot_usage(folder)]
    assert len(sizes) == 3 and sizes[0] > 1000
    with ClusterCache(folder / "t1").lock("k0", shared=True):  # in use by another run: stays
        enforce_budget(folder, sizes[0] + 1)
    assert [info.key for info in hot_usage(folder)] == ["k2", "k0"]
    enforce_budget(folder, sizes[0] + 1)
    assert [info.key for info in hot_usage(folder)] == ["k2"]
    leftovers = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.lock"))
    assert leftovers == ["t3/k2.lock"]  # no lock file of an evicted entry stays behind


def test_the_report_header_shows_the_memory_the_hot_cache_holds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(["atlas: hot cache in memory: * MB in * entr* (/dev/shm/*/cache), at most 96 MB"])


def test_a_tier_removed_by_another_run_is_made_again_when_its_lock_is_taken(tmp_path: Path) -> None:
    """Another run prunes an in-memory tier nobody held a lock in; a run that had made that folder
    before must not fail with FileNotFoundError on its next lock (seen with two suites at once)."""
    from pytest_atlas.db._fs import remove_tree

    tier = ClusterCache(tmp_path / "cache" / "tier", persistent=False)
    with tier.lock("pg15-key", shared=True):
        pass
    assert tier.root.is_dir()
    assert ClusterCache(tmp_path / "cache" / "tier", persistent=False).remove_all()  # the other run
    assert not tier.root.exists()
    with tier.lock("pg15-key"):
        assert (tier.root / "pg15-key.lock").is_file()
    remove_tree(tier.root)


def test_clearing_an_entry_whose_tier_another_run_removes_meanwhile_counts_it_as_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cache clear` takes an entry's lock, removes the entry, then its lock file. Another run that
    listed the tier's locks before this lock file existed may remove the whole tier in between
    (seen with two suites at once): the entry is gone, which is what was asked, not a bare
    FileNotFoundError."""
    from pytest_atlas.db._fs import remove_tree

    tier = ClusterCache(tmp_path / "cache" / "tier", persistent=False)
    tier.prepare()
    store(tier, "pg15-key", fake_cluster(tmp_path / "src", "one"))
    (listed,) = tier.entries()
    evict = ClusterCache._evict

    def evict_then_the_other_run_removes_the_tier(self: ClusterCache, key: str) -> None:
        evict(self, key)
        remove_tree(self.root)

    monkeypatch.setattr(ClusterCache, "_evict", evict_then_the_other_run_removes_the_tier)
    assert tier.discard(listed.key) is True
    monkeypatch.undo()
    assert not tier.root.exists()
    assert tier.reap_temporary() == []


def test_no_copy_is_made_in_memory_that_would_leave_the_run_too_little_room(tmp_path: Path) -> None:
    """The in-memory tier lies on the file system of the run's data: an entry is copied there only
    when the copy, the run's own copy and the server's room (``hot_room``) fit; else the persistent
    entry serves the run and ``hot_skipped`` says why (the old code copied regardless)."""
    cache = ClusterCache(tmp_path / "disk", hot=ClusterCache(tmp_path / "hot"))
    free = free_bytes(tmp_path)
    assert free is not None
    cache.hot_room = free  # more than is left once anything is copied
    store(cache, "k1", fake_cluster(tmp_path / "src", "one"))
    assert not (tmp_path / "hot" / "k1").exists()  # not copied after the store
    with cache.lock("k1", shared=True):
        found = cache.lookup("k1")
    assert found is not None and found.persistent and found.pgdata == tmp_path / "disk" / "k1" / "pgdata"
    assert not (tmp_path / "hot" / "k1").exists()  # nor promoted by the lookup
    assert cache.hot_skipped.startswith(f"not copied into memory: {tmp_path / 'hot'} has ")
    assert "and this run's server need ~" in cache.hot_skipped
    cache.hot_room = 0  # room enough: promoted as before
    with cache.lock("k1", shared=True):
        found = cache.lookup("k1")
    assert found is not None and found.pgdata == tmp_path / "hot" / "k1" / "pgdata"


def test_a_copy_never_goes_into_an_existing_folder_nor_removes_it(tmp_path: Path) -> None:
    """``cp -a src dst`` copies into ``dst/src`` when ``dst`` exists, and a failed copy removes its
    destination: only a destination the copy makes itself may be removed."""
    src = fake_cluster(tmp_path / "src", "one")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep").write_text("mine")
    with pytest.raises(FileExistsError):
        copy_tree(src, theirs)
    assert sorted(p.name for p in theirs.iterdir()) == ["keep"]


def test_making_room_removes_copies_in_memory_least_recently_used_first_but_none_in_use(tmp_path: Path) -> None:
    from pytest_atlas.db._cache import make_room

    folder = tmp_path / "cache"
    for n, tier in enumerate(["t1", "t2", "t3"]):
        store(ClusterCache(folder / tier), f"k{n}", fake_cluster(tmp_path / f"src{n}", tier))
        marker = folder / tier / f"k{n}" / "atlas-cache.json"
        os.utime(marker, (time.time() - 100 + n, time.time() - 100 + n))
    free = free_bytes(folder)
    assert free is not None
    assert make_room(folder, 0) == []  # room enough already: nothing goes
    with ClusterCache(folder / "t2").lock("k1", shared=True):  # in use by another run: stays
        removed = make_room(folder, free * 2)
    assert [info.key for info in removed] == ["k0", "k2"]
    assert [info.key for info in hot_usage(folder)] == ["k1"]
