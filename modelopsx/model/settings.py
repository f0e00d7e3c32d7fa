"""Training settings as pipelines and sweeps give them: a preset, named parameters, then overrides.

Named pipeline parameters left at 0 or empty (what the KFP UI shows for "not set") keep the preset's value;
overrides (`train_overrides`, a sweep trial) set any TrainConfig field as given.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelopsx.errors import ModelError
from modelopsx.model.config import TrainConfig, keep_weights_that_fit

# Named settings a pipeline (and a sweep trial) may set, besides any TrainConfig field.
NAMED_SETTINGS = (
    "backbone",
    "input_height",
    "input_width",
    "epochs",
    "batch_size",
    "learning_rate",
    "weights",
    "seed",
)
# Named parameters at these values keep the preset's value (the KFP UI shows 0 / empty).
UNSET = (None, "", 0, 0.0)
PRESETS = ("default", "local", "cpu")


def preset_config(preset: str) -> TrainConfig:
    """The model's own presets: "default" (GPU), "local" (quick CPU run), "cpu" (longer CPU run)."""
    makers = {
        "default": TrainConfig.gpu_default,
        "local": TrainConfig.local_default,
        "cpu": TrainConfig.cpu_default,
    }
    if preset not in makers:
        raise ModelError(f"unknown training preset {preset!r}", hint=f"use one of: {', '.join(PRESETS)}")
    return makers[preset]()


def train_config(
    params: dict[str, Any], overrides: dict[str, Any] | None = None, preset: str = "default"
) -> TrainConfig:
    """A TrainConfig: the preset, then the named pipeline parameters that are set (not 0 / empty), then
    `overrides` (train_overrides and a sweep trial: any TrainConfig field, applied as given).

    weights: "" keeps the preset's, "none" trains from random initialisation.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = dict(overrides or {})
    unknown = sorted(k for k in {**params, **overrides} if k not in fields and k not in NAMED_SETTINGS)
    if unknown:
        raise ModelError(
            f"unknown training setting(s): {', '.join(unknown)}",
            hint=f"valid settings: {', '.join(sorted(fields | set(NAMED_SETTINGS)))}",
        )
    values = preset_config(preset).to_json()
    chosen = {k: v for k, v in params.items() if v not in UNSET}
    chosen.update(overrides)
    chosen = keep_weights_that_fit(values, chosen)
    height, width = values["input_size"]
    for key, value in chosen.items():
        if key == "input_height":
            height = value
        elif key == "input_width":
            width = value
        elif key == "weights" and isinstance(value, str) and value.lower() == "none":
            values["weights"] = None
        else:
            values[key] = value
    values["input_size"] = [height, width]
    # KFP carries numbers in dict/list parameters as floats: give integer fields their integers back.
    int_fields = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "int | None")}
    for key in int_fields & set(values):
        if isinstance(values[key], float) and values[key].is_integer():
            values[key] = int(values[key])
    values["input_size"] = [int(v) for v in values["input_size"]]
    return TrainConfig.from_json(values)
