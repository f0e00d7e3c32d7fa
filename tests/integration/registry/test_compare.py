"""Fair comparison: the champion is re-evaluated when its metrics come from another test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.synth import generate_synthetic
from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.gate.evidence import EvidenceError
from modelopsx.gate.policy import GatePolicy
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


def file_predict(calls: list[Path]) -> Any:
    """Runs a registered "model" whose detections are a file in its MODEL_DIR (the registry pulls it)."""

    def predict(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
        calls.append(dataset_dir)
        return json.loads((model_dir / "detections.json").read_text())

    return predict


def test_champion_is_scored_on_the_current_split_and_recorded_once(
    store_url: str, test_dir: Path, tmp_path: Path
) -> None:
    registry = Registry(open_store(store_url))
    register_champion(registry, tmp_path, detections_for(test_dir, 1), split="old-split")
    calls: list[Path] = []
    half = detections_for(test_dir, 2)
    candidate = evaluate_detections(test_dir, half, score_threshold=0.5).metrics
    decision = compare_with_champion(
        registry,
        "det",
        candidate,
        test_dir,
        "new-split",
        predict=file_predict(calls),
        candidate_detections=half,
        candidate_score_threshold=0.5,
        candidate_info={"model_version": 2},
    )
    assert calls == [test_dir]  # run on the current test split
    assert decision.decision == "keep"  # the champion finds every pedestrian, the candidate half
    assert decision.champion is not None and decision.champion["reevaluated"] is True
    assert decision.champion["champion_evaluated_on"] == "old-split"
    assert decision.champion_metrics is not None and decision.champion_metrics["recall"] == pytest.approx(1.0)
    recall = next(c for c in decision.comparisons if c.metric == "recall")
    assert recall.delta is not None and recall.delta < 0 and recall.high is not None and recall.high < 0
    stored = registry.records("evaluations", "det")
    assert [(r["model_version"], r["test_split_hash"]) for r in stored] == [(1, "new-split")]

    again = compare_with_champion(
        registry, "det", candidate, test_dir, "new-split", predict=file_predict(calls)
    )
    assert len(registry.records("evaluations", "det")) == 1  # recorded once per split
    assert again.champion is not None and again.champion["metrics_source"].endswith("(evaluation record 1)")
    assert again.decision == "keep" and "no paired bootstrap" in again.reason


def test_significance_through_compare(tmp_path: Path, test_dir: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    register_champion(registry, tmp_path, detections_for(test_dir, 3), split="s")
    better = detections_for(test_dir, 1)
    candidate = evaluate_detections(test_dir, better, score_threshold=0.5).metrics
    policy = GatePolicy.from_dict(
        {"metrics": {"recall": {"change": {}}}, "significance": {"metric": "recall", "n_resamples": 200}}
    )
    decision = compare_with_champion(
        registry,
        "det",
        candidate,
        test_dir,
        "s",
        policy,
        predict=file_predict([]),
        candidate_detections=better,
        candidate_score_threshold=0.5,
    )
    assert decision.decision == "promote", decision.reason
    sig = next(c for c in decision.checks if c.kind == "significance")
    assert sig.interval is not None and sig.interval[0] > 0


def test_candidate_is_scored_at_its_own_validation_threshold(tmp_path: Path, test_dir: Path) -> None:
    """The bootstrap once re-picked the candidate's threshold for max F1 on the test images themselves."""
    registry = Registry(open_store(str(tmp_path / "store")))
    register_champion(registry, tmp_path, detections_for(test_dir, 2), split="s")
    # every pedestrian found at 0.9, plus one false positive per image at 0.6
    noisy = detections_for(test_dir, 1) + [
        {"image_id": i.id, "category_id": 1, "bbox": [0, 0, 8, 8], "score": 0.6}
        for i in load_dataset(test_dir).images
    ]
    at_val = evaluate_detections(test_dir, noisy, score_threshold=0.5)  # its validation threshold
    at_test_best = evaluate_detections(test_dir, noisy)  # what max F1 on the test split would pick
    assert at_test_best.metrics["f1"] > at_val.metrics["f1"]
    decision = compare_with_champion(
        registry,
        "det",
        at_val.metrics,
        test_dir,
        "s",
        predict=file_predict([]),
        candidate_detections=noisy,
        candidate_score_threshold=0.5,
    )
    f1 = next(c for c in decision.comparisons if c.metric == "f1")
    assert f1.candidate == pytest.approx(at_val.metrics["f1"])
    assert decision.significance is not None
    assert decision.significance["b"] == pytest.approx(at_val.metrics["f1"])
    with pytest.raises(EvidenceError, match="no usable operating score threshold"):
        compare_with_champion(
            registry,
            "det",
            at_val.metrics,
            test_dir,
            "s",
            predict=file_predict([]),
            candidate_detections=noisy,
        )


def test_unreadable_candidate_detections_are_an_error(tmp_path: Path, test_dir: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    register_champion(registry, tmp_path, detections_for(test_dir, 1), split="s")
    metrics = {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    for content, message in (
        ("", "detections file is empty"),
        ("[{", "not valid JSON"),
        ('{"a": 1}', "expected a JSON list of detections"),
    ):
        bad = tmp_path / "dets.json"
        bad.write_text(content)
        with pytest.raises(EvidenceError, match=message):
            compare_with_champion(
                registry,
                "det",
                metrics,
                test_dir,
                "s",
                candidate_detections=bad,
                candidate_score_threshold=0.5,
            )
    with pytest.raises(EvidenceError, match="detections file not found"):
        compare_with_champion(
            registry, "det", metrics, test_dir, "s", candidate_detections=tmp_path / "no.json",
            candidate_score_threshold=0.5,
        )  # fmt: skip


def test_no_champion_and_no_baseline_compares_on_value_thresholds(tmp_path: Path, test_dir: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    policy = GatePolicy.from_dict(
        {"metrics": {"recall": {"value": {"lower_bound": 0.9}}}, "significance": None, "baseline": "none"}
    )
    decision = compare_with_champion(registry, "det", {"recall": 0.95}, test_dir, "s", policy)
    assert decision.decision == "promote" and decision.champion is None


def test_first_champion_must_beat_the_hog_baseline(tmp_path: Path, test_dir: Path) -> None:
    """With no champion the reference is OpenCV's HOG detector on the same test split, at its threshold chosen
    on validation; its detections are cached per image, so an image goes through HOG once."""
    from modelopsx.registry.baseline import CACHE_PREFIX, hog_detect

    val_dir = generate_synthetic(tmp_path / "val", n_images=8, seed=4, size=(128, 96)).root
    registry = Registry(open_store(str(tmp_path / "store")))
    runs: list[Path] = []

    def counted_hog(path: Path, image_id: int) -> list[dict[str, Any]]:
        runs.append(path)
        return hog_detect(path, image_id)

    nothing_found: list[dict[str, Any]] = []
    weak = evaluate_detections(test_dir, nothing_found, score_threshold=0.5)
    kept = compare_with_champion(
        registry, "det", weak.metrics, test_dir, "s", val_dir=val_dir, baseline_detect=counted_hog,
        candidate_detections=nothing_found, candidate_score_threshold=0.5,
    )  # fmt: skip
    assert kept.decision == "keep" and kept.champion is not None and kept.champion["baseline"] == "hog"
    assert kept.reason.startswith("no champion yet, and the candidate does not beat the HOG baseline")
    assert len(runs) == 8 + 12  # every validation and test image once
    assert len(list(registry.store.iter_all(CACHE_PREFIX))) == 20

    perfect = detections_for(test_dir, 1)
    strong = evaluate_detections(test_dir, perfect, score_threshold=0.5)
    promoted = compare_with_champion(
        registry, "det", strong.metrics, test_dir, "s", val_dir=val_dir, baseline_detect=counted_hog,
        candidate_detections=perfect, candidate_score_threshold=0.5,
    )  # fmt: skip
    assert len(runs) == 20  # every image came from the cache
    f1 = next(c for c in promoted.comparisons if c.metric == "f1")
    assert f1.low is not None and f1.low > 0, promoted.reason
    assert promoted.decision == "promote", promoted.reason
    with_new_images = generate_synthetic(tmp_path / "val2", n_images=10, seed=4, size=(128, 96)).root
    compare_with_champion(
        registry, "det", strong.metrics, test_dir, "s", val_dir=with_new_images, baseline_detect=counted_hog,
        candidate_detections=perfect, candidate_score_threshold=0.5,
    )  # fmt: skip
    assert len(runs) == 22  # a grown split: only its two new images go through HOG


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
        registry, "det", {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}, test_dir, "new"
    )
    assert decision.champion is not None and decision.champion["reevaluated"] is True
    evaluation = registry.latest("evaluations", "det")
    assert evaluation is not None and evaluation["test_split_hash"] == "new"
    assert set(evaluation["metrics"]) >= {"accuracy", "precision", "recall", "ap50"}
