"""Finishing a training: the score threshold chosen on validation, the Keras and SavedModel exports
(model/export.py builds the serving signature), and model.json (model/layout.py) written last, so a folder
with a model.json holds a whole model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelopsx.data.format import Dataset
from modelopsx.model.config import TrainConfig
from modelopsx.model.layout import MODEL_JSON, MODEL_KERAS, SAVED_MODEL_DIR, write_json


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
    write_json(out_dir / MODEL_JSON, metadata)
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


def _train_dataset_hash(split_dir: Path) -> str | None:
    split_json = split_dir / "split.json"
    if split_json.is_file():
        try:
            return json.loads(split_json.read_text()).get("hashes", {}).get("train")
        except (ValueError, AttributeError):
            pass
    from modelopsx.data.hashing import dataset_version_hash

    return dataset_version_hash(split_dir / "train")


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
