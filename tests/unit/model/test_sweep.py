"""Sweep trials: checked before anything trains, the best picked in the metric's direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.errors import ModelError, PipelineError
from modelopsx.model.sweep import best_trial, validate_trials, validation_metrics


def test_validate_trials_accepts_json_text_and_lists() -> None:
    trials = [{"learning_rate": 0.001}, {"epochs": 3, "alpha": 0.35}]
    assert validate_trials(trials) == trials
    assert validate_trials(json.dumps(trials)) == trials


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ("not json", "trials is not valid JSON"),
        ({"learning_rate": 0.1}, "trials must be a non-empty list"),
        ([{"batch_size": True}], "trials[0].batch_size must be a positive number"),
        ([{"epochs": 2}, {"colour": "red"}], "trials[1] has unknown key(s): colour"),
    ],
)
def test_validate_trials_names_the_problem(trials: object, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        validate_trials(trials)
    assert message in info.value.message
    assert "valid keys" in (info.value.hint or "")


def test_best_trial_respects_metric_direction_and_missing_values() -> None:
    results = [{"f1": 0.5, "mr2_all": 0.4}, {"f1": 0.7, "mr2_all": 0.6}, {"mr2_all": 0.3}]
    assert best_trial(results, "f1") == 1
    assert best_trial(results, "mr2_all") == 2  # a miss rate: lower is better
    assert best_trial(results, "ap") == 0  # undefined everywhere: the first goes on to the gate
    with pytest.raises(PipelineError, match="selection_metric 'F1' is not a metric"):
        best_trial(results, "F1")


def test_trials_are_ranked_on_validation_metrics(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps({"val_metrics": {"f1": 0.4}, "history": []}))
    assert validation_metrics(tmp_path) == {"f1": 0.4}
    with pytest.raises(ModelError, match="model.json does not exist"):
        validation_metrics(tmp_path / "missing")  # a trial without its metadata is not ranked last, it fails
