"""The GPU preset's input pipeline: its ceiling in images/s on this machine, and per core.

The GPU preset trains at 384x576 in batches of 64 with decoded images cached in RAM after the first epoch
(`cache_images`), every batch full (`drop_remainder`), CenterNet targets encoded in the pipeline and batches
prefetched. This bench builds exactly that pipeline (modelopsx.model.targets.training_dataset) on synthetic
scenes and times steady epochs, side by side with the same pipeline without the decoded-image cache (decode
every epoch, as the CPU presets do) and with augmentation off, so the table shows what each part costs. A GPU
node feeds the device from many cores; the per-core figure says how many a GPU needs for 5,000 images/s.

MODELOPSX_BENCH_INPUT_IMAGES (default 512) sets the number of scenes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TARGET = 5000  # images/s the GPU preset needs from its input pipeline


def _images_per_second(dataset: object, epochs: int) -> float:
    """Steady epochs only: the first fills the cache and traces the graph."""
    count = 0
    for _ in dataset:  # type: ignore[attr-defined]
        pass
    started = time.perf_counter()
    for _ in range(epochs):
        for images, _targets in dataset:  # type: ignore[attr-defined]
            count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def main() -> None:
    from modelopsx.data.synth import generate_synthetic
    from modelopsx.model.config import TrainConfig
    from modelopsx.model.targets import training_dataset

    config = TrainConfig.gpu_default()
    n = int(os.environ.get("MODELOPSX_BENCH_INPUT_IMAGES", "512"))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-input-") as tmp:
        root = Path(tmp)
        height, width = config.input_size
        generate_synthetic(root / "scenes", n, seed=0, size=(width, height))

        def pipeline(cache_images: bool, augment: bool) -> object:
            return training_dataset(
                root / "scenes",
                config.batch_size,
                config.input_size,
                config.output_stride,
                training=True,
                seed=0,
                max_boxes=config.max_boxes,
                augment=augment,
                max_angle=config.rotation_deg,
                drop_remainder=True,
                cache_images=cache_images,
                cache_dir=root / "shards",
            )

        rows = [
            ("GPU preset: cached decode, augmented", pipeline(True, True)),
            ("decode every epoch, augmented", pipeline(False, True)),
            ("cached decode, no augmentation", pipeline(True, False)),
        ]
        results = [(name, _images_per_second(ds, epochs=2)) for name, ds in rows]

    print(f"{n} scenes at {height}x{width}, batch {config.batch_size}, targets encoded, {cores} cores")
    print(f"{'pipeline':40}{'images/s':>10}{'per core':>10}{'cores for 5,000/s':>20}")
    for name, per_second in results:
        per_core = per_second / cores
        print(f"{name:40}{per_second:>10.0f}{per_core:>10.0f}{TARGET / per_core:>20.0f}")
    base = results[0][1]
    print(
        f"cache speed-up over decoding every epoch: {base / results[1][1]:.2f}x; augmentation costs "
        f"{results[2][1] / base:.2f}x"
    )


if __name__ == "__main__":
    main()
