"""The registry's git + DVC + GTO mirror, driven like a user would: the real `git`, `dvc` and `gto` CLIs
against the Basin emulator, with datasets published and models registered through the registry API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from modelopsx.basin.server import BasinEmulator
from modelopsx.evaluation.curves import CURVES_FILE
from modelopsx.registry.champion import champion, promote_model, rollback
from modelopsx.registry.datasets import publish_dataset
from modelopsx.registry.log import Registry
from modelopsx.registry.mirror.git import MirrorError
from modelopsx.registry.mirror.sync import SyncSummary, sync_mirror
from modelopsx.registry.models import register_model
from modelopsx.registry.records import Lineage
from modelopsx.storage.dvc_remote import push_directory
from modelopsx.storage.stores import open_store
from tests.fixtures_basin import BASIN_STORE
from tests.integration.registry.helpers import fake_model_dir

BIN = Path(sys.executable).parent
DVC, GTO = str(BIN / "dvc"), str(BIN / "gto")
MODEL = "pedestrian-detector"
DATASET = "synthetic"
STORE_URL = f"basin://{BASIN_STORE}"


def run(cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done


def modelopsx(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "modelopsx.cli", *args], cwd, ok)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@dataclass
class Populated:
    registry: Registry
    datasets: dict[int, Path]
    models: dict[int, Path]
    metrics: dict[int, dict[str, float]]


def register_version(registry: Registry, tmp: Path, seq: int, dataset: dict, f1: float) -> Path:
    """A model version trained on `dataset`, with an evaluation whose artifacts hold curves (as the pipeline
    stores them)."""
    model_dir = fake_model_dir(tmp / "models", seq)
    metrics = {"f1": f1, "precision": f1 + 0.05, "recall": f1 - 0.05, "mr2_reasonable": 1 - f1}
    lineage = Lineage(
        dataset_name=DATASET, dataset_version=dataset["version"], dataset_dvc_hash=dataset["dvc_hash"]
    )
    record = register_model(registry, MODEL, model_dir, registry.store, metrics, lineage=lineage)
    evaluation = tmp / f"evaluation-{seq}"
    evaluation.mkdir()
    curves = {
        "precision_recall": [{"recall": r / 10, "precision": f1 + (10 - r) / 100} for r in range(11)],
        "miss_rate_fppi": [{"fppi": 10 ** (k / 4 - 2), "miss_rate": 1 - f1 * k / 8} for k in range(9)],
    }
    (evaluation / CURVES_FILE).write_text(json.dumps(curves))
    (evaluation / "evaluation.json").write_text(json.dumps({"metrics": metrics}))
    registry.append(
        "evaluations",
        MODEL,
        {
            "model_name": MODEL,
            "model_version": record["seq"],
            "metrics": metrics,
            "artifacts_dvc_hash": push_directory(evaluation, registry.store),
        },
    )
    return model_dir


@pytest.fixture
def populated(tmp_path: Path, basin_env: BasinEmulator, monkeypatch: pytest.MonkeyPatch) -> Populated:
    """Two dataset versions, two models (one on each) both promoted in turn: the champion is v2."""
    from modelopsx.data.synth import generate_synthetic

    monkeypatch.setenv("MODELOPSX_HOME", str(tmp_path / "state"))  # no stray local store is ever used
    registry = Registry(open_store(STORE_URL))
    datasets, models, metrics = {}, {}, {}
    for version, f1 in ((1, 0.5), (2, 0.6)):
        folder = tmp_path / f"dataset-v{version}"
        generate_synthetic(folder, 4 + version, seed=version, size=(96, 64), quiet=True)
        record = publish_dataset(folder, DATASET, registry.store)
        assert record["version"] == version
        datasets[version] = folder
        models[version] = register_version(registry, tmp_path, version, record, f1)
        metrics[version] = registry.get("models", MODEL, version)["metrics"]
        promote_model(registry, MODEL, version, f"gate: f1 {f1}")
    return Populated(registry, datasets, models, metrics)


def new_dvc_repo(root: Path) -> Path:
    """The README's steps: git init, dvc init, then the Basin remote with the default store."""
    root.mkdir()
    run(["git", "init", "-q", "-b", "main"], root)
    run([DVC, "init", "-q"], root)
    modelopsx("dvc-remote", "--apply", cwd=root)
    return root


def gto_prod_version(repo: Path) -> str | None:
    """The version in GTO's `prod` stage, as `gto show` reports it."""
    shown = json.loads(run([GTO, "show", "--json"], repo).stdout)
    return shown[MODEL]["stage"]["prod"]


@pytest.mark.slow
def test_walkthrough_pull_any_version_compare_models_and_gto_stages(
    tmp_path: Path, populated: Populated
) -> None:
    repo = new_dvc_repo(tmp_path / "registry-repo")
    done = modelopsx("dvc-sync", "--repo", ".", "--quiet", cwd=repo)
    assert "4 new commit(s)" in done.stdout, done.stdout
    log = run(["git", "log", "--format=%s"], repo).stdout.splitlines()
    assert len(log) == 5 and log[-1].startswith("DVC set-up")  # one commit per version, set-up first
    pointer = yaml.safe_load((repo / "datasets" / f"{DATASET}.dvc").read_text())
    assert pointer["outs"][0]["hash"] == "md5" and pointer["outs"][0]["md5"].endswith(".dir")

    # an older dataset version, then an older model with the data it was trained on
    run(["git", "checkout", "-q", f"{DATASET}@v1"], repo)
    run([DVC, "pull", "-q"], repo)
    assert read_tree(repo / "datasets" / DATASET) == read_tree(populated.datasets[1])
    run(["git", "checkout", "-q", f"{MODEL}@v1"], repo)
    run([DVC, "pull", "-q"], repo)
    assert read_tree(repo / "models" / MODEL / "model") == read_tree(populated.models[1])
    assert read_tree(repo / "models" / MODEL / "dataset") == read_tree(populated.datasets[1])
    run(["git", "checkout", "-q", "main"], repo)

    diff = json.loads(run([DVC, "metrics", "diff", f"{MODEL}@v1", f"{MODEL}@v2", "--json"], repo).stdout)
    f1 = diff[f"models/{MODEL}/metrics.json"]["f1"]
    assert (f1["old"], f1["new"]) == (populated.metrics[1]["f1"], populated.metrics[2]["f1"])
    run([DVC, "plots", "diff", f"{MODEL}@v1", f"{MODEL}@v2"], repo)  # as the README: into dvc_plots/
    html = (repo / "dvc_plots" / "index.html").read_text()
    assert "precision_recall" in html and "miss_rate_fppi" in html and f"{MODEL}@v1" in html

    current = champion(populated.registry, MODEL)
    assert current is not None and gto_prod_version(repo) == f"v{current['seq']}.0.0" == "v2.0.0"

    # nothing new: nothing committed or tagged (the plots just written are ignored, not "uncommitted changes")
    head, tags = run(["git", "rev-parse", "HEAD"], repo).stdout, run(["git", "tag"], repo).stdout
    done = modelopsx("dvc-sync", "--repo", ".", cwd=repo)
    assert "0 new commit(s)" in done.stdout
    assert run(["git", "rev-parse", "HEAD"], repo).stdout == head and run(["git", "tag"], repo).stdout == tags

    # a rollback is a new stage assignment on the older version's commit, and GTO follows it
    rollback(populated.registry, MODEL, 1, "v2 misses children")
    done = modelopsx("dvc-sync", "--repo", ".", "--json", cwd=repo)
    summary = json.loads(done.stdout)
    assert summary["commits"] == [] and summary["tags"] == [f"{MODEL}#prod#3"]
    assert gto_prod_version(repo) == "v1.0.0"


def test_a_version_whose_objects_are_missing_is_named_and_the_rest_is_synced(
    tmp_path: Path, populated: Populated
) -> None:
    ghost = populated.registry.get("models", MODEL, 2) | {"dvc_hash": "0" * 32 + ".dir"}
    ghost = {k: v for k, v in ghost.items() if k not in ("seq", "version", "record_id", "kind", "name")}
    populated.registry.append("models", MODEL, ghost, seq_fields=("version",))
    promote_model(populated.registry, MODEL, 3, "ghost")
    repo = tmp_path / "mirror"
    done = modelopsx("dvc-sync", "--repo", str(repo), cwd=tmp_path, ok=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"models/{MODEL}/3" in done.stderr and f"files/md5/00/{'0' * 30}.dir" in done.stderr
    assert f"promotions/{MODEL}/3" in done.stderr  # its promotion waits for it
    tags = set(run(["git", "tag"], repo).stdout.split())
    assert {f"{MODEL}@v1", f"{MODEL}@v2", f"{DATASET}@v2", f"{MODEL}#prod#2"} <= tags
    assert f"{MODEL}@v3" not in tags


def sync(repo: Path) -> SyncSummary:
    return sync_mirror(repo, STORE_URL, os.environ["MODELOPSX_BASIN_ENDPOINT"])


def test_refuses_folders_it_must_not_commit_into(tmp_path: Path, populated: Populated) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    with pytest.raises(MirrorError, match="not the top folder of a git repository"):
        sync(plain)
    assert sorted(p.name for p in plain.iterdir()) == ["notes.txt"]

    repo = tmp_path / "mirror"
    sync(repo)
    (repo / "dvc.yaml").write_text("metrics: []\n")
    with pytest.raises(MirrorError, match="uncommitted changes: dvc.yaml"):
        sync(repo)
    assert (repo / "dvc.yaml").read_text() == "metrics: []\n"  # the user's edit is left alone
    run(["git", "checkout", "-q", "--", "dvc.yaml"], repo)

    run(["git", "checkout", "-q", f"{MODEL}@v1"], repo)
    with pytest.raises(MirrorError, match="detached HEAD") as refused:
        sync(repo)
    assert refused.value.hint is not None and "git checkout main" in refused.value.hint


@pytest.mark.slow
def test_concurrent_syncs_make_each_commit_and_tag_once(tmp_path: Path, populated: Populated) -> None:
    repo = tmp_path / "mirror"
    modelopsx("dvc-sync", "--repo", str(repo), "--quiet", cwd=tmp_path)  # the set-up, then race on the rest
    rollback(populated.registry, MODEL, 1, "race")
    promote_model(populated.registry, MODEL, 2, "race again")
    env = os.environ | {"DVC_NO_ANALYTICS": "1"}
    cmd = [sys.executable, "-m", "modelopsx.cli", "dvc-sync", "--repo", str(repo), "--json"]
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    made = sorted(t for out, _ in outputs for t in json.loads(out)["tags"])
    assert made == [f"{MODEL}#prod#3", f"{MODEL}#prod#4"]
    assert len(run(["git", "log", "--format=%H"], repo).stdout.split()) == 5
    assert gto_prod_version(repo) == "v2.0.0"


def test_push_sends_branch_and_tags_to_a_git_remote(tmp_path: Path, populated: Populated) -> None:
    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    repo = tmp_path / "mirror"
    assert sync_mirror(repo, STORE_URL, os.environ["MODELOPSX_BASIN_ENDPOINT"], push=str(remote)).pushed_to
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)], tmp_path)
    assert f"{MODEL}@v2" in run(["git", "tag"], clone).stdout
    assert (clone / "models" / MODEL / "metrics.json").is_file()


def test_damaged_records_are_named_and_every_other_version_is_synced(
    tmp_path: Path, populated: Populated
) -> None:
    """A torn model record once stopped dvc-sync for every model with a traceback."""
    store = populated.registry.store
    store.put_if_absent(f"registry/models/{MODEL}/00000003.json", b'{"dvc_hash": "0123')
    damaged = {"seq": 3, "kind": "promotions", "name": MODEL, "action": "promote", "model_version": "two"}
    store.put_if_absent(f"registry/promotions/{MODEL}/00000003.json", json.dumps(damaged).encode())
    store.put_if_absent(f"registry/evaluations/{MODEL}/00000003.json", b"[]")
    summary = sync(tmp_path / "mirror")
    skipped = dict(summary.skipped)
    assert set(skipped) == {f"models/{MODEL}/3", f"promotions/{MODEL}/3"}
    assert "is not valid JSON" in skipped[f"models/{MODEL}/3"]
    assert "model_version is 'two', not a version number" in skipped[f"promotions/{MODEL}/3"]
    assert any(note.startswith(f"evaluations/{MODEL}/3 left out") for note in summary.notes)
    tags = set(run(["git", "tag"], tmp_path / "mirror").stdout.split())
    assert {f"{DATASET}@v1", f"{DATASET}@v2", f"{MODEL}@v1", f"{MODEL}@v2", f"{MODEL}#prod#2"} <= tags
    assert run(["git", "status", "--porcelain"], tmp_path / "mirror").stdout == ""
    done = modelopsx("dvc-sync", "--repo", str(tmp_path / "mirror"), cwd=tmp_path, ok=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        f"skipped models/{MODEL}/3" in done.stderr and "2 registry record(s) were not mirrored" in done.stderr
    )
