import keras
import numpy as np
import pytest

from modelopsx.errors import ModelError
from modelopsx.model.backbones import OFFLINE_MESSAGE
from modelopsx.model.config import TrainConfig
from modelopsx.model.detector import build_detector, output_shape
from modelopsx.model.weights import load_initial_weights

TINY = {"input_size": (64, 96), "neck_channels": 8, "head_channels": 8, "weights": None}


@pytest.mark.parametrize("backbone", ["mobilenetv2", "mobilenet", "efficientnetb0", "resnet50"])
def test_model_builds_for_each_backbone(backbone: str) -> None:
    config = TrainConfig(backbone=backbone, alpha=0.35, **TINY)
    model, backbone_model, pretrained = build_detector(config)
    assert not pretrained
    out = model(np.zeros((1, 64, 96, 3), np.float32), training=False)
    assert tuple(out.shape) == (1, *output_shape(config), 5)
    assert np.isfinite(np.asarray(out)).all()
    assert backbone_model.name == "backbone"


def test_random_init_lowers_batchnorm_momentum() -> None:
    model, _, _ = build_detector(TrainConfig(alpha=0.35, **TINY))
    momenta = {
        layer.momentum for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.9}


def test_imagenet_offline_falls_back_to_random_init(caplog: pytest.LogCaptureFixture) -> None:
    config = TrainConfig(alpha=0.35, **{**TINY, "weights": "imagenet"})
    _, _, pretrained = build_detector(config)
    if pretrained:
        pytest.skip("ImageNet weights are reachable here")
    assert OFFLINE_MESSAGE in caplog.text


def test_weights_file_that_does_not_fit_raises_model_error(tmp_path) -> None:
    small, _, _ = build_detector(TrainConfig(alpha=0.35, **TINY))
    path = tmp_path / "small.weights.h5"
    small.save_weights(path)
    other, other_backbone, _ = build_detector(TrainConfig(alpha=0.5, **TINY))
    with pytest.raises(ModelError, match="do not fit"):
        load_initial_weights(other, other_backbone, str(path))
    garbage = tmp_path / "junk.weights.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ModelError):
        load_initial_weights(other, other_backbone, str(garbage))
    with pytest.raises(ModelError, match="not found"):
        load_initial_weights(other, other_backbone, str(tmp_path / "missing.weights.h5"))


def test_matching_weights_file_loads(tmp_path) -> None:
    source, _, _ = build_detector(TrainConfig(alpha=0.35, **TINY))
    path = tmp_path / "det.weights.h5"
    source.save_weights(path)
    target, target_backbone, _ = build_detector(TrainConfig(alpha=0.35, **TINY))
    assert load_initial_weights(target, target_backbone, str(path))
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(target(x)), np.asarray(source(x)), atol=1e-5)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
