"""A tiny synthetic split and one tiny trained model, shared by this folder's tests (session-scoped: the
training runs once per test process; under `pytest -n 2 --dist loadgroup` the tests that use it carry
TINY_MODEL_GROUP, so they land on one worker and only that worker trains it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelopsx.model.config import TrainConfig

TINY_SIZE = (128, 192)  # (height, width) of both the images and the model input
# The xdist group of every test that uses `tiny_model`.
TINY_MODEL_GROUP = pytest.mark.xdist_group("tiny-model")


def tiny_config(**changes: object) -> TrainConfig:
    base = TrainConfig(
        input_size=TINY_SIZE,
        alpha=0.35,
        output_stride=4,
        neck_channels=24,
        head_channels=24,
        epochs=4,
        steps_per_epoch=12,
        batch_size=4,
        learning_rate=6e-3,
        weights=None,
        augment=False,
        patience=100,
        lr_warmup_steps=6,
        bn_momentum=0.8,
        seed=0,
    )
    return base.replace(**changes)


def make_tiny_split(root: Path, n_images: int = 8) -> Path:
    """train/ and val/ hold the same few images (the test is about fitting them); test/ too."""
    from modelopsx.data.synth import generate_synthetic

    source = root / "source"
    generate_synthetic(source, n_images, seed=3, size=(TINY_SIZE[1], TINY_SIZE[0]))
    split = root / "split"
    for name in ("train", "val", "test"):
        shutil.copytree(source, split / name)
    return split


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_split(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_model(tiny_split: Path, tmp_path_factory: pytest.TempPathFactory):
    from modelopsx.model.train import train_model

    out = tmp_path_factory.mktemp("model") / "model"
    return train_model(tiny_split, out, tiny_config(), quiet=True)
