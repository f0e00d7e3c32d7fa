"""Detector quality on scenes no model trained on (`make bench` or `python -m tests.benchmarks bench_model`).

Each CPU preset trains on the synthetic data it is made for (local: the 600 scenes of a first `make run`;
cpu: 2,000 scenes), split val/test 15% each. Every model, and OpenCV's HOG people detector beside them, is
scored on the same held-out scenes of a seed no training used, at the score threshold each chose on its own
validation split. For the local preset the held-out quality is also traced after every epoch: quality against
training minutes. Ends with the SavedModel's latency per image at batch 1 and 16.

MODELOPSX_BENCH_PRESETS (default "local,cpu") and MODELOPSX_BENCH_HELD_OUT (images, default 400) shrink it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

HELD_OUT_SEED = 7  # never a training seed: make run and the benches train on seed 0
TRAIN_IMAGES = {"local": 600, "cpu": 2000}
TARGETS = {
    "local": {"ap50": 0.5, "mr2_reasonable": 0.45, "f1_over_hog": 0.1},
    "cpu": {"ap50": 0.85, "mr2_reasonable": 0.25},
}
COLUMNS = ("ap50", "mr2_reasonable", "precision", "recall", "f1", "accuracy")


def _latency(saved_model: Path, images: list[Path], batch: int, repeats: int) -> float:
    """Seconds per image through `serving_default` (after one warm-up call)."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    payload = [p.read_bytes() for p in images[:batch]]
    serve(images=tf.constant(payload))
    started = time.perf_counter()
    for _ in range(repeats):
        serve(images=tf.constant(payload))["count"].numpy()
    return (time.perf_counter() - started) / (repeats * batch)


def _fmt(value: Any, width: int) -> str:
    return f"{'n/a' if value is None else f'{value:.3f}':>{width}}"


def held_out_curve(config: Any, val_dir: Path, held_out: Path) -> Any:
    """A Keras callback: after each epoch, the in-memory model's held-out quality at the threshold chosen on
    validation, against the training seconds so far (its own scoring time left out)."""
    import keras

    from modelopsx.evaluation.metrics import choose_score_threshold, evaluate_detections
    from modelopsx.model.predict import predict_with_model

    class Curve(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[tuple[int, float, dict[str, Any]]] = []
            self.started: float | None = None
            self.scoring = 0.0

        def on_train_begin(self, logs: Any = None) -> None:
            self.started = self.started or time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            begin = time.perf_counter()
            trained = begin - (self.started or begin) - self.scoring
            val, _ = predict_with_model(self.model, config, val_dir, batch_size=16)
            threshold = float(choose_score_threshold(val_dir, val))
            dets, _ = predict_with_model(self.model, config, held_out, batch_size=16)
            metrics = evaluate_detections(held_out, dets, score_threshold=threshold).metrics
            self.scoring += time.perf_counter() - begin
            self.rows.append((epoch + 1, trained, metrics))

    return Curve()


def _hog(val_dir: Path, held_out: Path) -> dict[str, Any]:
    from modelopsx.evaluation.metrics import choose_score_threshold, evaluate_detections
    from modelopsx.model.predict import predict_dataset

    threshold = float(choose_score_threshold(val_dir, predict_dataset(Path("hog"), val_dir)))
    return evaluate_detections(
        held_out, predict_dataset(Path("hog"), held_out), score_threshold=threshold
    ).metrics


def main() -> None:
    from modelopsx.data.split import split_dataset
    from modelopsx.data.synth import generate_synthetic
    from modelopsx.evaluation.metrics import evaluate_detections
    from modelopsx.model.predict import predict_dataset
    from modelopsx.model.settings import preset_config
    from modelopsx.model.train import train_model

    presets = [p.strip() for p in os.environ.get("MODELOPSX_BENCH_PRESETS", "local,cpu").split(",") if p]
    n_held_out = int(os.environ.get("MODELOPSX_BENCH_HELD_OUT", "400"))
    rows: list[tuple[str, dict[str, Any], str]] = []
    curve_rows: list[tuple[int, float, dict[str, Any]]] = []
    latency = None
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        root = Path(tmp)
        held_out = root / "held-out"
        generate_synthetic(held_out, n_held_out, seed=HELD_OUT_SEED)
        print(
            f"held-out: {n_held_out} synthetic scenes of seed {HELD_OUT_SEED} (no training uses it)",
            flush=True,
        )
        hog_by_split: dict[int, dict[str, Any]] = {}
        for preset in presets:
            n_train = TRAIN_IMAGES[preset]
            data = root / f"data-{n_train}"
            if not data.exists():
                generate_synthetic(data / "synthetic", n_train, seed=0)
                split_dataset(data / "synthetic", data / "split", val=0.15, test=0.15)
            config = preset_config(preset)
            print(
                f"\n[{preset}] {n_train} scenes (seed 0); {config.backbone} alpha {config.alpha}, input "
                f"{config.input_size[0]}x{config.input_size[1]}, {config.epochs} epochs, "
                f"weights {config.weights}",
                flush=True,
            )
            curve = held_out_curve(config, data / "split" / "val", held_out) if preset == "local" else None
            result = train_model(
                data / "split",
                root / f"model-{preset}",
                config,
                quiet=True,
                extra_callbacks=[curve] if curve else None,
            )
            detections = predict_dataset(root / f"model-{preset}", held_out)
            metrics = evaluate_detections(
                held_out, detections, score_threshold=result.score_threshold
            ).metrics
            train_s = result.train_seconds - (curve.scoring if curve else 0.0)
            rows.append(
                (preset, metrics, f"{train_s:6.0f}s {result.epochs_run:>3} ep  {result.initial_weights[:28]}")
            )
            if curve is not None:
                curve_rows = curve.rows
            if n_train not in hog_by_split:
                hog_by_split[n_train] = _hog(data / "split" / "val", held_out)
            if latency is None:
                images = sorted((held_out / "images").iterdir())
                saved = root / f"model-{preset}" / "saved_model"
                latency = (_latency(saved, images, 1, 20), _latency(saved, images, 16, 4))
        hog = next(iter(hog_by_split.values()))

    print(f"\nheld-out quality (seed {HELD_OUT_SEED}, each at its validation threshold)")
    print(f"{'':10}" + "".join(f"{c[:9]:>10}" for c in COLUMNS) + "   training")
    for name, metrics, note in [*rows, ("hog", hog, "")]:
        print(f"{name:10}" + "".join(_fmt(metrics.get(c), 10) for c in COLUMNS) + f"   {note}")
    hog_f1 = hog.get("f1") or 0.0
    for name, metrics, _ in rows:
        target = TARGETS[name]
        ap50, mr2, f1 = metrics.get("ap50") or 0.0, metrics.get("mr2_reasonable"), metrics.get("f1") or 0.0
        mr2 = 1.0 if mr2 is None else mr2
        want_ap50, want_mr2 = target["ap50"], target["mr2_reasonable"]
        checks = [
            f"ap50 {ap50:.3f} >= {want_ap50}: {'PASS' if ap50 >= want_ap50 else 'MISS'}",
            f"MR-2 {mr2:.3f} <= {want_mr2}: {'PASS' if mr2 <= want_mr2 else 'MISS'}",
        ]
        if "f1_over_hog" in target:
            need = hog_f1 + target["f1_over_hog"]
            checks.append(
                f"f1 {f1:.3f} >= hog {hog_f1:.3f} + {target['f1_over_hog']}: "
                + ("PASS" if f1 >= need else "MISS")
            )
        print(f"targets [{name}]: " + "; ".join(checks))
    if curve_rows:
        print("\nlocal preset: held-out quality against training minutes")
        print(
            f"{'epoch':>6}{'minutes':>9}" + "".join(f"{c[:9]:>10}" for c in ("ap50", "mr2_reasonable", "f1"))
        )
        for epoch, seconds, metrics in curve_rows:
            print(
                f"{epoch:>6}{seconds / 60:>9.1f}"
                + "".join(_fmt(metrics.get(c), 10) for c in ("ap50", "mr2_reasonable", "f1"))
            )
    if latency:
        one, sixteen = latency
        print(
            f"\nSavedModel latency ({rows[0][0]} preset): batch 1 {one * 1000:.1f} ms/image, batch 16 "
            f"{sixteen * 1000:.1f} ms/image (batching speed-up {one / sixteen:.1f}x)"
        )


if __name__ == "__main__":
    main()
