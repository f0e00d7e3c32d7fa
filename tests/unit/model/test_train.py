"""Training end to end on a tiny synthetic split (CPU, seconds per epoch)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelopsx.errors import ModelError
from tests.unit.model.conftest import TINY_MODEL_GROUP, TINY_SIZE, tiny_config

tf = pytest.importorskip("tensorflow")


def _iou(a: list[float], b: list[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_tiny_model_overfits_and_finds_the_boxes(tiny_model, tiny_split: Path) -> None:
    from modelopsx.data.format import load_dataset
    from modelopsx.model.predict import predict_dataset

    losses = [row["loss"] for row in tiny_model.history]
    assert losses[-1] < 0.3 * losses[0]
    # inference mode (BatchNorm moving statistics), not training mode, must already work
    assert tiny_model.val_metrics["ap50"] > 0.8
    dataset = load_dataset(tiny_split / "train")
    detections = [
        d
        for d in predict_dataset(tiny_model.model_dir, tiny_split / "train")
        if d["score"] >= tiny_model.score_threshold
    ]
    gt = [b for b in dataset.annotations if not b.ignore]
    matched = sum(
        1
        for b in gt
        if any(d["image_id"] == b.image_id and _iou(d["bbox"], b.bbox) >= 0.5 for d in detections)
    )
    assert matched >= 0.8 * len(gt)


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_model_dir_layout_and_metadata(tiny_model) -> None:
    model_dir = tiny_model.model_dir
    assert (model_dir / "saved_model" / "saved_model.pb").is_file()
    assert (model_dir / "model.keras").is_file()
    assert (model_dir / "history.csv").is_file()
    assert any((model_dir / "logs").rglob("events.out.tfevents*"))
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["backbone"] == "mobilenetv2"
    assert meta["input_size"] == list(TINY_SIZE)
    assert 0 < meta["score_threshold"] < 1
    assert meta["params"]["epochs"] == 4 and meta["params"]["seed"] == 0
    assert meta["train_dataset_hash"] and len(meta["history"]) == 4


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_keras_save_load_gives_same_outputs(tiny_model, tmp_path: Path) -> None:
    import keras

    model = keras.models.load_model(tiny_model.model_dir / "model.keras", compile=False)
    x = np.random.default_rng(0).uniform(0, 255, (2, *TINY_SIZE, 3)).astype(np.float32)
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras", compile=False)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_saved_model_signature_answers_on_image_bytes(tiny_model, tiny_split: Path) -> None:
    from modelopsx.model.predict import predict_images

    images = sorted((tiny_split / "train" / "images").iterdir())[:2]
    serving = tf.saved_model.load(str(tiny_model.model_dir / "saved_model")).signatures["serving_default"]
    # a second, larger PNG in the same batch: variable sizes and formats are decoded in the graph
    png = tmp_png = tiny_split.parent / "big.png"
    image = tf.io.decode_jpeg(images[1].read_bytes())
    tf.io.write_file(
        str(tmp_png), tf.io.encode_png(tf.image.resize(image, (256, 384), "nearest").numpy().astype(np.uint8))
    )
    out = serving(images=tf.constant([images[0].read_bytes(), png.read_bytes()]))
    boxes, scores, count = out["boxes"].numpy(), out["scores"].numpy(), out["count"].numpy()
    assert boxes.shape[0] == 2 and boxes.shape[2] == 4 and scores.shape == boxes.shape[:2]
    assert count[0] > 0 and count[1] > 0
    assert boxes[1, :, 2].max() <= 384 and boxes[1, :, 3].max() <= 256  # original pixels of the PNG
    # the serving graph and the Keras predict path agree on the first image
    keras_dets = predict_images(tiny_model.model_dir, [images[0]])
    served = [(b, s) for b, s in zip(boxes[0], scores[0], strict=True) if s >= tiny_model.score_threshold]
    assert len(served) == len(keras_dets)
    for det in keras_dets:
        x, y, w, h = det["bbox"]
        assert np.abs(np.array([b for b, _ in served]) - [x, y, x + w, y + h]).max(axis=1).min() < 1.0


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_predict_on_images_without_people_returns_no_boxes(
    tiny_model, tiny_split: Path, tmp_path: Path
) -> None:
    from modelopsx.data.format import load_dataset
    from modelopsx.model.predict import predict_images

    dataset = load_dataset(tiny_split / "train")
    boxes = dataset.boxes_by_image()
    empty = [dataset.image_path(img) for img in dataset.images if not boxes[img.id]]
    assert empty, "the synthetic generator makes every tenth image person-free"
    gray = tmp_path / "gray.png"
    tf.io.write_file(str(gray), tf.io.encode_png(np.full((*TINY_SIZE, 3), 128, np.uint8)))
    results = predict_images(tiny_model.model_dir, [*empty, gray], out_dir=tmp_path / "drawn")
    assert results == []
    assert len(list((tmp_path / "drawn").glob("*.jpg"))) == len(empty) + 1


@pytest.mark.slow
@TINY_MODEL_GROUP
def test_predict_dataset_writes_coco_results(tiny_model, tiny_split: Path, tmp_path: Path) -> None:
    from modelopsx.model.predict import predict_dataset

    out = tmp_path / "dets.json"
    detections = predict_dataset(tiny_model.model_dir, tiny_split / "test", out_json=out)
    assert json.loads(out.read_text()) == detections
    assert detections and all(
        d["score"] >= 0.01 and d["category_id"] == 1 and len(d["bbox"]) == 4 for d in detections
    )
    assert min(d["score"] for d in detections) < tiny_model.score_threshold  # low floor, not the threshold


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_training_resumes_from_checkpoint_and_skips_unreadable_images(
    tiny_split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    from modelopsx.model import train as train_module

    split = tmp_path / "split"
    shutil.copytree(tiny_split, split)
    broken = sorted((split / "train" / "images").iterdir())[0]
    broken.unlink()
    broken.write_bytes(b"\xff\xd8 truncated")  # a JPEG that cannot be decoded
    config = tiny_config(epochs=2, steps_per_epoch=3)
    out = tmp_path / "model"

    class CrashAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch == 0:
                raise _Crash()

    original = train_module._callbacks

    def with_crash(*args, **kwargs):
        callbacks, checkpoint = original(*args, **kwargs)
        return [*callbacks, CrashAfterFirstEpoch()], checkpoint  # after the checkpoint callbacks

    monkeypatch.setattr(train_module, "_callbacks", with_crash)
    with pytest.raises(_Crash):
        train_module.train_model(split, out, config)
    monkeypatch.undo()
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and not (out / "model.json").exists()

    with pytest.raises(ModelError, match="unfinished"):
        train_module.train_model(split, out, config)
    result = train_module.train_model(split, out, config, resume=True)
    assert [int(row["epoch"]) for row in result.history] == [1, 2]  # the resumed run trained epoch 2 only
    with (out / "history.csv").open() as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1]
    meta = json.loads((out / "model.json").read_text())
    assert meta["skipped_images"] == 1
    with pytest.raises(ModelError, match="already holds a trained model"):
        train_module.train_model(split, out, config)


@pytest.mark.parametrize(
    ("precision", "capabilities", "policy"),
    [
        ("auto", [(9, 0)], "mixed_bfloat16"),  # Hopper: native bf16
        ("auto", [(8, 0), (8, 6)], "mixed_bfloat16"),  # Ampere
        ("auto", [(7, 5)], "mixed_float16"),  # Turing: fp16 with loss scaling
        ("auto", [(9, 0), (7, 0)], "mixed_float16"),  # one older GPU decides for all replicas
        ("auto", [None], "mixed_float16"),  # capability unknown: the safe choice
        ("float32", [(9, 0)], "float32"),  # asked for by name
    ],
)
def test_gpu_precision_follows_the_device(precision: str, capabilities: list, policy: str) -> None:
    from modelopsx.model.train import precision_policy

    assert precision_policy(precision, capabilities) == policy
