"""GPU check (`make gpu-check`): the GPU preset's detector under KERAS_BACKEND=jax, on synthetic scenes.

Prints, for each precision and batch size: training images/s, the one compile's time and achieved TFLOP/s;
then trains the preset's shape for a fixed number of steps and prints held-out quality (ap50, MR-2, precision,
recall, f1) on scenes of a seed never trained on, at the threshold chosen on a validation seed.

Needs keras (+ its small pure-Python dependencies), jax, numpy, OpenCV and h5py, as a GPU machine's Python has
them: no TensorFlow, no network. The data lives on the device (uint8 images, dense targets); each step gathers
its batch there, so the host never feeds the GPU. One compiled shape per (precision, batch): the step count is
a whole number of full batches.

Person features: set MODELOPSX_CACHE_DIR to a folder holding the converted `weights/ssdlite-person-*` pair
(converted where TensorFlow is installed, e.g. by `make setup` + one training); otherwise training starts from
random weights, and says so.

Environment: GPU_CHECK_BATCHES (default "64,128"), GPU_CHECK_PRECISIONS (default: "mixed_bfloat16" where
the GPU has native bf16, else "mixed_float16"; add "float32" to compare), GPU_CHECK_STEPS (quality budget,
default 600),
GPU_CHECK_IMAGES (training scenes, default 4096), GPU_CHECK_SPEED_STEPS (timed steps per setting, default 30),
GPU_CHECK_INPUT (HxW instead of the preset's input size: a dry run on a CPU, whose XLA expands depthwise
convolutions into dense ones and runs out of memory at the preset's size).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from the repository root

import keras  # noqa: E402
import numpy as np  # noqa: E402

from modelopsx.model.config import TrainConfig, parse_input_size  # noqa: E402

HELD_OUT_SEED, VAL_SEED, TRAIN_SEED = 101, 102, 0


def env_list(name: str, default: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


def load_scenes(root: Path, n: int, seed: int, size: tuple[int, int]) -> tuple[Any, np.ndarray, list]:
    """Synthetic scenes rendered at the model's input size (no resize): (dataset, uint8 images, boxes)."""
    import cv2

    from modelopsx.data.format import load_dataset
    from modelopsx.data.synth import generate_synthetic

    height, width = size
    # forked workers: main() renders the scenes before jax starts its threads
    generate_synthetic(root, n, seed=seed, size=(width, height))
    dataset = load_dataset(root)
    images = np.stack([cv2.imread(str(dataset.image_path(i)))[..., ::-1] for i in dataset.images])
    by_image: dict[int, list] = {img.id: [] for img in dataset.images}
    labels: dict[int, list] = {img.id: [] for img in dataset.images}
    for box in dataset.annotations:
        x, y, w, h = box.bbox
        by_image[box.image_id].append([x, y, x + w, y + h])
        labels[box.image_id].append(-1 if (box.ignore or box.iscrowd) else 1)
    boxes = [
        (np.array(by_image[i.id], np.float32).reshape(-1, 4), np.array(labels[i.id], np.int32))
        for i in dataset.images
    ]
    return dataset, images, boxes


def conv_flops(model: Any) -> float:
    """Forward multiply-adds x2 of every convolution (the detector's cost; ReLU, BN and adds are noise)."""
    total = 0.0
    from modelopsx.model.backbones import walk_layers

    for layer in walk_layers(model):
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is None or len(shape) != 4:
            continue
        cells = float(shape[1] * shape[2])
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            total += 2 * kh * kw * cin * mult * cells
        elif isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            total += 2 * (kh * kw * cin * mult + cin * mult * layer.filters) * cells
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * kh * kw * cin * cout * cells
    return total


class Trainer:
    """A jitted train step on device-resident data (Keras stateless API): the backbone's gradients are
    switched off during the warm-up steps by a traced flag, so warm-up and fine-tuning share one compile."""

    def __init__(self, config: TrainConfig, precision: str, batch: int, steps: int) -> None:
        import jax

        from modelopsx.model.detector import build_detector
        from modelopsx.model.losses import CenterNetLoss

        keras.mixed_precision.set_global_policy(precision)
        self.model, backbone, self.loaded = build_detector(config)
        self.batch = batch
        lr = config.scaled_learning_rate(batch)
        schedule = keras.optimizers.schedules.CosineDecay(
            lr * 0.05, steps, alpha=0.02, warmup_target=lr, warmup_steps=max(1, steps // 10)
        )
        optimizer: Any = keras.optimizers.AdamW(
            schedule, weight_decay=config.weight_decay, global_clipnorm=10.0
        )
        if precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(self.model.trainable_variables)
        self.optimizer = optimizer
        self.loss_fn = CenterNetLoss(
            config.size_loss_weight, config.offset_loss_weight, config.giou_loss_weight
        )
        in_backbone = {id(v) for v in backbone.trainable_variables}
        self.backbone_mask = [id(v) in in_backbone for v in self.model.trainable_variables]
        self.state = (
            [v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables],
            [v.value for v in optimizer.variables],
        )
        self.step = jax.jit(self._step, donate_argnums=(0,))

    def _step(self, state: Any, images: Any, targets: Any, index: Any, backbone_on: Any) -> Any:
        import jax
        import jax.numpy as jnp

        trainable, non_trainable, opt_vars = state
        x = jnp.take(images, index, axis=0).astype("float32")
        y = jnp.take(targets, index, axis=0)

        def loss_of(tv: Any, ntv: Any) -> Any:
            pred, ntv = self.model.stateless_call(tv, ntv, x, training=True)
            loss = self.loss_fn(y, pred)
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
            return scaled, (loss, ntv)

        (_, (loss, non_trainable)), grads = jax.value_and_grad(loss_of, has_aux=True)(
            trainable, non_trainable
        )
        grads = [
            g * backbone_on if frozen else g for g, frozen in zip(grads, self.backbone_mask, strict=True)
        ]
        trainable, opt_vars = self.optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), loss

    def run(self, images: Any, targets: Any, order: np.ndarray, warmup: int = 0) -> list[float]:
        import jax.numpy as jnp

        losses = []
        for i, start in enumerate(range(0, len(order) - self.batch + 1, self.batch)):
            index = jnp.asarray(order[start : start + self.batch])
            flag = jnp.asarray(0.0 if i < warmup else 1.0, jnp.float32)
            self.state, loss = self.step(self.state, images, targets, index, flag)
            losses.append(loss)
        return [float(v) for v in losses]

    def sync_to_model(self) -> None:
        trainable, non_trainable, _ = self.state
        for var, value in zip(self.model.trainable_variables, trainable, strict=True):
            var.assign(value)
        for var, value in zip(self.model.non_trainable_variables, non_trainable, strict=True):
            var.assign(value)


def epoch_order(n: int, batch: int, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(-(-steps * batch // n) + 1)])
    return order[: steps * batch].astype(np.int32)


def speed(config: TrainConfig, precision: str, batch: int, images: Any, targets: Any, steps: int) -> tuple:
    """(training images/s, seconds to compile) of one (precision, batch): a compile, then `steps` timed."""
    import jax

    trainer = Trainer(config, precision, batch, steps + 2)
    order = epoch_order(images.shape[0], batch, steps + 2, seed=1)
    started = time.perf_counter()
    trainer.run(images, targets, order[: 2 * batch])  # compile + one step
    jax.block_until_ready(trainer.state)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    trainer.run(images, targets, order[2 * batch :])
    jax.block_until_ready(trainer.state)
    return steps * batch / (time.perf_counter() - started), compile_s


def build_for_flops(config: TrainConfig) -> Any:
    from modelopsx.model.detector import build_detector

    model, _, _ = build_detector(config, imagenet=False)
    return model


def held_out_quality(trainer: Trainer, config: TrainConfig, sets: dict[str, tuple]) -> dict[str, Any]:
    """Detections on the validation and held-out scenes; threshold by max F1 on validation."""
    from modelopsx.evaluation.metrics import choose_score_threshold, evaluate_detections
    from modelopsx.model.decode import coco_results, decode_detections

    trainer.sync_to_model()
    keras.mixed_precision.set_global_policy("float32")
    results: dict[str, list] = {}
    for name, (dataset, images, _) in sets.items():
        dets: list = []
        for start in range(0, len(images), 64):
            outputs = trainer.model(images[start : start + 64].astype("float32"), training=False)
            boxes, scores = decode_detections(outputs, config.output_stride, config.max_detections)
            boxes, scores = np.asarray(boxes), np.asarray(scores)
            for i in range(len(boxes)):
                image_id = dataset.images[start + i].id
                dets.extend(coco_results(image_id, boxes[i], scores[i], config.min_score))
        results[name] = dets
    threshold = float(choose_score_threshold(sets["val"][0], results["val"]))
    metrics = evaluate_detections(sets["test"][0], results["test"], score_threshold=threshold).metrics
    return {"threshold": threshold, **metrics}


def main() -> int:
    import jax

    from modelopsx.model.heatmap import encode_targets_numpy

    config = TrainConfig.gpu_default()
    if os.environ.get("GPU_CHECK_INPUT"):  # e.g. "64x96": a dry run of the code path on a CPU
        config = config.replace(input_size=parse_input_size(os.environ["GPU_CHECK_INPUT"]))
    # the first batch size also trains for the quality budget
    batches = [int(b) for b in env_list("GPU_CHECK_BATCHES", f"{config.batch_size},128")]
    quality_steps = int(os.environ.get("GPU_CHECK_STEPS", "600"))
    speed_steps = int(os.environ.get("GPU_CHECK_SPEED_STEPS", "30"))
    n_images = int(os.environ.get("GPU_CHECK_IMAGES", "4096"))

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        sets = {
            name: load_scenes(Path(tmp) / name, n, seed, config.input_size)
            for name, n, seed in (
                ("train", n_images, TRAIN_SEED),
                ("val", 256, VAL_SEED),
                ("test", 512, HELD_OUT_SEED),
            )
        }
    devices = jax.devices()
    gpu = [d for d in devices if d.platform == "gpu"]
    capability = getattr(gpu[0], "compute_capability", "") if gpu else ""
    print(
        f"backend {keras.backend.backend()}, devices: {devices}, compute capability {capability}", flush=True
    )
    native_bf16 = bool(capability) and float(capability) >= 8.0
    precisions = env_list("GPU_CHECK_PRECISIONS", "mixed_bfloat16" if native_bf16 else "mixed_float16")
    _, train_images, train_boxes = sets["train"]
    targets = np.stack(
        [
            encode_targets_numpy(b, labels, config.input_size, config.output_stride)
            for b, labels in train_boxes
        ]
    )
    images_dev, targets_dev = jax.device_put(train_images), jax.device_put(targets)
    print(
        f"{n_images} training scenes at {config.input_size[0]}x{config.input_size[1]} on the device "
        f"({(train_images.nbytes + targets.nbytes) / 2**30:.1f} GiB) in {time.perf_counter() - started:.0f}s",
        flush=True,
    )

    flops = 3 * conv_flops(build_for_flops(config))  # forward + backward (about twice the forward)
    precision, batch = precisions[0], batches[0]
    trainer = Trainer(config, precision, batch, quality_steps)
    print(
        f"\ninitial weights: {trainer.loaded or 'scratch (no converted person features found)'}", flush=True
    )
    order = epoch_order(n_images, batch, quality_steps, seed=0)
    warmup = quality_steps // 10 if trainer.loaded else 0
    started = time.perf_counter()
    losses = trainer.run(images_dev, targets_dev, order[: 2 * batch], warmup=warmup)  # compiles
    jax.block_until_ready(trainer.state)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    losses += trainer.run(images_dev, targets_dev, order[2 * batch :], warmup=warmup - 2)
    jax.block_until_ready(trainer.state)
    steady_s = time.perf_counter() - started
    speeds = {(precision, batch): ((quality_steps - 2) * batch / steady_s, compile_s)}
    quality = held_out_quality(trainer, config, sets)
    for other_precision in precisions:
        for other_batch in batches:
            if (other_precision, other_batch) not in speeds:
                speeds[(other_precision, other_batch)] = speed(
                    config, other_precision, other_batch, images_dev, targets_dev, speed_steps
                )

    print(f"\n{'precision':16}{'batch':>6}{'images/s':>10}{'TFLOP/s':>9}{'compile s':>11}")
    for (p, b), (per_s, comp_s) in speeds.items():
        print(f"{p:16}{b:>6}{per_s:>10.0f}{per_s * flops / 1e12:>9.1f}{comp_s:>11.0f}")
    print(f"({flops / 1e9:.1f} training GFLOP per image: 3x the convolutions' forward pass)")
    print(
        f"\nquality budget: {quality_steps} steps of {batch} "
        f"({quality_steps * batch / n_images:.1f} epochs), {precision}, in {compile_s + steady_s:.0f}s incl. "
        f"compile; loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f}"
    )
    shown = {k: quality.get(k) for k in ("ap50", "mr2_reasonable", "precision", "recall", "f1", "ap")}
    print(
        f"held-out (seed {HELD_OUT_SEED}, 512 scenes), threshold {quality['threshold']:.3f} chosen on seed "
        f"{VAL_SEED}: " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in shown.items())
    )
    ok = np.isfinite(losses).all() and np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    print("gpu-check " + ("OK" if ok else "FAILED: the loss did not fall"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
