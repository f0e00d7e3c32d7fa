"""The stat-keyed CID cache: hits for old unchanged files, misses for anything that may have changed."""

from __future__ import annotations

import os
from pathlib import Path

from modelopsx.storage.hashcache import RACY_NS, HashCache


def age(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def test_hit_only_for_unchanged_files_modified_well_before_recording(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "c.sqlite")
    old, racy = tmp_path / "old.bin", tmp_path / "racy.bin"
    old.write_bytes(b"old")
    racy.write_bytes(b"racy")
    age(old, 60)
    cache.put_many([(old, old.stat(), "bafkr4iold"), (racy, racy.stat(), "bafkr4iracy")])
    assert cache.get(old, old.stat()) == "bafkr4iold"
    assert cache.get(racy, racy.stat()) is None  # modified within the racy window of its recording
    assert RACY_NS > 0

    old.write_bytes(b"new content")
    age(old, 60)
    assert cache.get(old, old.stat()) is None  # size or mtime changed
    cache.close()
    assert HashCache(tmp_path / "c.sqlite").get(racy, racy.stat()) is None


def test_an_unusable_cache_location_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = HashCache(blocker / "sub" / "c.sqlite")
    cache.put_many([(blocker, blocker.stat(), "bafkr4ix")])
    assert cache.get(blocker, blocker.stat()) is None
