"""Prediction: batched over a dataset dir (COCO results for evaluation) or over image files (drawn boxes).

`model_dir` may also be the HOG baseline marker "hog" (OpenCV's people detector, see hog.py).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelopsx.data.format import load_dataset
from modelopsx.errors import ModelError
from modelopsx.model.config import TrainConfig
from modelopsx.model.layout import MODEL_KERAS, read_model_json, require_model_dir

log = logging.getLogger(__name__)


def is_hog(model_dir: Path | str) -> bool:
    return str(model_dir).strip().lower() == "hog"


@lru_cache(maxsize=4)
def _load(model_dir: str, mtime: float) -> tuple[Any, TrainConfig, dict[str, Any]]:
    import keras

    import modelopsx.model.backbones  # noqa: F401  (registers the custom layers)
    import modelopsx.model.losses  # noqa: F401

    root = Path(model_dir)
    meta = read_model_json(root)
    config = TrainConfig.from_json(meta.get("params", {}))
    model = keras.models.load_model(root / MODEL_KERAS, compile=False)
    return model, config, meta


def load_model_dir(model_dir: Path) -> tuple[Any, TrainConfig, dict[str, Any]]:
    """(keras model, config, model.json) of an exported MODEL_DIR; ModelError when it is not one."""
    model_dir = require_model_dir(
        model_dir, hint="pass the --out folder of `modelopsx train`, or 'hog' for the HOG baseline"
    )
    try:
        return _load(str(model_dir.resolve()), (model_dir / MODEL_KERAS).stat().st_mtime)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(
            f"{model_dir}: cannot load the model ({exc})",
            hint="the model files may be incomplete; re-export or re-train",
        ) from None


def _inference_dataset(paths: list[Path], ids: list[int], config: TrainConfig, batch_size: int) -> Any:
    import tensorflow as tf

    from modelopsx.model.export import decode_for_model

    def load(path: tf.Tensor, image_id: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        pixels, size = decode_for_model(tf.io.read_file(path), config.input_size)
        return pixels, size, image_id

    ds = tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], list(ids)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()  # unreadable images are skipped; the caller counts what is missing
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _run(
    model: Any,
    config: TrainConfig,
    paths: list[Path],
    ids: list[int],
    batch_size: int,
    min_score: float,
    quiet: bool,
) -> tuple[dict[int, list[dict]], int]:
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from modelopsx.model.decode import coco_results, decode_detections, to_original_pixels

    @tf.function(reduce_retracing=True)
    def infer(pixels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        outputs = model(pixels, training=False)
        return decode_detections(outputs, config.output_stride, config.max_detections)

    results: dict[int, list[dict]] = {}
    batches = _inference_dataset(paths, ids, config, batch_size)
    total = (len(paths) + batch_size - 1) // batch_size
    for pixels, sizes, image_ids in tqdm(batches, total=total, disable=quiet, desc="predict", unit="batch"):
        boxes, scores = infer(pixels)
        boxes, scores, sizes = np.asarray(boxes), np.asarray(scores), np.asarray(sizes)
        for i, image_id in enumerate(np.asarray(image_ids)):
            original = (float(sizes[i][0]), float(sizes[i][1]))
            scaled = to_original_pixels(boxes[i], config.input_size, original)
            results[int(image_id)] = coco_results(int(image_id), scaled, scores[i], min_score)
    skipped = len(paths) - len(results)
    if skipped:
        log.warning("%d of %d images could not be read and were skipped", skipped, len(paths))
    return results, skipped


def predict_with_model(
    model: Any, config: TrainConfig, dataset_dir: Path, batch_size: int = 16, quiet: bool = True
) -> tuple[list[dict], int]:
    """COCO results (score >= config.min_score) of an in-memory model over a dataset; (results, skipped)."""
    dataset = load_dataset(dataset_dir)
    paths = [dataset.image_path(img) for img in dataset.images]
    ids = [img.id for img in dataset.images]
    by_image, skipped = _run(model, config, paths, ids, batch_size, config.min_score, quiet)
    return [det for image_id in ids for det in by_image.get(image_id, [])], skipped


def predict_dataset(
    model_dir: Path, dataset_dir: Path, out_json: Path | None = None, batch_size: int = 16, quiet: bool = True
) -> list[dict]:
    """Detections over every image of a canonical dataset, down to a low floor score (evaluation sweeps
    thresholds). Writes them to out_json when given."""
    if is_hog(model_dir):
        from modelopsx.model.hog import hog_predict_dataset

        detections = hog_predict_dataset(Path(dataset_dir), quiet=quiet)
    else:
        model, config, _ = load_model_dir(Path(model_dir))
        detections, _ = predict_with_model(model, config, Path(dataset_dir), batch_size, quiet)
    if out_json is not None:
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(detections))
    return detections


def predict_images(model_dir: Path, images: list[Path], out_dir: Path | None = None) -> list[dict]:
    """Detections at the model's operating threshold (chosen on validation) for image files.

    Each result is a COCO results dict plus "file_name"; image_id is the position in `images`. With out_dir,
    writes out_dir/detections.json and a copy of each image with its boxes drawn.
    """
    images = [Path(p) for p in images]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise ModelError(f"image(s) not found: {', '.join(missing[:5])}", hint="check the paths")
    ids = list(range(len(images)))
    if is_hog(model_dir):
        from modelopsx.model.hog import HOG_THRESHOLD, hog_detect_file

        threshold = HOG_THRESHOLD
        by_image = {i: hog_detect_file(path, i) for i, path in enumerate(images)}
    else:
        model, config, meta = load_model_dir(Path(model_dir))
        threshold = float(meta.get("score_threshold", 0.3))
        by_image, _ = _run(model, config, images, ids, 16, threshold, quiet=True)
    results = []
    for i, path in enumerate(images):
        for det in by_image.get(i, []):
            if det["score"] >= threshold:
                results.append({**det, "file_name": path.name})
    if out_dir is not None:
        draw_detections(images, results, Path(out_dir))
    return results


def draw_detections(images: list[Path], results: list[dict], out_dir: Path) -> None:
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "detections.json").write_text(json.dumps(results, indent=1))
    for i, path in enumerate(images):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("%s: cannot be read, not drawn", path)
            continue
        for det in results:
            if det["image_id"] != i:
                continue
            x, y, w, h = (int(round(v)) for v in det["bbox"])
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 200, 0), 2)
            cv2.putText(
                image,
                f"{det['score']:.2f}",
                (x, max(y - 3, 10)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (0, 200, 0),
                1,
                cv2.LINE_AA,
            )
        target = out_dir / f"{i:04d}_{path.stem}.jpg"
        cv2.imwrite(str(target), image)
