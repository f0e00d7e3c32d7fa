"""GPU smoke check (`make gpu-check`): build the detector under KERAS_BACKEND=jax, train a few hundred steps
on synthetic scenes made in memory with numpy, print images/s and whether it learned.

Needs only keras + jax (+ numpy): no TensorFlow, no dataset on disk, no network. Not part of CI. Exits
non-zero when the loss does not fall.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from the repository root

import keras  # noqa: E402
import numpy as np  # noqa: E402

from modelopsx.model.config import TrainConfig  # noqa: E402
from modelopsx.model.decode import decode_detections  # noqa: E402
from modelopsx.model.detector import build_detector  # noqa: E402
from modelopsx.model.heatmap import encode_targets_numpy  # noqa: E402
from modelopsx.model.losses import CenterNetLoss, loss_metrics  # noqa: E402

INPUT = (256, 384)
STEPS = int(os.environ.get("GPU_CHECK_STEPS", "300"))
BATCH = int(os.environ.get("GPU_CHECK_BATCH", "32"))
N_IMAGES = 512


def synthetic_scenes(n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Textured backgrounds with upright 'people' (head + body + legs) of many heights, as boxes."""
    rng = np.random.default_rng(seed)
    height, width = INPUT
    images = np.empty((n, height, width, 3), np.float32)
    all_boxes = []
    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(n):
        base = rng.uniform(60, 200, 3)
        image = base + rng.normal(0, 12, (height, width, 3)) + 30 * np.sin(xs / rng.uniform(8, 40))[..., None]
        boxes = []
        for _ in range(rng.integers(0, 6)):
            h = rng.uniform(24, 200)
            w = h * rng.uniform(0.3, 0.45)
            x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            color = rng.uniform(0, 255, 3)
            cx = x1 + w / 2
            head = (xs - cx) ** 2 + (ys - (y1 + h * 0.08)) ** 2 <= (h * 0.08) ** 2
            body = (np.abs(xs - cx) <= w / 2) & (ys >= y1 + h * 0.16) & (ys <= y1 + h * 0.6)
            legs = (np.abs(np.abs(xs - cx) - w * 0.2) <= w * 0.12) & (ys > y1 + h * 0.6) & (ys <= y1 + h)
            image[head] = color * 0.6 + 80
            image[body] = color
            image[legs] = color * 0.5
            boxes.append([x1, y1, x1 + w, y1 + h])
        images[i] = np.clip(image, 0, 255)
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
    return images, all_boxes


def main() -> int:
    import jax

    devices = jax.devices()
    print(f"backend {keras.backend.backend()}, devices: {devices}", flush=True)
    if any(d.platform == "gpu" for d in devices):
        keras.mixed_precision.set_global_policy("mixed_float16")
    config = TrainConfig(input_size=INPUT, weights=None, output_stride=8, batch_size=BATCH)
    started = time.perf_counter()
    images, boxes = synthetic_scenes(N_IMAGES)
    targets = np.stack(
        [encode_targets_numpy(b, np.ones(len(b), np.int32), INPUT, config.output_stride) for b in boxes]
    )
    print(f"{N_IMAGES} synthetic images in {time.perf_counter() - started:.1f}s", flush=True)

    model, _, _ = build_detector(config)
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, STEPS, alpha=0.05, warmup_target=3e-3, warmup_steps=min(50, STEPS // 5)
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4, global_clipnorm=10.0),
        loss=CenterNetLoss(),
        metrics=loss_metrics(),
        jit_compile=True,
    )
    steps_per_epoch = N_IMAGES // BATCH
    epochs = max(1, STEPS // steps_per_epoch)

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    fit = model.fit(
        images, targets, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=2, callbacks=[timer]
    )
    losses = fit.history["loss"]
    steady = timer.times[1:] or timer.times  # the first epoch includes XLA compilation
    per_second = steps_per_epoch * BATCH * len(steady) / sum(steady)
    print(
        f"training: {epochs * steps_per_epoch} steps, batch {BATCH}, {per_second:.0f} images/s "
        f"(first epoch incl. compile {timer.times[0]:.1f}s), loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    )

    predict_start = time.perf_counter()
    outputs = model.predict(images[:64], batch_size=BATCH, verbose=0)
    found, scores = decode_detections(outputs, config.output_stride, config.max_detections)
    scores = np.asarray(scores)
    print(f"inference: {64 / (time.perf_counter() - predict_start):.0f} images/s (incl. compile)")
    recalled = total = 0
    for i in range(64):
        kept = np.asarray(found)[i][scores[i] >= 0.3]
        for box in boxes[i]:
            total += 1
            recalled += bool(len(kept)) and _best_iou(box, kept) >= 0.5
    recall = recalled / max(total, 1)
    print(f"recall@IoU0.5 on training images (inference mode, score >= 0.3): {recall:.2f}")
    print(f"gpu-check total {time.perf_counter() - started:.0f}s")
    ok = losses[-1] < 0.6 * losses[0]  # recall is reported, not required: a few hundred steps from scratch
    print("gpu-check " + ("OK" if ok else "FAILED: the loss did not fall"))
    return 0 if ok else 1


def _best_iou(box: np.ndarray, others: np.ndarray) -> float:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return float((inter / (area + areas - inter)).max())


if __name__ == "__main__":
    sys.exit(main())
