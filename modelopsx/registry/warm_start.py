"""Where training starts: the champion's weights when its architecture matches (as TFX warm-starts its
Trainer from the latest blessed model), so training accumulates across runs; before there is a champion, the
latest registered version with that architecture, so the first champion can be earned by accumulated
training; otherwise the configured weights (ImageNet when it can be had, else random initialisation).

Only the starting point changes: the gate still decides on evidence alone. A champion whose files cannot be
fetched is a logged fallback to the next choice, not a failed training: the release path, not training, is
where a missing artifact must stop things.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelopsx.errors import UserError
from modelopsx.registry.log import Registry
from modelopsx.registry.models import materialize_model

log = logging.getLogger(__name__)

# TrainConfig fields that decide the shapes of the detector's weights.
ARCHITECTURE_FIELDS = ("backbone", "alpha", "input_size", "output_stride", "neck_channels", "head_channels")


@dataclass(frozen=True)
class WarmStart:
    weights: str | None  # what TrainConfig.weights becomes: a MODEL_DIR, the configured value, or None
    label: str  # the provenance recorded with the model, e.g. "pedestrian-detector v3 (champion)"
    model_version: int | None = None
    notes: tuple[str, ...] = ()  # why earlier choices were passed over, for the log


def architecture(parameters: dict[str, Any]) -> dict[str, Any]:
    """The architecture part of TrainConfig-style parameters, normalised (input_size as a list)."""
    arch = {name: parameters.get(name) for name in ARCHITECTURE_FIELDS}
    if isinstance(arch["input_size"], list | tuple):
        arch["input_size"] = [int(v) for v in arch["input_size"]]
    return arch


def _source(registry: Registry, model_name: str) -> tuple[dict[str, Any], str] | None:
    """The registered model to start from, and its role: the champion, else the latest version."""
    from modelopsx.registry.champion import champion

    champ = champion(registry, model_name)
    if champ is not None:
        return champ, "champion"
    latest = registry.latest("models", model_name)
    return None if latest is None else (latest, "latest trained version, no champion yet")


def choose_warm_start(
    registry: Registry, model_name: str, config_json: dict[str, Any], into: Path
) -> WarmStart:
    """Pick the starting weights for a training with these settings; a registry model is pulled into `into`.

    `config_json` is TrainConfig.to_json(); its `weights` is the fallback when no registered model fits.
    """
    fallback = config_json.get("weights")
    label = str(fallback) if fallback else "scratch"
    source = _source(registry, model_name)
    if source is None:
        return WarmStart(fallback, label)
    record, role = source
    version = int(record["seq"])
    candidate = f"{model_name} v{version} ({role})"
    if architecture(record.get("parameters") or {}) != architecture(config_json):
        return WarmStart(fallback, label, notes=(f"{candidate} has another architecture than this training",))
    try:
        model_dir = materialize_model(registry, model_name, version, into / f"v{version}")
    except UserError as exc:
        log.warning("warm start: %s could not be fetched (%s); falling back", candidate, exc.message)
        return WarmStart(fallback, label, notes=(f"{candidate} could not be fetched ({exc.message})",))
    return WarmStart(str(model_dir), candidate, version)
