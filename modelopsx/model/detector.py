"""CenterNet-style pedestrian detector: backbone -> small FPN neck -> heatmap / size / offset heads.

Written with keras layers and keras.ops only (no TensorFlow import), so it also builds under
KERAS_BACKEND=jax. The output is one float32 tensor [B, H/s, W/s, 5]: heatmap logit, log box width and height
(in output cells) and the sub-cell center offset (x, y).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import keras

from modelopsx.model.backbones import (
    PREPROCESS_MODE,
    Preprocess,
    build_application,
    feature_extractor,
    set_bn_momentum,
)
from modelopsx.model.config import TrainConfig
from modelopsx.model.pretrained import SOURCE_NAME as PERSON_SOURCE
from modelopsx.model.pretrained import check_fits, is_source

log = logging.getLogger(__name__)

HEATMAP_PRIOR = 0.01  # initial foreground probability: keeps the focal loss stable at the start
OUTPUT_CHANNELS = 5
layers = keras.layers


def _conv_bn_relu(x: Any, channels: int, name: str, separable: bool = True) -> Any:
    if separable:
        x = layers.SeparableConv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_sep")(x)
    else:
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _neck(features: list[Any], channels: int, output_stride: int) -> Any:
    """Top-down feature pyramid from stride 32 down to the output stride (4 or 8)."""
    c4, c8, c16, c32 = features
    by_stride = {4: c4, 8: c8, 16: c16}
    x = _conv_bn_relu(c32, channels, "lat32", separable=False)
    stride = 32
    while stride > output_stride:
        stride //= 2
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{stride}")(x)
        lateral = _conv_bn_relu(by_stride[stride], channels, f"lat{stride}", separable=False)
        x = layers.Add(name=f"merge{stride}")([x, lateral])
        x = _conv_bn_relu(x, channels, f"smooth{stride}")
    return x


def _head(x: Any, channels: int, out: int, name: str, bias: float = 0.0) -> Any:
    x = _conv_bn_relu(x, channels, f"{name}_head")
    return layers.Conv2D(
        out, 1, name=f"{name}_out", dtype="float32", bias_initializer=keras.initializers.Constant(bias)
    )(x)


def build_detector(config: TrainConfig, imagenet: bool | None = None) -> tuple[Any, Any, str]:
    """Build the detector. Returns (model, backbone, loaded): `loaded` names the pretrained backbone weights
    that were loaded ("imagenet", or the converted person features' label), "" when none were.

    `imagenet` (default: whether config.weights asks for a built-in source) False builds without any."""
    height, width = config.input_size
    shape = (height, width, 3)
    wanted = builtin_source(config.weights) if imagenet is None or imagenet else None
    base, loaded = build_application(config.backbone, shape, config.alpha, wanted == "imagenet")
    pretrained = "imagenet" if loaded else ""
    if wanted == PERSON_SOURCE:
        pretrained = load_person_features(base, config)
    backbone = feature_extractor(base, shape)
    if not pretrained:
        set_bn_momentum(backbone, config.bn_momentum)

    inputs = keras.Input(shape=shape, name="image")
    x = Preprocess(PREPROCESS_MODE[config.backbone], name="preprocess")(inputs)
    features = backbone(x)
    neck = _neck(list(features), config.neck_channels, config.output_stride)
    prior_bias = -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR)
    heat = _head(neck, config.head_channels, 1, "heatmap", bias=prior_bias)
    size = _head(neck, config.head_channels, 2, "size")
    offset = layers.Conv2D(2, 1, name="offset_out", dtype="float32")(neck)
    outputs = layers.Concatenate(name="detections", dtype="float32")([heat, size, offset])
    model = keras.Model(inputs, outputs, name=f"centernet_{config.backbone}")
    set_bn_momentum_outside_backbone(model, config.bn_momentum)
    return model, backbone, pretrained


def builtin_source(weights: str | None) -> str | None:
    """ "imagenet" or the converted person features when `weights` names one; None for files, keys, none."""
    if weights == "imagenet":
        return "imagenet"
    return PERSON_SOURCE if is_source(weights) else None


def load_person_features(base: Any, config: TrainConfig) -> str:
    """Load the converted person features into the backbone; a missing or tampered weights package is a
    logged fallback to random initialisation (returns ""), as an offline ImageNet download is."""
    from modelopsx.errors import ModelError
    from modelopsx.model.pretrained import load_into

    check_fits(config.backbone, config.alpha)  # asked for the wrong architecture: an error, not a fallback
    try:
        return load_into(base).label
    except ModelError as exc:
        log.warning("no %s weights (%s): training from scratch", PERSON_SOURCE, exc)
        return ""


def set_bn_momentum_outside_backbone(model: Any, momentum: float) -> None:
    """The neck and heads are always trained from scratch: give their BatchNorm the short-run momentum."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def output_shape(config: TrainConfig) -> tuple[int, int]:
    return config.input_size[0] // config.output_stride, config.input_size[1] // config.output_stride
