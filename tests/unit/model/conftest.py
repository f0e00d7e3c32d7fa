"""A tiny synthetic split and one tiny trained model, shared by this folder's tests (module-scoped: the
training runs once per test module that asks for it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelopsx.model.config import TrainConfig

TINY_SIZE = (128, 192)  # (height, width) of both the images and the model input


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


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_split(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_model(tiny_split: Path, tmp_path_factory: pytest.TempPathFactory):
    from modelopsx.model.train import train_model

    out = tmp_path_factory.mktemp("model") / "model"
    return train_model(tiny_split, out, tiny_config(), quiet=True)
