"""Shared by the registry tests: model directories in the MODEL_DIR layout and serving-store checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from modelopsx.storage.base import ObjectStore

SAVED_MODEL_FILES = (
    "fingerprint.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
    "assets/vocab.txt",
)


def fake_model_dir(root: Path, seed: int, score_threshold: float = 0.5) -> Path:
    """A MODEL_DIR whose SavedModel files hold seed-specific bytes (deploy only copies bytes)."""
    model_dir = root / f"model-{seed}"
    saved = model_dir / "saved_model"
    for rel in (*SAVED_MODEL_FILES, "saved_model.pb"):
        path = saved / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(hashlib.sha256(f"{seed}:{rel}".encode()).digest() * (4 + seed % 3))
    (model_dir / "model.json").write_text(
        json.dumps({"backbone": "test", "score_threshold": score_threshold, "params": {"seed": seed}})
    )
    return model_dir


def real_model_dir(root: Path, scale: float) -> Path:
    """A MODEL_DIR with a real (tiny) TF SavedModel, loadable by tf.saved_model.load."""
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.fill([64, 64], scale))

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.matmul(x, self.w)

    model_dir = root / f"real-{scale}"
    tf.saved_model.save(Scale(), str(model_dir / "saved_model"))
    (model_dir / "model.json").write_text(json.dumps({"backbone": "test", "score_threshold": 0.5}))
    return model_dir


def serving_files(store: ObjectStore, model_name: str, version: int) -> dict[str, bytes]:
    prefix = f"{model_name}/{version}/"
    return {i.key[len(prefix) :]: store.get(i.key) for i in store.iter_all(prefix)}


def source_files(model_dir: Path) -> dict[str, bytes]:
    saved = model_dir / "saved_model"
    return {p.relative_to(saved).as_posix(): p.read_bytes() for p in saved.rglob("*") if p.is_file()}
