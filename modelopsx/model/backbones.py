"""Keras applications backbones as multi-scale feature extractors (strides 4, 8, 16, 32).

No TensorFlow import here: the same code builds under KERAS_BACKEND=jax (the GPU smoke check).
"""

from __future__ import annotations

import logging
from typing import Any

import keras

from modelopsx.errors import ModelError

log = logging.getLogger(__name__)

OFFLINE_MESSAGE = "no pretrained weights available (offline): training from scratch"
FEATURE_STRIDES = (4, 8, 16, 32)


@keras.saving.register_keras_serializable(package="modelopsx")
class Preprocess(keras.layers.Layer):
    """Maps 0..255 RGB to what each backbone expects (kept in the graph so serving sends raw pixels)."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x: Any) -> Any:
        x = keras.ops.cast(x, self.compute_dtype)
        if self.mode == "tf":  # MobileNetV2: [-1, 1]
            return x / 127.5 - 1.0
        if self.mode == "caffe":  # ResNet50: BGR, ImageNet mean subtracted
            mean = keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=self.compute_dtype)
            return keras.ops.flip(x, axis=-1) - mean
        return x  # EfficientNet rescales inside the network

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


def _application(name: str, input_shape: tuple[int, int, int], alpha: float, weights: str | None) -> Any:
    apps = keras.applications
    if name == "mobilenetv2":
        return apps.MobileNetV2(input_shape=input_shape, alpha=alpha, include_top=False, weights=weights)
    if name == "mobilenet":  # v1: no expanded layers at high resolution, the fastest per image on CPU
        return apps.MobileNet(input_shape=input_shape, alpha=alpha, include_top=False, weights=weights)
    if name == "efficientnetb0":
        return apps.EfficientNetB0(input_shape=input_shape, include_top=False, weights=weights)
    if name == "resnet50":
        return apps.ResNet50(input_shape=input_shape, include_top=False, weights=weights)
    raise ModelError(
        f"unknown backbone {name!r}", hint="choose mobilenetv2, mobilenet, efficientnetb0 or resnet50"
    )


PREPROCESS_MODE = {"mobilenetv2": "tf", "mobilenet": "tf", "efficientnetb0": "none", "resnet50": "caffe"}


def build_application(
    name: str, input_shape: tuple[int, int, int], alpha: float, imagenet: bool
) -> tuple[Any, bool]:
    """The keras.applications network, with ImageNet weights when they can be had.

    Returns (model, pretrained)."""
    if imagenet:
        try:
            return _application(name, input_shape, alpha, "imagenet"), True
        except ValueError as exc:  # e.g. an alpha without published weights
            log.warning("no pretrained weights for %s (%s): training from scratch", name, exc)
        except Exception:  # offline: the download fails (URLError, HTTP errors, ...)
            log.warning(OFFLINE_MESSAGE)
    return _application(name, input_shape, alpha, None), False


def feature_extractor(base: Any, input_shape: tuple[int, int, int]) -> Any:
    """A model returning the last feature map at each stride 4..32, found by output shape (any backbone)."""
    height = input_shape[0]
    picked: dict[int, Any] = {}
    for layer in base.layers[1:]:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None:
            continue
        for stride in FEATURE_STRIDES:
            if shape[1] * stride == height and shape[2] * stride == input_shape[1]:
                picked[stride] = layer.output  # keep the last one at this stride
    missing = [s for s in FEATURE_STRIDES if s not in picked]
    if missing:
        raise ModelError(f"backbone {base.name} has no feature map at stride(s) {missing}")
    return keras.Model(base.inputs, [picked[s] for s in FEATURE_STRIDES], name="backbone")


def set_bn_momentum(model: Any, momentum: float) -> int:
    """Lower BatchNorm momentum so moving statistics converge within a short run; returns the layer count."""
    count = 0
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            count += 1
    return count


def walk_layers(model: Any) -> list[Any]:
    """Every layer of a model, nested models' layers included."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(walk_layers(layer))
    return out
