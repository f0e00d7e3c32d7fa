"""The clients users point at Basin work against the emulator unchanged: s3fs (what DVC uses) and the real
`dvc` CLI with Basin as an `s3` remote (`endpointurl`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.storage.cid import cid_of_bytes
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, s3_client


@pytest.fixture
def fs(basin_emulator):
    import s3fs

    return s3fs.S3FileSystem(
        key=BASIN_ACCESS_KEY,
        secret=BASIN_SECRET_KEY,
        skip_instance_cache=True,
        use_listings_cache=False,
        client_kwargs={"endpoint_url": basin_emulator.endpoint, "region_name": "us-east-1"},
        config_kwargs={"s3": {"addressing_style": "path"}},
    )


def test_s3fs_round_trip(fs, tmp_path: Path) -> None:
    root = f"{BASIN_STORE}/fsspec"
    fs.pipe(f"{root}/a/one.txt", b"one")
    fs.pipe(f"{root}/a/two.txt", b"two two")
    local = tmp_path / "three.bin"
    local.write_bytes(os.urandom(300_000))
    fs.put_file(str(local), f"{root}/b/three.bin")
    assert fs.cat(f"{root}/a/one.txt") == b"one"
    assert fs.cat_file(f"{root}/a/two.txt", start=1, end=4) == b"wo "
    assert sorted(fs.ls(f"{root}/a", detail=False)) == [f"{root}/a/one.txt", f"{root}/a/two.txt"]
    assert sorted(fs.find(root)) == [f"{root}/a/one.txt", f"{root}/a/two.txt", f"{root}/b/three.bin"]
    assert fs.info(f"{root}/a/two.txt")["size"] == 7
    assert fs.isdir(f"{root}/b") and fs.exists(f"{root}/a/one.txt") and not fs.exists(f"{root}/nope")
    fs.get_file(f"{root}/b/three.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    with pytest.raises(OSError):  # immutable: no overwrite through fsspec either
        fs.pipe(f"{root}/a/one.txt", b"changed")
    assert fs.cat(f"{root}/a/one.txt") == b"one"
    fs.rm_file(f"{root}/a/one.txt")
    assert not fs.exists(f"{root}/a/one.txt")


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_NO_UPDATER="1")
    proc = subprocess.run([dvc, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _git(*args: str, cwd: Path) -> None:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def _set_credentials(repo: Path) -> None:
    # what `dvc remote modify --local basin access_key_id ...` writes (git-ignored, so secrets stay local)
    (repo / ".dvc" / "config.local").write_text(
        f"['remote \"basin\"']\n    access_key_id = {BASIN_ACCESS_KEY}\n"
        f"    secret_access_key = {BASIN_SECRET_KEY}\n"
    )


def test_dvc_push_then_pull_into_a_fresh_clone(basin_emulator, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    _dvc("init", "-q", cwd=repo)
    data = repo / "data"
    data.mkdir()
    for i in range(12):
        (data / f"img_{i:02d}.txt").write_text(f"image {i}\n" * (i + 1))
    (data / "weights.bin").write_bytes(os.urandom(600_000))
    _dvc("add", "data", cwd=repo)
    _dvc("remote", "add", "-d", "basin", f"s3://{BASIN_STORE}/dvcstore", cwd=repo)
    with (repo / ".dvc" / "config").open("a") as config:  # = dvc remote modify basin endpointurl ...
        config.write(f"    endpointurl = {basin_emulator.endpoint}\n")
    _set_credentials(repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "data v1", cwd=repo)

    _dvc("push", cwd=repo)
    puts = basin_emulator.stats.operations["PutObject"]
    assert puts == 14  # 13 files + the .dir manifest
    _dvc("push", cwd=repo)  # nothing new: no writes, and immutable keys are never re-put
    assert basin_emulator.stats.operations["PutObject"] == puts

    clone = tmp_path / "clone"
    _git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    _set_credentials(clone)
    _dvc("pull", cwd=clone)
    for original in data.iterdir():
        assert (clone / "data" / original.name).read_bytes() == original.read_bytes()
    # objects sit in DVC's remote layout and carry their Basin CID
    s3 = s3_client(basin_emulator.endpoint)
    listed = s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="dvcstore/files/md5/")["Contents"]
    assert len(listed) == 14
    sample = s3.get_object(Bucket=BASIN_STORE, Key=listed[0]["Key"])
    assert sample["Metadata"]["cid"] == cid_of_bytes(sample["Body"].read())
