"""Training: tf.data pipeline + CenterNet targets, fine-tuning schedule, checkpoints, export, threshold.

The same call runs on CPU (deterministic with a seed) and on GPUs (mixed precision, MirroredStrategy, XLA).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelopsx.data.format import Dataset, load_dataset
from modelopsx.errors import DatasetError, ModelError
from modelopsx.model.config import TrainConfig
from modelopsx.model.distributed import DistributedRun
from modelopsx.model.layout import (
    BEST_WEIGHTS,
    CHECKPOINT_DIR,
    HISTORY_CSV,
    LAST_CHECKPOINT,
    MODEL_JSON,
    MODEL_KERAS,
    SAVED_MODEL_DIR,
    STATE_FILE,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: Path
    score_threshold: float
    epochs_run: int
    history: list[dict[str, float]]
    val_metrics: dict[str, float | None]
    train_seconds: float
    images_per_second: float
    pretrained: bool
    skipped_images: int = 0
    initial_weights: str = "scratch"  # where training started: "imagenet", "scratch", or the weights' source
    metadata: dict[str, Any] = field(default_factory=dict)


def _pedestrian_count(dataset: Dataset) -> int:
    return sum(1 for box in dataset.annotations if not box.ignore and not box.iscrowd)


def check_split(split_dir: Path) -> tuple[Dataset, Dataset]:
    """The split must hold non-empty train/ and val/ datasets, and train/ must contain pedestrians."""
    if not split_dir.is_dir():
        raise DatasetError(
            f"{split_dir}: split directory not found",
            hint="pass the output of `modelopsx dataset split` (holds train/ and val/)",
        )
    for name in ("train", "val"):
        if not (split_dir / name / "annotations.json").is_file():
            raise DatasetError(
                f"{split_dir}: no {name}/ dataset (missing {name}/annotations.json)",
                hint="pass the output of `modelopsx dataset split` (holds train/ and val/)",
            )
    train, val = load_dataset(split_dir / "train"), load_dataset(split_dir / "val")
    if not train.images:
        raise DatasetError(
            f"{split_dir / 'train'}: the training split is empty (0 images)",
            hint="add images or re-split with a smaller val/test share",
        )
    if _pedestrian_count(train) == 0:
        raise DatasetError(
            f"{split_dir / 'train'}: the training split has no pedestrians "
            f"({len(train.images)} images, 0 pedestrian boxes)",
            hint="a detector cannot learn from it: check the importer or the annotations",
        )
    if not val.images:
        raise DatasetError(
            f"{split_dir / 'val'}: the validation split is empty (0 images)",
            hint="validation picks the score threshold and stops training early; re-split",
        )
    return train, val


def _train_dataset_hash(split_dir: Path) -> str | None:
    split_json = split_dir / "split.json"
    if split_json.is_file():
        try:
            return json.loads(split_json.read_text()).get("hashes", {}).get("train")
        except (ValueError, AttributeError):
            pass
    from modelopsx.data.hashing import dataset_version_hash

    return dataset_version_hash(split_dir / "train")


def configure_runtime(config: TrainConfig) -> tuple[Any, list[str]]:
    """Seeds, determinism on CPU; on GPU mixed precision and a MirroredStrategy. Returns (strategy, gpus)."""
    import keras
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    gpus = [d.name for d in devices]
    keras.utils.set_random_seed(config.seed)
    if gpus:
        capabilities = [
            tf.config.experimental.get_device_details(d).get("compute_capability") for d in devices
        ]
        policy = precision_policy(config.precision, capabilities)
        keras.mixed_precision.set_global_policy(policy)  # mixed_float16: compile() adds loss scaling
        log.info("GPU precision %s (compute capability %s)", policy, capabilities)
        return tf.distribute.MirroredStrategy(), gpus
    keras.mixed_precision.set_global_policy("float32")
    tf.config.experimental.enable_op_determinism()
    return tf.distribute.get_strategy(), gpus


def precision_policy(precision: str, capabilities: list[Any]) -> str:
    """The Keras dtype policy on GPU: "auto" is bfloat16 when every GPU computes it natively (compute
    capability 8.0 and up: Ampere, Hopper), else float16 with loss scaling."""
    if precision != "auto":
        return precision
    native_bf16 = bool(capabilities) and all(c is not None and tuple(c) >= (8, 0) for c in capabilities)
    return "mixed_bfloat16" if native_bf16 else "mixed_float16"


def compile_model(model: Any, config: TrainConfig, base_lr: float, jit: bool) -> None:
    import keras

    from modelopsx.model.losses import CenterNetLoss, loss_metrics

    optimizer = keras.optimizers.AdamW(
        learning_rate=base_lr, weight_decay=config.weight_decay, global_clipnorm=10.0
    )
    model.compile(
        optimizer=optimizer,
        loss=CenterNetLoss(config.size_loss_weight, config.offset_loss_weight, config.giou_loss_weight),
        metrics=loss_metrics(),
        jit_compile=jit,
    )


class _EpochState:
    """Shared across phases: start time (for the time budget) and per-epoch durations (throughput)."""

    def __init__(self, started: float, images_per_epoch: int) -> None:
        self.started = started
        self.images_per_epoch = images_per_epoch
        self.epoch_seconds: list[float] = []  # whole epochs, validation included (time budget)
        self.train_seconds: list[float] = []  # training steps only (throughput)
        self.time_limit_hit = False  # the time budget, not the epoch count, ended training


def _budget_schedule(
    config: TrainConfig,
    state: _EpochState,
    first: int,
    last: int,
    steps_per_epoch: int,
    base_lr: float,
    quiet: bool,
) -> Any:
    """Linear warm-up then cosine decay over the phase, set per batch. With a time budget the decay follows
    the clock after the first epoch (progress = the larger of the step and the time fraction), so slow epochs
    on a busy machine shorten the run without restarting the decay, and training stops when another epoch
    would not fit. The first epoch is left out of the clock: it also traces the graph and fills the input
    cache, which would otherwise spend a short budget's decay on a handful of steps."""
    import keras

    class BudgetCosine(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first
            self.epoch_start = 0.0
            self.phase_start = 0.0
            self.phase_budget = 0.0
            self.phase_offset = 0.0

        def _lr(self, step: int) -> float:
            total = max((last - first) * steps_per_epoch, 1)
            warmup = min(config.lr_warmup_steps, total // 4) if first == 0 else 0
            if step < warmup:
                return base_lr * (0.05 + 0.95 * step / warmup)
            progress = (step - warmup) / max(total - warmup, 1)
            if self.phase_budget > 0 and config.lr_follows_clock:
                clock = (time.perf_counter() - self.phase_start) / self.phase_budget
                progress = max(progress, self.phase_offset + (1.0 - self.phase_offset) * clock)
            progress = min(progress, 1.0)
            return base_lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            self.epoch_start = time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            state.train_seconds.append(time.perf_counter() - self.epoch_start)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            step = (self.epoch - first) * steps_per_epoch + batch
            self.model.optimizer.learning_rate.assign(self._lr(step))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            state.epoch_seconds.append(time.perf_counter() - self.epoch_start)
            if logs is not None:
                logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
            limit = config.time_limit_s
            if limit is None:
                return
            if self.phase_budget == 0.0:
                # the clock starts now, from the step progress reached, for the budget that is left
                self.phase_start = time.perf_counter()
                self.phase_budget = max(limit - (self.phase_start - state.started), 1e-3)
                self.phase_offset = min((epoch + 1 - first) / max(last - first, 1), 1.0)
            remaining = limit - (time.perf_counter() - state.started)
            # the first epoch also traces the graph and warms the input pipeline: plan from later ones
            later = state.epoch_seconds[1:][-3:] or state.epoch_seconds
            if remaining < sum(later) / len(later) and epoch + 1 < last:
                state.time_limit_hit = True
                if not quiet:
                    print(f"time budget {limit:.0f}s: training ends after epoch {epoch + 1}", flush=True)
                self.model.stop_training = True

    return BudgetCosine()


def _callbacks(
    out_dir: Path,
    config: TrainConfig,
    state: _EpochState,
    phase: tuple[int, int, float],
    steps_per_epoch: int,
    best: float | None,
    pretrained: bool,
    initial_weights: str,
    quiet: bool,
) -> tuple[list[Any], Any]:
    import keras

    ckpt = out_dir / CHECKPOINT_DIR
    first, last, base_lr = phase

    class ResumableCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            # The whole model with its optimizer state, then the epoch counter (written last).
            self.model.save(ckpt / LAST_CHECKPOINT)
            best_now = checkpoint.best if math.isfinite(float(checkpoint.best)) else None
            _write_json(
                ckpt / STATE_FILE,
                {
                    "epoch": epoch + 1,
                    "best_val_loss": best_now,
                    "pretrained": pretrained,
                    "initial_weights": initial_weights,
                },
            )

    checkpoint = keras.callbacks.ModelCheckpoint(
        str(ckpt / BEST_WEIGHTS),
        monitor="val_loss",
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=best,
    )
    callbacks = [
        _budget_schedule(config, state, first, last, steps_per_epoch, base_lr, quiet),
        checkpoint,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
        keras.callbacks.CSVLogger(str(out_dir / HISTORY_CSV), append=True),
        keras.callbacks.TensorBoard(log_dir=str(out_dir / "logs"), write_graph=False, profile_batch=0),
        ResumableCheckpoint(),
    ]
    return callbacks, checkpoint


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _check_out_dir(out_dir: Path, resume: bool) -> dict[str, Any] | None:
    """Refuse to overwrite a finished model; on resume return the checkpoint state."""
    if (out_dir / MODEL_JSON).exists():
        raise ModelError(
            f"{out_dir} already holds a trained model ({MODEL_JSON})",
            hint="choose another --out; a stored model is never overwritten",
        )
    state_file = out_dir / CHECKPOINT_DIR / STATE_FILE
    if resume:
        if not state_file.is_file() or not (out_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).is_file():
            raise ModelError(
                f"{out_dir}: nothing to resume (no {CHECKPOINT_DIR}/{LAST_CHECKPOINT})",
                hint="run without --resume to start a new training",
            )
        return dict(json.loads(state_file.read_text()))
    if state_file.exists():
        raise ModelError(
            f"{out_dir} holds checkpoints of an unfinished training",
            hint="add --resume to continue it, or choose another --out",
        )
    return None


def train_model(
    split_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    quiet: bool = True,
    resume: bool = False,
    weights_label: str | None = None,
    extra_callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train on split_dir/train, validate on split_dir/val, export MODEL_DIR (see the contract) to out_dir.

    `extra_callbacks` (Keras callbacks) run after the project's own in every phase (e.g. a learning curve).
    `weights_label` names where `config.weights` came from (e.g. a registry model version, when the weights
    are a temporary download); model.json records it as `initial_weights`, or "imagenet" / "scratch".
    """
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    config.validate()
    train_set, val_set = check_split(split_dir)
    # Hook: one of several workers (TF_CONFIG) -> modelopsx.model.distributed; None on one node.
    run = DistributedRun.from_env(out_dir)
    if run is not None:
        out_dir, config = run.out_dir, run.adjust_config(config)
    state = _check_out_dir(out_dir, resume)
    if state is not None:
        saved = out_dir / CHECKPOINT_DIR / "config.json"
        if saved.is_file():
            config = TrainConfig.from_json(json.loads(saved.read_text()))
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / CHECKPOINT_DIR / "config.json", config.to_json())

    import keras

    from modelopsx.model.detector import build_detector
    from modelopsx.model.targets import training_dataset
    from modelopsx.model.weights import load_initial_weights

    strategy, gpus = configure_runtime(config) if run is None else run.configure(config)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    jit = bool(gpus)
    val_steps = None
    if run is not None:  # hook: each worker reads its own shards
        inputs = run.inputs(
            strategy,
            split_dir,
            len(train_set.images),
            len(val_set.images),
            lambda path, batch, training: training_dataset(
                path,
                batch,
                config.input_size,
                config.output_stride,
                training=training,
                seed=config.seed,
                max_boxes=config.max_boxes,
                augment=config.augment and training,
                max_angle=config.rotation_deg,
            ),
            config.batch_size,
            config.steps_per_epoch,
        )
        train_ds, val_ds, val_steps = inputs.train, inputs.val, inputs.val_steps
        steps_per_epoch, sample = inputs.steps_per_epoch, inputs.sample
    else:
        train_ds = training_dataset(
            split_dir / "train",
            global_batch,
            config.input_size,
            config.output_stride,
            training=True,
            seed=config.seed,
            max_boxes=config.max_boxes,
            augment=config.augment,
            max_angle=config.rotation_deg,
            drop_remainder=config.fixed_batches and len(train_set.images) >= global_batch,
            cache_images=config.cache_images,
        )
        val_ds = training_dataset(
            split_dir / "val",
            global_batch,
            config.input_size,
            config.output_stride,
            training=False,
            seed=config.seed,
            max_boxes=config.max_boxes,
            wrap_to_full_batches=config.fixed_batches,  # one shape for XLA: validation in whole batches
        )
        if config.fixed_batches:
            val_steps = max(1, math.ceil(len(val_set.images) / global_batch))
        full_batches = len(train_set.images) // global_batch if config.fixed_batches else 0
        steps_per_epoch = config.steps_per_epoch or max(
            1, full_batches or math.ceil(len(train_set.images) / global_batch)
        )
        if config.steps_per_epoch:
            train_ds = train_ds.repeat()

    with strategy.scope():
        if state is not None:
            model = keras.models.load_model(out_dir / CHECKPOINT_DIR / LAST_CHECKPOINT)
            backbone = model.get_layer("backbone")
            pretrained = bool(state.get("pretrained", False))
            initial_weights = str(state.get("initial_weights", "unknown"))
        else:
            model, backbone, builtin_loaded = build_detector(config)
            loaded = load_initial_weights(model, backbone, config.weights)
            pretrained = loaded or bool(builtin_loaded)
            # Provenance says what was loaded, never what was asked for (offline, "imagenet" means scratch).
            initial_weights = (
                (weights_label or str(config.weights)) if loaded else (builtin_loaded or "scratch")
            )
    if not quiet:
        print(f"initial weights: {initial_weights}", flush=True)

    warmup_epochs = min(config.warmup_epochs, config.epochs - 1) if pretrained else 0
    base_lr = config.scaled_learning_rate(global_batch)
    phases = [(0, warmup_epochs, False, base_lr)] if warmup_epochs > 0 else []
    tune_lr = base_lr * (config.fine_tune_lr_factor if pretrained else 1.0)
    phases.append((warmup_epochs, config.epochs, True, tune_lr))

    initial_epoch = int(state["epoch"]) if state else 0
    best = state.get("best_val_loss") if state else None
    started = time.perf_counter()
    book = _EpochState(started, steps_per_epoch * global_batch)
    history: list[dict[str, float]] = _read_history(out_dir) if state else []
    verbose = 0 if quiet else 2
    for index, (first, last, trainable, base_lr) in enumerate(phases):
        if initial_epoch >= last:
            continue
        resumed_here = state is not None and index == _phase_of(phases, initial_epoch)
        with strategy.scope():
            if not resumed_here or backbone.trainable != trainable:
                backbone.trainable = trainable
                compile_model(model, config, base_lr, jit)
        if not quiet:
            what = "backbone frozen (warm-up)" if not trainable else "all layers"
            start = max(first, initial_epoch) + 1
            print(f"epochs {start}-{last}: training {what}, lr {base_lr:g}", flush=True)
        callbacks, checkpoint = _callbacks(
            out_dir,
            config,
            book,
            (first, last, base_lr),
            steps_per_epoch,
            best,
            pretrained,
            initial_weights,
            quiet,
        )
        fit = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=last,
            initial_epoch=max(first, initial_epoch),
            steps_per_epoch=steps_per_epoch if config.steps_per_epoch or run is not None else None,
            validation_steps=val_steps,
            callbacks=callbacks
            + (run.fit_callbacks(model, sample) if run is not None else [])
            + list(extra_callbacks or []),
            verbose=verbose,
            shuffle=False,
        )
        start = max(first, initial_epoch)
        if run is not None:  # hook: a restored backup moved the first epoch of this fit
            start = run.first_epoch(model, start)
        history.extend(_history_rows(fit.history, start))
        best = checkpoint.best if math.isfinite(float(checkpoint.best)) else best
        initial_epoch = start + len(fit.history.get("loss", []))
        if model.stop_training and initial_epoch < last:
            break  # early stopping or the time limit ends the whole schedule
    train_seconds = time.perf_counter() - started
    steady = book.train_seconds[1:] or book.train_seconds  # the first epoch also traces the graph
    images_per_second = book.images_per_epoch * len(steady) / sum(steady) if steady else 0.0

    if run is not None:  # hook: leave the strategy; only the chief goes on to export
        model = run.local_model(model, config)
        if not run.is_chief:
            run.finish(strategy)
            return TrainResult(
                run.requested_out,
                math.nan,
                len(history),
                history,
                {},
                train_seconds,
                images_per_second,
                pretrained,
                initial_weights=initial_weights,
                metadata={"chief": False},
            )
    best_weights = out_dir / CHECKPOINT_DIR / BEST_WEIGHTS
    if best_weights.is_file():
        model.load_weights(best_weights)
    result = finish_training(
        model,
        config,
        split_dir,
        val_set,
        out_dir,
        history,
        train_seconds,
        images_per_second,
        pretrained,
        quiet,
        len(gpus),
        initial_weights,
        book.time_limit_hit,
    )
    if run is not None:
        run.annotate(out_dir, config.batch_size)
        run.finish(strategy)
    return result


def _phase_of(phases: list[tuple[int, int, bool, float]], epoch: int) -> int:
    for index, (first, last, _, _) in enumerate(phases):
        if first <= epoch < last:
            return index
    return len(phases) - 1


def _history_rows(history: dict[str, list[float]], first_epoch: int) -> list[dict[str, float]]:
    n = len(history.get("loss", []))
    return [{"epoch": first_epoch + i + 1, **{k: float(v[i]) for k, v in history.items()}} for i in range(n)]


def _read_history(out_dir: Path) -> list[dict[str, float]]:
    import csv

    path = out_dir / HISTORY_CSV
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    with path.open() as handle:
        for raw in csv.DictReader(handle):
            try:
                values = {str(k): float(v) for k, v in raw.items()}
            except (TypeError, ValueError):
                continue
            values["epoch"] = values.get("epoch", 0.0) + 1  # CSVLogger counts from 0
            rows.append(values)
    return rows


def finish_training(
    model: Any,
    config: TrainConfig,
    split_dir: Path,
    val_set: Dataset,
    out_dir: Path,
    history: list[dict[str, float]],
    train_seconds: float,
    images_per_second: float,
    pretrained: bool,
    quiet: bool,
    gpu_count: int,
    initial_weights: str = "scratch",
    time_limit_hit: bool = False,
) -> TrainResult:
    """Choose the score threshold on validation, export the model and write model.json (last)."""
    import keras

    from modelopsx.evaluation.metrics import choose_score_threshold, evaluate_detections
    from modelopsx.model.export import export_saved_model
    from modelopsx.model.predict import predict_with_model

    keras.mixed_precision.set_global_policy("float32")
    inference = _float32_copy(model, config)
    detections, skipped = predict_with_model(
        inference, config, val_set.root, batch_size=config.batch_size, quiet=quiet
    )
    threshold = float(choose_score_threshold(val_set, detections))
    val_result = evaluate_detections(val_set, detections, score_threshold=threshold)

    keras_path = out_dir / MODEL_KERAS
    inference.save(keras_path)
    export_saved_model(inference, config, out_dir / SAVED_MODEL_DIR)
    metadata: dict[str, Any] = {
        "backbone": config.backbone,
        "input_size": list(config.input_size),
        "output_stride": config.output_stride,
        "score_threshold": threshold,
        "min_score": config.min_score,
        "params": {**config.to_json(), "weights": None if initial_weights == "scratch" else initial_weights},
        "train_dataset_hash": _train_dataset_hash(split_dir),
        "split_dir": str(split_dir),
        "pretrained": pretrained,
        "initial_weights": initial_weights,
        "history": history,
        "val_metrics": val_result.metrics,
        "train_seconds": round(train_seconds, 2),
        "epochs_run": len(history),
        "time_limit_hit": time_limit_hit,
        "train_images_per_second": round(images_per_second, 2),
        "skipped_images": _skipped_images(split_dir / "train"),
        "val_skipped_images": skipped,
        "gpus": gpu_count,
        "versions": _versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json(out_dir / MODEL_JSON, metadata)
    if not quiet:
        print(
            f"score threshold {threshold:.3f} (max F1 on val); val ap50 {val_result.metrics.get('ap50')}",
            flush=True,
        )
    return TrainResult(
        model_dir=out_dir,
        score_threshold=threshold,
        epochs_run=len(history),
        history=history,
        val_metrics=val_result.metrics,
        train_seconds=train_seconds,
        images_per_second=images_per_second,
        pretrained=pretrained,
        initial_weights=initial_weights,
        skipped_images=int(metadata["skipped_images"] or 0),
        metadata=metadata,
    )


def _float32_copy(model: Any, config: TrainConfig) -> Any:
    """A float32, strategy-free copy for export and inference (mixed-precision graphs serve worse on CPU)."""
    from modelopsx.model.detector import build_detector

    if model.dtype_policy.name == "float32" and not _in_strategy():
        return model
    copy, _, _ = build_detector(config, imagenet=False)
    copy.set_weights(model.get_weights())
    return copy


def _in_strategy() -> bool:
    import tensorflow as tf

    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


def _skipped_images(train_dir: Path) -> int | None:
    """Unreadable training images the input pipeline left out (skipped and counted, never a crash)."""
    try:
        from modelopsx.data.tfdata import pipeline_info

        return len(pipeline_info(train_dir)["skipped"])
    except (KeyError, OSError):
        return None


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}
