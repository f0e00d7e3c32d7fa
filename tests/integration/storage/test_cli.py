"""`modelopsx sync` as a user runs it: a subprocess, clear errors, no tracebacks, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.basin.server import BasinEmulator
from tests.fixtures_basin import BASIN_SECRET_KEY, BASIN_STORE


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | (env or {}),
    )


@pytest.fixture
def src(tmp_path: Path) -> Path:
    for i in range(4):
        (tmp_path / "src" / "d").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "d" / f"{i}.txt").write_text(f"file {i}")
    return tmp_path / "src"


def test_sync_dry_run_then_real_then_no_op(src: Path, basin_env: BasinEmulator) -> None:
    url = f"basin://{BASIN_STORE}/cli"
    plan = cli("sync", str(src), url, "--dry-run")
    assert plan.returncode == 0 and "would send up to 4" in plan.stdout and "d/0.txt" in plan.stdout
    done = cli("sync", str(src), url, "--quiet", "--workers", "2")
    assert done.returncode == 0 and "4 files sent" in done.stdout and "4 verified" in done.stdout
    again = cli("sync", str(src), url, "--json")
    summary = json.loads(again.stdout)
    assert (summary["files_sent"], summary["bytes_sent"], summary["skipped"]) == (0, 0, 4)


def test_delete_on_basin_is_refused(src: Path, basin_env: BasinEmulator) -> None:
    done = cli("sync", str(src), f"basin://{BASIN_STORE}/cli", "--delete")
    assert done.returncode != 0 and "--delete refused" in done.stderr and "immutable" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_key_is_access_denied_without_the_secret(src: Path, basin_env: BasinEmulator) -> None:
    done = cli(
        "sync", str(src), f"basin://{BASIN_STORE}/cli", env={"MODELOPSX_BASIN_SECRET_KEY": "wrong-secret"}
    )
    assert done.returncode != 0 and "access denied by" in done.stderr and "basin-test-access" in done.stderr
    assert "wrong-secret" not in done.stderr + done.stdout and BASIN_SECRET_KEY not in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_store_and_bad_urls(src: Path, basin_env: BasinEmulator) -> None:
    done = cli("sync", str(src), "basin://0x00000000000000000000000000000000000000ee.nope/x")
    assert done.returncode != 0 and "does not exist" in done.stderr and "--create-store" in done.stderr
    bad = cli("sync", str(src), "ftp://host/path")
    assert bad.returncode != 0 and "unknown store URL" in bad.stderr
    for out in (done, bad):
        assert "Traceback" not in out.stderr


def test_unreachable_endpoint_is_named(src: Path) -> None:
    env = {
        "MODELOPSX_BASIN_ENDPOINT": "http://127.0.0.1:9",
        "MODELOPSX_BASIN_ACCESS_KEY": "k",
        "MODELOPSX_BASIN_SECRET_KEY": "s",
    }
    done = cli("sync", str(src), f"basin://{BASIN_STORE}/x", env=env)
    assert done.returncode != 0 and "cannot reach" in done.stderr and "127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
