"""Two workers on loopback, each its own process with its own TF_CONFIG, run the TrainJob worker entrypoint
(modelopsx.workflow.trainjob) on CPU: shards, chief-only export, the exported model's scores, and a worker
killed mid-run that makes the restarted run resume from the backup instead of starting again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelopsx.data.format import Dataset, load_dataset

pytestmark = pytest.mark.slow

SIZE = (64, 96)  # (height, width)
EPOCHS = 4


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def make_split(root: Path, n_train: int = 24, n_val: int = 10) -> Path:
    from modelopsx.data.synth import generate_synthetic

    source = root / "source"
    generate_synthetic(source, n_train + n_val, seed=5, size=(SIZE[1], SIZE[0]))
    data = load_dataset(source)
    split = root / "split"
    for name, images in (("train", data.images[:n_train]), ("val", data.images[n_train:])):
        ids = {img.id for img in images}
        shutil.copytree(source / "images", split / name / "images")
        Dataset(split / name, images, [b for b in data.annotations if b.image_id in ids], data.info).save()
    return split


def config_json() -> dict:
    from modelopsx.model.config import TrainConfig

    return TrainConfig(
        input_size=SIZE,
        alpha=0.35,
        neck_channels=16,
        head_channels=16,
        epochs=EPOCHS,
        batch_size=4,
        learning_rate=3e-3,
        weights=None,
        augment=False,
        patience=100,
        lr_warmup_steps=2,
        seed=0,
    ).to_json()


class Workers:
    """N worker processes of one run; `start` launches a (re)try of all of them."""

    def __init__(self, root: Path, split: Path, n: int = 2) -> None:
        self.root, self.n = root, n
        self.ports = free_ports(n)
        self.job = {"data": str(split), "model": str(root / "store" / "model"), "config": config_json()}
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def out_dir(self, index: int) -> Path:
        return self.root / f"out-{index}"

    def start(self, attempt: int, images: tuple[str, ...] = ()) -> None:
        self.procs, self.logs = [], []
        for index in range(self.n):
            tf_config = {
                "cluster": {"worker": [f"127.0.0.1:{p}" for p in self.ports]},
                "task": {"type": "worker", "index": index},
            }
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(tf_config),
                "MODELOPSX_TRAIN_JOB": json.dumps(self.job),
                "MODELOPSX_OUT_DIR": str(self.out_dir(index)),
                "MODELOPSX_BACKUP_DIR": str(self.root / "backup"),
                "MODELOPSX_PEER_TIMEOUT_S": "120",
                "MODELOPSX_COLLECTIVE_TIMEOUT_S": "60",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "CUDA_VISIBLE_DEVICES": "",
                # two processes on two shared cores: fewer threads each, less time lost switching
                "TF_NUM_INTRAOP_THREADS": "1",
                "TF_NUM_INTEROP_THREADS": "2",
                "OMP_NUM_THREADS": "1",
                "MODELOPSX_IMAGE": images[index] if images else "",
            }
            log = self.root / f"attempt{attempt}-worker{index}.log"
            self.logs.append(log)
            with log.open("w") as handle:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "modelopsx.workflow.trainjob"],
                        env=env,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )

    def wait(self, timeout: float = 900) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.stop()
                pytest.fail("a worker hung:\n" + self.tail())
        return codes

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n" + log.read_text()[-3000:] for log in self.logs)


def backup_epoch(root: Path, index: int) -> int:
    meta = root / "backup" / f"worker-{index}" / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def test_workers_of_different_images_refuse_to_start(tmp_path: Path) -> None:
    workers = Workers(tmp_path, make_split(tmp_path))
    workers.start(1, images=("registry/modelopsx:0.1.0-gpu", "registry/modelopsx:0.2.0-gpu"))
    try:
        codes = workers.wait()
    finally:
        workers.stop()
    assert codes == [2, 2], workers.tail()
    for index, log in enumerate(workers.logs):
        text = log.read_text()
        assert "workers differ" in text and "every worker must run the same image" in text, text[-2000:]
        other = "0.2.0" if index == 0 else "0.1.0"
        assert f"worker {1 - index}: image='registry/modelopsx:{other}-gpu'" in text
        assert "Epoch 1/" not in text
    assert not (tmp_path / "store").exists()


def test_a_killed_worker_makes_the_restarted_run_resume_from_the_backup(tmp_path: Path) -> None:
    split = make_split(tmp_path)
    workers = Workers(tmp_path, split)

    # Attempt 1: worker 1 is killed once the backups hold two finished epochs (it is then in epoch 3).
    workers.start(1)
    try:
        deadline = time.monotonic() + 900
        while min(backup_epoch(tmp_path, i) for i in range(2)) < 2:
            if any(p.poll() is not None for p in workers.procs):
                pytest.fail("a worker ended before the kill:\n" + workers.tail())
            if time.monotonic() > deadline:
                pytest.fail("no epoch finished in time:\n" + workers.tail())
            time.sleep(0.05)
        workers.procs[1].send_signal(signal.SIGKILL)
        killed_in = backup_epoch(tmp_path, 1) + 1
        codes = workers.wait()
    finally:
        workers.stop()
    assert codes[1] == -signal.SIGKILL
    assert codes[0] != 0, "the chief must fail, not hang, when a worker disappears:\n" + workers.tail()
    assert not (tmp_path / "store" / "model" / "model.json").exists()

    # Attempt 2: both restart (as the JobSet's pods do) and resume from the backup.
    workers.start(2)
    try:
        codes = workers.wait()
    finally:
        workers.stop()
    assert codes == [0, 0], f"exit codes {codes}\n" + workers.tail()
    logs = [log.read_text() for log in workers.logs]
    resumed = killed_in - 1
    for log in logs:
        assert f"resumed from the backup after epoch {resumed}" in log, log[-3000:]
        assert "Epoch 1/" not in log  # the finished epochs are not trained again
    check_run(tmp_path, split, workers, logs, resumed=resumed)


def check_run(tmp_path: Path, split: Path, workers: Workers, logs: list[str], resumed: int | None) -> None:
    model_dir = tmp_path / "store" / "model"
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["distributed"] == {
        "workers": 2,
        "global_batch": 8,
        "lr_scale": pytest.approx(2**0.5),
        "resumed_from_epoch": resumed,
    }
    # After a restart the chief's history holds the epochs trained after the restore, numbered on
    assert [row["epoch"] for row in meta["history"]] == list(range((resumed or 0) + 1, EPOCHS + 1))

    # Shards: disjoint, and together exactly the split.
    shards = [json.loads((tmp_path / "backup" / f"shard-{i}.json").read_text()) for i in range(2)]
    for name in ("train", "val"):
        ids = [set(s[name]) for s in shards]
        assert ids[0].isdisjoint(ids[1])
        assert ids[0] | ids[1] == {img.id for img in load_dataset(split / name).images}

    # Only the chief exported; worker 1 left nothing behind.
    assert (workers.out_dir(0) / "saved_model" / "saved_model.pb").is_file()
    assert (workers.out_dir(0) / "model.json").is_file()
    assert not workers.out_dir(1).exists() or not any(workers.out_dir(1).rglob("*"))
    assert logs[0].count("uploading the model") == 1 and "uploading the model" not in logs[1]
    assert not (tmp_path / "backup" / "worker-0").exists()  # a finished run drops its backups

    # Validation metrics were reduced over both workers: both logged the same val_loss each epoch.
    def val_losses(log: str) -> list[str]:
        return [part.split()[1] for part in log.split("val_loss:")[1:]]

    assert val_losses(logs[0]) and val_losses(logs[0]) == val_losses(logs[1])

    # The exported SavedModel scores on val exactly what the chief's in-memory model scored.
    from modelopsx.evaluation.metrics import evaluate_detections
    from modelopsx.model.predict import predict_dataset

    val = load_dataset(split / "val")
    detections = predict_dataset(model_dir, split / "val")
    exported = evaluate_detections(val, detections, score_threshold=meta["score_threshold"]).metrics
    for name, value in meta["val_metrics"].items():
        if isinstance(value, float):
            assert exported[name] == pytest.approx(value, abs=1e-6), name
        else:
            assert exported[name] == value, name
