"""Basin as a DVC remote, checked with the real `dvc` CLI against the emulator, in both directions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelopsx.basin.server import BasinEmulator
from modelopsx.errors import NotFoundError, UserError
from modelopsx.storage.dvc_remote import (
    dvc_file,
    object_key,
    pull_directory,
    push_directory,
    remote_config,
)
from modelopsx.storage.stores import open_store
from tests.fixtures_basin import BASIN_SECRET_KEY, BASIN_STORE

DVC = str(Path(sys.executable).parent / "dvc")
STORE_URL = f"basin://{BASIN_STORE}/dvc"


def make_dataset(root: Path, tag: str) -> dict[str, bytes]:
    files = {f"images/{i:02d}.jpg": f"{tag} image {i} ".encode() * (50 + i) for i in range(5)}
    files["annotations.json"] = f'{{"tag": "{tag}"}}'.encode()
    files["nested/deeper/notes.txt"] = b"notes"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def dvc_repo(tmp_path: Path, basin_env: BasinEmulator) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run([DVC, "init", "-q"], repo)
    done = run(
        [
            sys.executable,
            "-m",
            "modelopsx.cli",
            "dvc-remote",
            "--store",
            STORE_URL,
            "--repo",
            str(repo),
            "--apply",
        ],
        repo,
    )
    assert "configured DVC remote" in done.stdout and BASIN_SECRET_KEY not in done.stdout
    assert BASIN_SECRET_KEY not in (repo / ".dvc/config").read_text()  # secrets only in config.local
    assert BASIN_SECRET_KEY in (repo / ".dvc/config.local").read_text()
    return repo


def test_push_from_python_then_dvc_pull(tmp_path: Path, dvc_repo: Path) -> None:
    files = make_dataset(tmp_path / "dataset", "v1")
    store = open_store(STORE_URL)
    dir_hash = push_directory(tmp_path / "dataset", store)
    assert dir_hash.endswith(".dir") and store.exists(object_key(dir_hash))
    assert push_directory(tmp_path / "dataset", store) == dir_hash  # idempotent, nothing re-sent

    (dvc_repo / "data.dvc").write_text(yaml.safe_dump(dvc_file(dir_hash, "data")))
    run([DVC, "pull"], dvc_repo)
    assert read_tree(dvc_repo / "data") == files


def test_dvc_push_then_pull_from_python(tmp_path: Path, dvc_repo: Path) -> None:
    files = make_dataset(dvc_repo / "model", "v2")
    run([DVC, "add", "-q", "model"], dvc_repo)
    run([DVC, "push"], dvc_repo)
    dir_hash = yaml.safe_load((dvc_repo / "model.dvc").read_text())["outs"][0]["md5"]
    out = pull_directory(dir_hash, open_store(STORE_URL), tmp_path / "pulled")
    assert read_tree(out) == files
    # DVC's own hashing and push_directory agree on the version id
    assert push_directory(dvc_repo / "model", open_store(STORE_URL)) == dir_hash


def test_pull_refuses_unknown_hashes_and_non_empty_targets(tmp_path: Path, basin_env: BasinEmulator) -> None:
    store = open_store(STORE_URL)
    with pytest.raises(NotFoundError, match="no DVC directory"):
        pull_directory("0" * 32 + ".dir", store, tmp_path / "out")
    with pytest.raises(UserError, match="not a DVC directory hash"):
        pull_directory("abc", store, tmp_path / "out")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    dir_hash = push_directory(tmp_path / "busy", store)
    with pytest.raises(UserError, match="not empty"):
        pull_directory(dir_hash, store, tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_remote_config_prints_commands_without_the_secret(basin_env: BasinEmulator) -> None:
    config = remote_config(STORE_URL, basin_env.endpoint)
    assert config["url"] == f"s3://{BASIN_STORE}/dvc" and config["endpointurl"] == basin_env.endpoint
    text = "\n".join(config["commands"])
    assert "endpointurl" in text and BASIN_SECRET_KEY not in text
    done = subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "dvc-remote", "--store", STORE_URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "dvc remote add -d" in done.stdout and BASIN_SECRET_KEY not in done.stdout
