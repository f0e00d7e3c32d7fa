"""Training on several workers: who is who (TF_CONFIG), MultiWorkerMirroredStrategy, sharded input, backups.

Nothing here runs on one worker: `cluster_from_env()` returns None unless TF_CONFIG (or, on Kubeflow Trainer,
the JobSet environment) names more than one worker, and then train.py behaves exactly as before.

Rules on N workers:
- worker 0 is the chief: only it exports the model and writes records; the others train into a scratch
  directory that is removed afterwards;
- the global batch is `batch_size` per worker times N, and the learning rate is scaled by N with it
  (linear scaling rule);
- each worker reads its own shard of the training and validation splits (images i, i+N, i+2N, ... of the
  sorted image ids): no image is seen twice in an epoch, and Keras reduces the validation loss over all
  shards;
- `keras.callbacks.BackupAndRestore` writes each worker's state after every epoch; a restarted worker (or a
  restarted JobSet) resumes from the last finished epoch;
- a peer that cannot be reached within `MODELOPSX_PEER_TIMEOUT_S`, or a worker built from another image or
  version, fails the start with a clear error instead of hanging or training inconsistent replicas.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelopsx.errors import ModelError
from modelopsx.model.layout import CHECKPOINT_DIR, MODEL_JSON, STATE_FILE, read_model_json
from modelopsx.settings import variable

# Set by the ClusterTrainingRuntime (manifests/trainer/runtime) and the TrainJob the pipeline creates.
WORKERS_ENV = "MODELOPSX_TRAIN_WORKERS"
JOBSET_NAME_ENV = "MODELOPSX_JOBSET_NAME"
REPLICATED_JOB_ENV = "MODELOPSX_REPLICATED_JOB"
PORT_ENV = "MODELOPSX_TF_PORT"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job
PEER_TIMEOUT_ENV = "MODELOPSX_PEER_TIMEOUT_S"
COLLECTIVE_TIMEOUT_ENV = "MODELOPSX_COLLECTIVE_TIMEOUT_S"
BACKUP_DIR_ENV = "MODELOPSX_BACKUP_DIR"
IMAGE_ENV = "MODELOPSX_IMAGE"
DEFAULT_PORT = 2222
DEFAULT_PEER_TIMEOUT_S = 300.0
DEFAULT_COLLECTIVE_TIMEOUT_S = 1800.0
SHARD_FILE = "shard.json"
FINGERPRINT_BYTES = 512


@dataclass(frozen=True)
class Cluster:
    """The workers of one training run (host:port each) and this process's index among them."""

    workers: tuple[str, ...]
    index: int

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def tf_config(self) -> dict[str, Any]:
        return {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}}


def cluster_from_env(env: Mapping[str, str] | None = None) -> Cluster | None:
    """This process's place among the workers, or None when it trains alone.

    TF_CONFIG wins when set. Otherwise, under Kubeflow Trainer, TF_CONFIG is built from JobSet's stable
    pod hostnames (`<jobset>-<replicated job>-0-<completion index>.<jobset>`) and written to the environment,
    where TensorFlow reads it."""
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG", "").strip()
    if raw:
        cluster = parse_tf_config(raw)
    elif env.get(JOBSET_NAME_ENV) and env.get(WORKERS_ENV):
        cluster = cluster_from_jobset(env)
        if env is os.environ:
            os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config())
    else:
        return None
    return cluster if cluster.num_workers > 1 else None


def parse_tf_config(raw: str) -> Cluster:
    try:
        data = json.loads(raw)
        workers = tuple(str(w) for w in data["cluster"]["worker"])
        task = data["task"]
        kind, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"TF_CONFIG is not a valid cluster description ({exc.__class__.__name__}: {exc})",
            hint='expected {"cluster": {"worker": ["host:port", ...]}, '
            '"task": {"type": "worker", "index": i}}',
        ) from None
    other_roles = sorted(set(data["cluster"]) - {"worker"})
    if kind != "worker" or other_roles:
        raise ModelError(
            f"TF_CONFIG names roles {other_roles or [kind]}: this trainer runs workers only",
            hint="list every process under cluster.worker; worker 0 is the chief",
        )
    if not workers or not 0 <= index < len(workers):
        raise ModelError(f"TF_CONFIG task index {index} is outside the {len(workers)} workers listed")
    return Cluster(workers, index)


def cluster_from_jobset(env: Mapping[str, str]) -> Cluster:
    """Workers of a JobSet-run TrainJob: one Indexed Job (`node`) whose pods get stable DNS names."""
    workers = parse_worker_count(env.get(WORKERS_ENV, ""))
    name = env[JOBSET_NAME_ENV]
    job = env.get(REPLICATED_JOB_ENV, "node")
    port = int(env.get(PORT_ENV, DEFAULT_PORT))
    try:
        index = int(env[COMPLETION_INDEX_ENV])
    except (KeyError, ValueError):
        raise ModelError(
            f"{COMPLETION_INDEX_ENV} is not set: cannot tell which worker this pod is",
            hint="run the worker through the modelopsx-tf-multiworker training runtime (an Indexed Job)",
        ) from None
    hosts = tuple(f"{name}-{job}-0-{i}.{name}:{port}" for i in range(workers))
    if not 0 <= index < workers:
        raise ModelError(f"completion index {index} is outside the {workers} workers")
    return Cluster(hosts, index)


def parse_worker_count(value: object) -> int:
    """A worker count must be a whole number >= 1 (refused before anything starts)."""
    if isinstance(value, bool):
        value = None
    try:
        count = int(str(value).strip()) if not isinstance(value, int) else value
        if isinstance(value, float) or str(value).strip() != str(count):
            raise ValueError
    except (TypeError, ValueError):
        raise ModelError(
            f"train_workers must be a whole number >= 1, got {value!r}",
            hint="1 trains in the pipeline's own pod; 2 or more run a Kubeflow Trainer TrainJob",
        ) from None
    if count < 1:
        raise ModelError(
            f"train_workers must be >= 1, got {count}",
            hint="1 trains in the pipeline's own pod; 2 or more run a Kubeflow Trainer TrainJob",
        )
    return count


# ------------------------------------------------------------------------------------------------ start


def wait_for_peers(cluster: Cluster, timeout_s: float | None = None) -> None:
    """Block until every other worker accepts a TCP connection; fail clearly after the timeout.

    Called once this worker's own server listens (after the strategy is created), so the workers find each
    other whatever order they start in."""
    timeout = float(variable(PEER_TIMEOUT_ENV) or DEFAULT_PEER_TIMEOUT_S) if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout
    pending = [w for i, w in enumerate(cluster.workers) if i != cluster.index]
    while pending:
        host, _, port = pending[0].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2.0):
                pending.pop(0)
                continue
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            role = "the chief" if pending[0] == cluster.workers[0] else "worker"
            raise ModelError(
                f"worker {cluster.index} could not reach {role} {pending[0]} within {timeout:.0f}s ({last})",
                hint="check that all workers started (image pulled, GPUs free) and that the pods can reach "
                f"each other; {PEER_TIMEOUT_ENV} sets the wait",
            )
        time.sleep(0.5)


def make_strategy(cluster: Cluster) -> Any:
    """MultiWorkerMirroredStrategy over the workers, after every peer answered; collectives time out."""
    import tensorflow as tf

    os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config())
    timeout = float(variable(COLLECTIVE_TIMEOUT_ENV) or DEFAULT_COLLECTIVE_TIMEOUT_S)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver, communication_options=options
    )
    wait_for_peers(cluster)
    return strategy


def build_fingerprint(config_json: Mapping[str, Any]) -> dict[str, str]:
    """What must be identical on every worker: code and library versions, image, training settings."""
    import keras
    import tensorflow as tf

    import modelopsx

    settings = json.dumps(config_json, sort_keys=True, default=str)
    return {
        "modelopsx": modelopsx.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "image": variable(IMAGE_ENV) or "",
        "config": hashlib.sha256(settings.encode()).hexdigest()[:16],
    }


def check_same_build(strategy: Any, cluster: Cluster, fingerprint: Mapping[str, str]) -> None:
    """Gather every worker's fingerprint and refuse to train unless they are all equal."""
    import numpy as np
    import tensorflow as tf

    raw = json.dumps(dict(fingerprint), sort_keys=True).encode()[:FINGERPRINT_BYTES]
    padded = np.zeros(FINGERPRINT_BYTES, dtype=np.int32)
    padded[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)

    @tf.function
    def gather() -> Any:
        def step() -> Any:
            ctx = tf.distribute.get_replica_context()
            return ctx.all_gather(tf.constant(padded)[None], axis=0)

        return strategy.run(step)

    gathered = strategy.experimental_local_results(gather())[0].numpy()
    prints = [bytes(row[row > 0].astype(np.uint8)).decode() for row in gathered]
    prints = prints[:: max(1, len(prints) // cluster.num_workers)]  # one row per worker
    mine = json.dumps(dict(fingerprint), sort_keys=True)
    if any(p != mine for p in prints):
        ours = json.loads(mine)
        diffs = []
        for index, other in enumerate(prints):
            theirs = json.loads(other)
            keys = [k for k in ours if ours.get(k) != theirs.get(k)]
            if keys:
                diffs.append(f"worker {index}: " + ", ".join(f"{k}={theirs.get(k)!r}" for k in keys))
        raise ModelError(
            f"workers differ from worker {cluster.index} ("
            + ", ".join(f"{k}={v!r}" for k, v in ours.items())
            + "): "
            + "; ".join(diffs),
            hint="every worker must run the same image and the same training settings",
        )


# ------------------------------------------------------------------------------------------------ input


def shard_ids(ids: Sequence[int], index: int, num_workers: int) -> list[int]:
    """Worker `index`'s share: every N-th of the sorted ids. Shards are disjoint and cover all ids."""
    return sorted(ids)[index::num_workers]


def write_shard(dataset_dir: Path, out_dir: Path, index: int, num_workers: int) -> Path:
    """A dataset directory holding only this worker's images (the image files are linked, not copied)."""
    from modelopsx.data.format import Dataset, load_dataset

    source = load_dataset(dataset_dir)
    keep = set(shard_ids([img.id for img in source.images], index, num_workers))
    shard = Dataset(
        root=out_dir,
        images=[img for img in source.images if img.id in keep],
        annotations=[box for box in source.annotations if box.image_id in keep],
        info={**source.info, "shard": {"index": index, "of": num_workers}},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    images = out_dir / "images"
    if not images.exists():
        images.symlink_to(source.images_dir.resolve(), target_is_directory=True)
    shard.save()
    (out_dir / SHARD_FILE).write_text(json.dumps({"index": index, "of": num_workers, "ids": sorted(keep)}))
    return out_dir


def shard_sizes(total: int, num_workers: int) -> list[int]:
    return [len(range(i, total, num_workers)) for i in range(num_workers)]


def even_batch(sizes: Sequence[int], batch: int) -> int:
    """A batch size at which every shard takes the same number of steps (so no worker waits for a batch
    that never comes and no image is repeated or dropped). Shard sizes differ by at most one."""
    largest = max(sizes)
    for size in range(max(1, batch), largest + 1):
        if len({math.ceil(s / size) for s in sizes}) == 1:
            return size
    return largest


@dataclass
class WorkerInput:
    train: Any  # distributed dataset, one shard per worker, `steps` batches per epoch
    val: Any
    steps_per_epoch: int
    val_steps: int
    shard_dir: Path
    sample: Any  # one plain (not distributed) batch, for building the model's metrics (see fit_callbacks)


def worker_input(
    strategy: Any,
    cluster: Cluster,
    split_dir: Path,
    scratch: Path,
    train_count: int,
    val_count: int,
    make_dataset: Any,
    per_worker_batch: int,
    fixed_steps: int | None,
) -> WorkerInput:
    """This worker's shards of train/ and val/ as distributed datasets with the same step counts on all.

    `make_dataset(dir, batch, training)` builds the single-worker tf.data pipeline for a directory."""
    import tensorflow as tf

    n = cluster.num_workers
    if val_count < n or train_count < n:
        raise ModelError(
            f"{n} workers need at least {n} training and {n} validation images "
            f"(the split has {train_count} and {val_count})",
            hint="use fewer train_workers or a larger split",
        )
    train_dir = write_shard(split_dir / "train", scratch / "shards" / "train", cluster.index, n)
    val_dir = write_shard(split_dir / "val", scratch / "shards" / "val", cluster.index, n)
    train_sizes, val_sizes = shard_sizes(train_count, n), shard_sizes(val_count, n)
    # An epoch is as many batches as the smallest shard fills: every worker steps together, none repeats
    # an image within the epoch (the shard is reshuffled for the next one).
    steps = fixed_steps or min(math.ceil(s / per_worker_batch) for s in train_sizes)
    val_batch = even_batch(val_sizes, per_worker_batch)
    val_steps = math.ceil(max(val_sizes) / val_batch)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    def train_fn(_: Any) -> Any:
        ds = make_dataset(train_dir, per_worker_batch, True)
        ds = ds.repeat() if fixed_steps else ds.take(steps).repeat()
        return ds.with_options(options)

    def val_fn(_: Any) -> Any:
        return make_dataset(val_dir, val_batch, False).with_options(options)

    return WorkerInput(
        strategy.distribute_datasets_from_function(train_fn),
        strategy.distribute_datasets_from_function(val_fn),
        steps,
        val_steps,
        scratch / "shards",
        next(iter(make_dataset(val_dir, 1, False))),
    )


# ------------------------------------------------------------------------------------------------ output


def backup_dir(cluster: Cluster, out_dir: Path) -> Path:
    """Each worker's BackupAndRestore directory: `MODELOPSX_BACKUP_DIR/worker-<i>` (a volume that outlives
    the container), else beside the requested output's checkpoints."""
    root = variable(BACKUP_DIR_ENV)
    base = Path(root) if root else out_dir / CHECKPOINT_DIR / "backup"
    return base / f"worker-{cluster.index}"


def lr_scale(cluster: Cluster | None) -> float:
    """The learning rate follows the global batch by the square root of its growth, as every preset's larger
    batch does (TrainConfig.scaled_learning_rate): N workers, N times the batch, sqrt(N) times the rate."""
    return math.sqrt(cluster.num_workers) if cluster else 1.0


def barrier(strategy: Any) -> None:
    """Return once every worker got here (one all-reduce of a scalar)."""
    import tensorflow as tf

    @tf.function
    def together() -> Any:
        def step() -> Any:
            return tf.distribute.get_replica_context().all_reduce("sum", tf.constant(1.0))

        return strategy.run(step)

    together()


def patch_keras_multi_worker_reduce() -> None:
    """Let Keras average scalar logs (loss, metrics) over several workers.

    Keras 3 reduces each step's per-replica logs with `strategy.reduce("MEAN", v, axis=0)` under a
    multi-worker strategy, which fails for scalars ("Invalid reduction dimension 0 for input with 0
    dimensions", tensorflow/tensorflow#72388). Scalars are averaged over the replicas instead (axis=None):
    each worker's running mean over its shard, and the shards are of equal size up to one image."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "modelopsx_patched", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction not in ("auto", "mean") or not tf_trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def mean(value: Any) -> Any:
            scalar = value.shape.rank == 0 if hasattr(value, "shape") else False
            return strategy.reduce("MEAN", value, axis=None if scalar else 0)

        return tree.map_structure(mean, values)

    reduce_per_replica.modelopsx_patched = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica


class DistributedRun:
    """What train.train_model does differently on one of several workers (see the module docstring)."""

    def __init__(self, cluster: Cluster, requested_out: Path) -> None:
        self.cluster = cluster
        self.requested_out = requested_out
        self.scratch = Path(tempfile.mkdtemp(prefix=f"modelopsx-worker-{cluster.index}-"))
        self.backup = backup_dir(cluster, requested_out)
        self.resumes = (self.backup / "training_metadata.json").is_file()
        # The chief writes to the requested directory; the others train into scratch that is removed.
        self.out_dir = requested_out if cluster.is_chief else self.scratch / "out"
        if self.resumes and cluster.is_chief:
            # An earlier attempt of this same run left its checkpoint state: the backup supersedes it.
            (requested_out / CHECKPOINT_DIR / STATE_FILE).unlink(missing_ok=True)
        self.restored_epoch: int | None = None

    @classmethod
    def from_env(cls, out_dir: Path) -> DistributedRun | None:
        cluster = cluster_from_env()
        return None if cluster is None else cls(cluster, out_dir)

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief

    @property
    def lr_scale(self) -> float:
        return lr_scale(self.cluster)

    def adjust_config(self, config: Any) -> Any:
        """Workers must take every decision together: a clock-driven time budget would differ per worker
        (and with it the learning rate and the last epoch), so N workers train the configured epochs."""
        if config.time_limit_s is None:
            return config
        print(
            f"worker {self.cluster.index}: the time limit ({config.time_limit_s:.0f}s) applies to one worker "
            "only; all workers train the configured epochs",
            flush=True,
        )
        return config.replace(time_limit_s=None, lr_follows_clock=False)

    def configure(self, config: Any) -> tuple[Any, list[str]]:
        """As train.configure_runtime, with a MultiWorkerMirroredStrategy; checks peers and builds."""
        import keras
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
        strategy = make_strategy(self.cluster)
        keras.utils.set_random_seed(config.seed)
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "float32")
        check_same_build(strategy, self.cluster, build_fingerprint(config.to_json()))
        print(
            f"worker {self.cluster.index} of {self.cluster.num_workers}"
            f"{' (chief)' if self.is_chief else ''}: {strategy.num_replicas_in_sync} replicas in sync",
            flush=True,
        )
        return strategy, gpus

    def inputs(
        self,
        strategy: Any,
        split_dir: Path,
        train_count: int,
        val_count: int,
        make_dataset: Any,
        per_worker_batch: int,
        fixed_steps: int | None,
    ) -> WorkerInput:
        inputs = worker_input(
            strategy,
            self.cluster,
            split_dir,
            self.scratch,
            train_count,
            val_count,
            make_dataset,
            per_worker_batch,
            fixed_steps,
        )
        self.record_shards(inputs.shard_dir)
        return inputs

    def record_shards(self, shard_dir: Path) -> None:
        """Which images this worker reads, beside its backup (kept after training, for inspection)."""
        record = {
            name: json.loads((shard_dir / name / SHARD_FILE).read_text())["ids"] for name in ("train", "val")
        }
        path = self.backup.parent / f"shard-{self.cluster.index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"worker": self.cluster.index, "of": self.cluster.num_workers, **record}))
        print(
            f"worker {self.cluster.index}: reads {len(record['train'])} training and {len(record['val'])} "
            "validation images (its shard)",
            flush=True,
        )

    def fit_callbacks(self, model: Any, sample: Any) -> list[Any]:
        """BackupAndRestore, kept across the training phases (removed by `finish`) and, after it, a note of
        the epoch a restarted worker resumed from.

        Also builds the compiled model from one plain batch: Keras's own build step averages a distributed
        batch with `strategy.reduce`, which MultiWorkerMirroredStrategy refuses for a nested (images,
        targets) batch."""
        import keras

        run = self
        build = type(model)._maybe_symbolic_build

        def build_from_sample(iterator: Any = None, data_batch: Any = None) -> None:
            build(model, data_batch=sample)

        model._maybe_symbolic_build = build_from_sample
        patch_keras_multi_worker_reduce()

        class NoteResume(keras.callbacks.Callback):
            def on_train_begin(self, logs: Any = None) -> None:
                epoch = getattr(self.model, "_initial_epoch", None)
                if run.resumes and epoch and run.restored_epoch is None:
                    run.restored_epoch = int(epoch)
                    print(
                        f"worker {run.cluster.index}: resumed from the backup after epoch {epoch}", flush=True
                    )

        backup = keras.callbacks.BackupAndRestore(str(self.backup), delete_checkpoint=False)
        return [backup, NoteResume()]

    def first_epoch(self, model: Any, planned: int) -> int:
        """The epoch a fit started from: BackupAndRestore moves it past the epochs a backup holds."""
        restored = getattr(model, "_initial_epoch", None)
        return max(planned, int(restored)) if restored else planned

    def local_model(self, model: Any, config: Any) -> Any:
        """A copy outside the strategy, for the chief's threshold choice and export (the distributed model
        would wait for the other workers on every prediction)."""
        from modelopsx.model.detector import build_detector

        copy, _, _ = build_detector(config, imagenet=False)
        copy.set_weights(model.get_weights())
        return copy

    def annotate(self, out_dir: Path, per_worker_batch: int) -> None:
        """model.json records how many workers trained it and from which epoch a restart resumed."""
        path = out_dir / MODEL_JSON
        data = read_model_json(out_dir)
        data["distributed"] = {
            "workers": self.cluster.num_workers,
            "global_batch": per_worker_batch * self.cluster.num_workers,
            "lr_scale": self.lr_scale,
            "resumed_from_epoch": self.restored_epoch,
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def finish(self, strategy: Any) -> None:
        """Wait for every worker (a worker that exits while the chief still exports is reported as crashed
        by TensorFlow's coordination service, which aborts the chief); then the backup is no longer needed,
        nor a worker's scratch output."""
        barrier(strategy)
        shutil.rmtree(self.backup, ignore_errors=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
        for empty in (self.backup.parent, self.backup.parent.parent, self.requested_out):
            if not self.is_chief or empty != self.requested_out:
                with contextlib.suppress(OSError):
                    empty.rmdir()  # only when empty: never remove what a user put there
