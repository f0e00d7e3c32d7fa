"""Parameter sweeps: check the trials before anything trains, pick the best trial on validation afterwards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from modelopsx.errors import PipelineError
from modelopsx.metric_spec import LOWER_IS_BETTER, QUALITY_METRICS
from modelopsx.model.config import TrainConfig
from modelopsx.model.layout import read_model_json
from modelopsx.model.settings import NAMED_SETTINGS

# A sweep selects by one of the gate's metrics, in its direction (lower is better for miss rates).
SELECTION_METRICS = QUALITY_METRICS


def validate_trials(trials: Any) -> list[dict[str, Any]]:
    """Check a sweep's `trials` list: a non-empty list of dicts whose keys are known training settings."""
    allowed = set(NAMED_SETTINGS) | {f.name for f in dataclasses.fields(TrainConfig)}
    hint = (
        'trials is a JSON list of objects, e.g. [{"learning_rate": 0.001}, {"learning_rate": 0.0003, '
        '"epochs": 8}]; valid keys: ' + ", ".join(sorted(allowed))
    )
    if isinstance(trials, str):
        try:
            trials = json.loads(trials)
        except json.JSONDecodeError as exc:
            raise PipelineError(
                f"trials is not valid JSON ({exc.msg} at column {exc.colno})", hint=hint
            ) from None
    if not isinstance(trials, list) or not trials:
        raise PipelineError(
            f"trials must be a non-empty list, got {type(trials).__name__}: {trials!r:.80}", hint=hint
        )
    numeric = {"input_height", "input_width", "epochs", "batch_size", "learning_rate", "seed"}
    for index, trial in enumerate(trials):
        if not isinstance(trial, dict) or not trial:
            raise PipelineError(f"trials[{index}] must be a non-empty object, got {trial!r:.80}", hint=hint)
        unknown = sorted(set(trial) - allowed)
        if unknown:
            raise PipelineError(f"trials[{index}] has unknown key(s): {', '.join(unknown)}", hint=hint)
        for key in numeric & set(trial):
            value = trial[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 and key != "seed":
                raise PipelineError(
                    f"trials[{index}].{key} must be a positive number, got {value!r}", hint=hint
                )
    return trials


def check_selection_metric(metric: str) -> str:
    if metric not in SELECTION_METRICS:
        raise PipelineError(
            f"selection_metric {metric!r} is not a metric the evaluation reports",
            hint=f"choose one of: {', '.join(SELECTION_METRICS)}",
        )
    return metric


def best_trial(metrics: list[dict[str, Any]], metric: str) -> int:
    """Index of the best trial by `metric` (lower is better for miss rates); undefined values rank last.

    When no trial defines the metric (e.g. precision without any detection), the first trial goes on: the
    gate then keeps the champion with the reason on record, instead of the sweep failing after training.
    """
    check_selection_metric(metric)
    if not metrics:
        raise PipelineError("the sweep produced no trial results", hint="check the trials list")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    scores = []
    for values in metrics:
        value = values.get(metric)
        scores.append(sign * float(value) if isinstance(value, int | float) else float("-inf"))
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def validation_metrics(model_dir: str | Path) -> dict[str, Any]:
    """The metrics training measured on the validation split (model.json `val_metrics`); a trial whose
    model.json is missing or damaged is a ModelError, not a trial ranked last with no metrics."""
    values = read_model_json(model_dir).get("val_metrics")
    return dict(values) if isinstance(values, dict) else {}
