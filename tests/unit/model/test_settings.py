"""Training settings from pipeline parameters: preset, then named parameters that are set, then overrides."""

from __future__ import annotations

import pytest

from modelopsx.errors import ModelError
from modelopsx.model.config import TrainConfig
from modelopsx.model.settings import train_config


def test_train_config_layers_preset_parameters_overrides() -> None:
    local = TrainConfig.local_default()
    # named parameters at 0 / empty keep the preset's values
    config = train_config({"epochs": 0, "backbone": "", "input_height": 0, "weights": ""}, None, "local")
    assert config == local
    # set ones win, then overrides (a trial included); KFP's floats become integers again
    config = train_config(
        {"epochs": 4, "input_height": 64, "input_width": 96, "weights": "none"},
        {"epochs": 2.0, "neck_channels": 48.0, "learning_rate": 0.01},
        "local",
    )
    assert config.epochs == 2 and isinstance(config.epochs, int)
    assert config.neck_channels == 48 and isinstance(config.neck_channels, int)
    assert config.input_size == (64, 96) and config.weights is None and config.learning_rate == 0.01
    assert config.time_limit_s == local.time_limit_s  # untouched preset fields stay
    with pytest.raises(ModelError, match="unknown training setting"):
        train_config({"epochs": 1, "warp_speed": 9})
    with pytest.raises(ModelError, match="unknown training preset 'fast'"):
        train_config({}, None, "fast")


def test_pipeline_settings_keep_weights_that_fit() -> None:
    # the GPU pipeline's default preset uses the person features; a trial with another width swaps them
    assert train_config({}, None, "default").weights == "ssdlite-person"
    assert train_config({}, {"alpha": 0.5}, "default").weights == "imagenet"
    with pytest.raises(ModelError, match="they fit --backbone mobilenetv2 with --alpha 1 only"):
        train_config({"weights": "ssdlite-person"}, {"alpha": 0.5}, "default")
