"""Training: tf.data pipeline + CenterNet targets, the fit in phases (model/schedule.py), checkpoints and
resume; the chief then finishes the model (model/finish.py: threshold, exports, model.json).

The same call runs on CPU (deterministic with a seed) and on GPUs (mixed precision, MirroredStrategy, XLA).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from modelopsx.data.format import Dataset, load_dataset
from modelopsx.errors import DatasetError, ModelError
from modelopsx.model.config import TrainConfig
from modelopsx.model.distributed import DistributedRun
from modelopsx.model.finish import TrainResult, finish_training
from modelopsx.model.layout import (
    BEST_WEIGHTS,
    CHECKPOINT_DIR,
    HISTORY_CSV,
    LAST_CHECKPOINT,
    MODEL_JSON,
    STATE_FILE,
    write_json,
)
from modelopsx.model.schedule import EpochState, budget_schedule, phase_of, training_phases

log = logging.getLogger(__name__)


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


def _callbacks(
    out_dir: Path,
    config: TrainConfig,
    state: EpochState,
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
            write_json(
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
        budget_schedule(config, state, first, last, steps_per_epoch, base_lr, quiet),
        checkpoint,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
        keras.callbacks.CSVLogger(str(out_dir / HISTORY_CSV), append=True),
        keras.callbacks.TensorBoard(log_dir=str(out_dir / "logs"), write_graph=False, profile_batch=0),
        ResumableCheckpoint(),
    ]
    return callbacks, checkpoint


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
    write_json(out_dir / CHECKPOINT_DIR / "config.json", config.to_json())

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

    phases = training_phases(config, pretrained, global_batch)

    initial_epoch = int(state["epoch"]) if state else 0
    best = state.get("best_val_loss") if state else None
    started = time.perf_counter()
    book = EpochState(started, steps_per_epoch * global_batch)
    history: list[dict[str, float]] = _read_history(out_dir) if state else []
    verbose = 0 if quiet else 2
    for index, (first, last, trainable, base_lr) in enumerate(phases):
        if initial_epoch >= last:
            continue
        resumed_here = state is not None and index == phase_of(phases, initial_epoch)
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
