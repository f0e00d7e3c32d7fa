"""The sync engine between two local stores: incremental, verified, manifest last, dry run, delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.storage.cid import cid_of_bytes
from modelopsx.storage.local import LocalStore
from modelopsx.storage.manifest import SYNC_DIR, read_latest_manifest
from modelopsx.storage.sync import sync


def make_tree(root: Path, n: int = 12) -> dict[str, bytes]:
    files = {f"images/{i:03d}.jpg": bytes([i]) * (100 + 37 * i) for i in range(n)}
    files["annotations.json"] = json.dumps({"images": n}).encode()
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return files


def test_full_then_incremental_sync(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    dst = LocalStore(tmp_path / "dst")
    first = sync(str(tmp_path / "src"), dst, workers=4)
    assert (first.files_sent, first.skipped, first.failed) == (len(files), 0, 0)
    assert first.verified == len(files) and first.bytes_sent == sum(len(v) for v in files.values())
    for key, data in files.items():
        assert dst.get(key) == data
    manifest = read_latest_manifest(dst)
    assert manifest is not None and manifest.key == first.manifest_key
    assert manifest.objects == {k: (cid_of_bytes(v), len(v)) for k, v in files.items()}

    again = sync(str(tmp_path / "src"), dst)
    assert (again.files_sent, again.bytes_sent, again.skipped) == (0, 0, len(files))
    assert again.manifest_key is None  # nothing changed: no new manifest

    (tmp_path / "src/images/003.jpg").write_bytes(b"changed")
    (tmp_path / "src/images/new.jpg").write_bytes(b"new file")
    third = sync(str(tmp_path / "src"), dst)
    assert third.files_sent == 2 and third.skipped == len(files) - 1
    assert dst.get("images/003.jpg") == b"changed" and dst.get("images/new.jpg") == b"new file"
    assert len([o for o in dst.list(SYNC_DIR + "/").objects]) == 2


def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", n=3)
    summary = sync(str(tmp_path / "src"), str(tmp_path / "dst"), dry_run=True)
    assert summary.dry_run and summary.files_sent == 0 and summary.bytes_sent == 0
    assert sorted(p.key for p in summary.plan if p.action == "send") == sorted(files)
    assert "nothing was sent" in summary.describe()
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").rglob("*"))


def test_delete_only_when_asked(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", n=2)
    dst = LocalStore(tmp_path / "dst")
    dst.put("stale.txt", b"old")
    sync(str(tmp_path / "src"), dst)
    assert dst.exists("stale.txt")
    summary = sync(str(tmp_path / "src"), dst, delete=True)
    assert summary.deleted == 1 and not dst.exists("stale.txt")


def test_sync_of_a_prefix_and_the_summary_text(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", n=2)
    summary = sync(str(tmp_path / "src"), str(tmp_path / "dst" / "mirror"), quiet=True)
    text = summary.describe()
    assert f"{len(files)} files sent" in text and "0 failed" in text and "manifest" in text
    assert (tmp_path / "dst/mirror/annotations.json").read_bytes() == files["annotations.json"]


def test_source_read_errors_are_reported_not_raised(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", n=2)
    src = LocalStore(tmp_path / "src")
    src.put("recorded.bin", b"abcdef")
    path = tmp_path / "src/recorded.bin"
    stat = path.stat()
    path.write_bytes(b"abcdeX")  # bit rot under a recorded CID, size and mtime kept
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    from modelopsx.storage.retry import RetryPolicy

    summary = sync(src, str(tmp_path / "dst"), policy=RetryPolicy(attempts=2, base_s=0.001))
    assert summary.failed == 1 and summary.failures[0][0] == "recorded.bin"
    assert summary.manifest_key is None  # an incomplete copy never gets a manifest
    assert summary.files_sent == 3


def test_manifest_lists_itself_out(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", n=2)
    sync(str(tmp_path / "src"), str(tmp_path / "mid"))
    chained = sync(str(tmp_path / "mid"), str(tmp_path / "end"))
    assert chained.total == 3  # the manifest of the first sync is not copied as data
    assert not any(p.key.startswith(SYNC_DIR) for p in chained.plan)


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_do_not_change_the_result(tmp_path: Path, workers: int) -> None:
    files = make_tree(tmp_path / "src", n=20)
    summary = sync(str(tmp_path / "src"), str(tmp_path / "dst"), workers=workers)
    assert summary.files_sent == len(files) and summary.failed == 0
