"""Sync under injected faults (500s, dropped connections, truncated bodies) and after being killed halfway."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelopsx.basin.server import BasinEmulator
from modelopsx.storage.local import LocalStore
from modelopsx.storage.sync import sync
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, start_emulator
from tests.integration.storage.conftest import make_basin_store


def make_files(root: Path, n: int) -> dict[str, bytes]:
    files = {f"shard{i % 4}/file{i:04d}.bin": os.urandom(200 + (i * 997) % 20_000) for i in range(n)}
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return files


def test_sync_completes_verified_at_fail_rate_0_2(tmp_path: Path) -> None:
    files = make_files(tmp_path / "src", 60)
    emulator = start_emulator(tmp_path / "basin", fail_rate=0.2, fail_seed=7)
    try:
        upload = sync(str(tmp_path / "src"), make_basin_store(emulator, "faulty"), workers=4)
        assert upload.failed == 0, upload.failures
        assert upload.files_sent == len(files) and upload.verified == len(files)
        assert upload.retries > 0 and emulator.stats.faults > 0
        assert upload.manifest_key is not None

        download = sync(make_basin_store(emulator, "faulty"), LocalStore(tmp_path / "back"), workers=4)
        assert download.failed == 0 and download.verified == len(files) and download.retries > 0
        print(
            f"\n{emulator.stats.requests} requests, {emulator.stats.faults} failed by injection "
            f"{dict(emulator.stats.faults_by_kind)}; upload: {upload.verified} verified, {upload.retries} "
            f"retries; download: {download.verified} verified, {download.retries} retries"
        )
        assert emulator.stats.faults_by_kind["truncate"] > 0  # GETs were cut short and retried
        emulator.fail_rate = 0.0
        clean = make_basin_store(emulator, "faulty")
        assert {k: clean.get(k) for k in files} == files  # nothing lost or garbled on the server
        assert {k: (tmp_path / "back" / k).read_bytes() for k in files} == files
    finally:
        emulator.stop()


@pytest.fixture
def slow_emulator(tmp_path: Path) -> Iterator[BasinEmulator]:
    emulator = start_emulator(tmp_path / "basin", latency_ms=40)
    yield emulator
    emulator.stop()


def test_killed_sync_resumes_and_sends_only_what_is_missing(
    tmp_path: Path, slow_emulator: BasinEmulator
) -> None:
    files = make_files(tmp_path / "src", 80)
    env = os.environ | {
        "MODELOPSX_BASIN_ENDPOINT": slow_emulator.endpoint,
        "MODELOPSX_BASIN_STORE": BASIN_STORE,
        "MODELOPSX_BASIN_ACCESS_KEY": BASIN_ACCESS_KEY,
        "MODELOPSX_BASIN_SECRET_KEY": BASIN_SECRET_KEY,
    }
    url = f"basin://{BASIN_STORE}/mirror"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelopsx.cli",
            "sync",
            str(tmp_path / "src"),
            url,
            "--workers",
            "2",
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watcher = make_basin_store(slow_emulator, "mirror")
    deadline = time.monotonic() + 60
    try:
        while len(watcher.list("").objects) < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.3)  # let a put whose body had fully arrived finish on the server
    landed = {o.key for o in watcher.iter_all()}
    assert 20 <= len(landed) < len(files), "the sync was not interrupted halfway"
    assert not any(k.startswith(".modelopsx-sync") for k in landed)  # killed runs leave no manifest

    slow_emulator.latency_ms = 0
    rerun = sync(str(tmp_path / "src"), make_basin_store(slow_emulator, "mirror"), workers=4)
    assert rerun.failed == 0 and rerun.skipped == len(landed)
    assert rerun.files_sent == len(files) - len(landed)  # only what was missing
    assert rerun.manifest_key is not None
    assert {k: watcher.get(k) for k in files} == files
