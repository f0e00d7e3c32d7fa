"""Sync across the store pairs users need (local, s3 and gs each way with basin), on real servers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelopsx.errors import StorageError
from modelopsx.storage.base import ObjectStore
from modelopsx.storage.manifest import read_latest_manifest
from modelopsx.storage.sync import sync

FILES = {
    "data/images/a.jpg": b"\xff\xd8" + b"a" * 3000,
    "data/images/b.jpg": b"\xff\xd8" + b"b" * 70_000,
    "data/annotations.json": b'{"images": []}',
    "model/saved_model.pb": bytes(range(256)) * 40,
    "README": b"",
}
PAIRS = [
    ("local", "basin"),
    ("basin", "local"),
    ("s3", "basin"),
    ("basin", "s3"),
    ("gs", "basin"),
    ("basin", "gs"),
]


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_sync_pair(src_kind: str, dst_kind: str, store_factory: Callable[..., ObjectStore]) -> None:
    src, dst = store_factory(src_kind, "src"), store_factory(dst_kind, "dst")
    for key, data in FILES.items():
        src.put(key, data)
    first = sync(src, dst, workers=4)
    assert (first.files_sent, first.failed, first.verified) == (len(FILES), 0, len(FILES))
    assert {k: dst.get(k) for k in FILES} == FILES
    manifest = read_latest_manifest(dst)
    assert manifest is not None and set(manifest.objects) == set(FILES)

    again = sync(src, dst, workers=4)
    assert (again.files_sent, again.bytes_sent, again.skipped, again.manifest_key) == (0, 0, len(FILES), None)

    src.put("data/images/c.jpg", b"new image")
    third = sync(src, dst, workers=4)
    assert third.files_sent == 1 and third.skipped == len(FILES)
    assert dst.get("data/images/c.jpg") == b"new image"


def test_basin_destination_is_never_overwritten_or_deleted(store_factory: Callable[..., ObjectStore]) -> None:
    src, dst = store_factory("local", "src"), store_factory("basin", "dst")
    src.put("x.bin", b"new content")
    dst.put("x.bin", b"old content")
    dst.put("extra.bin", b"kept")
    summary = sync(src, dst)
    assert summary.failed == 1 and "immutable" in summary.failures[0][1]
    assert dst.get("x.bin") == b"old content" and summary.manifest_key is None
    with pytest.raises(StorageError, match="--delete refused"):
        sync(src, dst, delete=True)
    assert dst.get("extra.bin") == b"kept"


def test_s3_destination_without_manifest_is_compared_by_head(
    store_factory: Callable[..., ObjectStore],
) -> None:
    src, dst = store_factory("basin", "src"), store_factory("s3", "dst")
    for key, data in FILES.items():
        src.put(key, data)
        dst.put(key, data)  # already there, but no sync manifest says so
    summary = sync(src, dst)
    assert summary.files_sent == 0 and summary.skipped == len(FILES)


def test_sync_into_a_read_only_basin_stops_at_the_first_refusal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from modelopsx.storage.local import LocalStore
    from tests.fixtures_basin import start_emulator
    from tests.integration.storage.conftest import make_basin_store

    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}.bin").write_bytes(bytes([i]) * 100)
    emulator = start_emulator(tmp_path / "basin", read_only=True)
    try:
        summary = sync(LocalStore(src), make_basin_store(emulator, "mirror"), workers=2)
        puts = emulator.stats.operations["PutObject"]
    finally:
        emulator.stop()
    assert summary.failed == 40 and summary.manifest_key is None
    assert puts <= 2  # the workers that were already sending; the rest are not tried
    messages = " ".join(message for _, message in summary.failures)
    assert "read-only" in messages and "private key" in messages and "secret key" not in messages
