"""Registering a trained model with its evaluation: never one without the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.errors import ModelError
from modelopsx.gate.evidence import EvidenceError
from modelopsx.model.layout import EVALUATION_JSON
from modelopsx.registry.models import register_evaluated_model
from modelopsx.registry.records import Lineage
from modelopsx.storage.base import ObjectStore


def test_a_model_without_its_evaluation_is_never_registered(tmp_path: Path) -> None:
    def no_store() -> ObjectStore:
        raise AssertionError("nothing may be pushed without the evidence")

    model, evaluation = tmp_path / "model", tmp_path / "evaluation"
    model.mkdir()
    evaluation.mkdir()
    (model / "model.json").write_text(json.dumps({"initial_weights": "imagenet"}))
    with pytest.raises(EvidenceError, match="evaluation.json does not exist"):
        register_evaluated_model(no_store, "det", model, evaluation, Lineage())
    (evaluation / EVALUATION_JSON).write_text(json.dumps({"metrics": {"f1": 0.5}}))
    (model / "model.json").unlink()
    with pytest.raises(ModelError, match="model.json does not exist"):
        register_evaluated_model(no_store, "det", model, evaluation, Lineage())
