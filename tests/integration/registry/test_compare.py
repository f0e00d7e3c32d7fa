"""Fair comparison: the champion is re-evaluated when its metrics come from another test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.synth import generate_synthetic
from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.gate import GatePolicy
from modelopsx.registry.champion import promote_model
from modelopsx.registry.compare import compare_with_champion
from modelopsx.registry.log import Registry
from modelopsx.registry.models import register_model
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir


def detections_for(test_dir: Path, keep_every: int) -> list[dict[str, Any]]:
    """Perfect boxes for every `keep_every`-th pedestrian (1 = all of them)."""
    ds = load_dataset(test_dir)
    boxes = [b for b in ds.annotations if not (b.ignore or b.iscrowd)]
    return [
        {"image_id": b.image_id, "category_id": 1, "bbox": list(b.bbox), "score": 0.9}
        for i, b in enumerate(boxes)
        if i % keep_every == 0
    ]


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(
        tmp_path_factory.mktemp("split") / "test", n_images=12, seed=3, size=(128, 96)
    ).root


def register_champion(
    registry: Registry, tmp_path: Path, detections: list[dict[str, Any]], split: str
) -> None:
    """A champion whose "model" is a detections file, scored by the test's predict hook."""
    model_dir = fake_model_dir(tmp_path, 1)
    (model_dir / "detections.json").write_text(json.dumps(detections))
    register_model(
        registry,
        "det",
        model_dir,
        registry.store,
        {"accuracy": 1.0, "precision": 1.0, "recall": 1.0},
        test_split_hash=split,
        score_threshold=0.5,
    )
    promote_model(registry, "det", 1, "first")


def test_champion_from_another_split_is_reevaluated(store_url: str, test_dir: Path, tmp_path: Path) -> None:
    registry = Registry(open_store(store_url))
    register_champion(registry, tmp_path, detections_for(test_dir, 1), split="old-split")
    calls: list[Path] = []

    def predict(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
        calls.append(dataset_dir)
        return json.loads((model_dir / "detections.json").read_text())

    candidate = evaluate_detections(test_dir, detections_for(test_dir, 2), score_threshold=0.5).metrics
    decision = compare_with_champion(
        registry,
        "det",
        candidate,
        test_dir,
        "new-split",
        predict=predict,
        candidate_info={"model_version": 2},
    )
    assert calls == [test_dir]  # re-run on the current test split
    assert decision.decision == "keep"  # the champion finds every pedestrian, the candidate half
    assert decision.champion is not None and decision.champion["reevaluated"] is True
    assert decision.champion["champion_evaluated_on"] == "old-split"
    assert decision.champion_metrics is not None and decision.champion_metrics["recall"] == pytest.approx(1.0)
    stored = registry.records("evaluations", "det")
    assert [(r["model_version"], r["test_split_hash"]) for r in stored] == [(1, "new-split")]

    again = compare_with_champion(registry, "det", candidate, test_dir, "new-split", predict=predict)
    assert len(calls) == 1 and again.champion is not None  # the stored evaluation is reused
    assert again.champion["metrics_source"] == "evaluation record 1"

    same = compare_with_champion(
        registry,
        "det",
        {"accuracy": 1.0, "precision": 1.0, "recall": 1.0},
        test_dir,
        "old-split",
        predict=predict,
    )
    assert len(calls) == 1 and same.decision == "keep"  # same split: the model record's metrics, a tie
    assert same.champion is not None and same.champion["metrics_source"] == "model record"


def test_significance_through_compare(tmp_path: Path, test_dir: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    register_champion(registry, tmp_path, detections_for(test_dir, 3), split="s")
    better = detections_for(test_dir, 1)
    candidate = evaluate_detections(test_dir, better, score_threshold=0.5).metrics
    policy = GatePolicy.from_dict(
        {"metrics": {"recall": {"change": {}}}, "significance": {"metric": "recall", "n_resamples": 200}}
    )

    def predict(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
        return json.loads((model_dir / "detections.json").read_text())

    decision = compare_with_champion(
        registry,
        "det",
        candidate,
        test_dir,
        "s",
        policy,
        predict=predict,
        candidate_detections=better,
        candidate_score_threshold=0.5,
    )
    assert decision.decision == "promote", decision.reason
    sig = next(c for c in decision.checks if c.kind == "significance")
    assert sig.interval is not None and sig.interval[0] > 0
    no_detections = compare_with_champion(registry, "det", candidate, test_dir, "s", policy, predict=predict)
    assert no_detections.decision == "keep" and "no paired bootstrap" in no_detections.reason


def test_no_champion_compares_on_value_thresholds(tmp_path: Path, test_dir: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    policy = GatePolicy.from_dict({"metrics": {"recall": {"value": {"lower_bound": 0.9}}}})
    decision = compare_with_champion(registry, "det", {"recall": 0.95}, test_dir, "s", policy)
    assert decision.decision == "promote" and decision.champion is None


@pytest.mark.slow
def test_reevaluation_runs_the_model_areas_predict_dataset(tmp_path: Path, test_dir: Path) -> None:
    """The default path pulls the champion's MODEL_DIR and runs predict_dataset (an untrained tiny model)."""
    import keras

    from modelopsx.model.config import TrainConfig
    from modelopsx.model.detector import build_detector

    config = TrainConfig(input_size=(64, 96), alpha=0.35, weights=None, neck_channels=16, head_channels=16)
    model, _, _ = build_detector(config, imagenet=False)
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    model.save(model_dir / "model.keras")
    (model_dir / "model.json").write_text(json.dumps({"params": config.to_json(), "score_threshold": 0.5}))
    keras.backend.clear_session()

    registry = Registry(open_store(str(tmp_path / "store")))
    register_model(registry, "det", model_dir, registry.store, {"recall": 0.0}, test_split_hash="old")
    promote_model(registry, "det", 1, "first")
    decision = compare_with_champion(
        registry, "det", {"accuracy": 1.0, "precision": 1.0, "recall": 1.0}, test_dir, "new"
    )
    assert decision.champion is not None and decision.champion["reevaluated"] is True
    evaluation = registry.latest("evaluations", "det")
    assert evaluation is not None and evaluation["test_split_hash"] == "new"
    assert set(evaluation["metrics"]) >= {"accuracy", "precision", "recall", "ap50"}
