"""The release stages (compare, deploy) against the Basin emulator, with every way they must refuse.

The kfp.local run covers the happy path slowly; here each failure mode is one call of the stage function a
component runs, and the test checks that nothing was recorded or served when it refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.synth import generate_synthetic
from modelopsx.errors import UserError
from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.registry.champion import champion
from modelopsx.registry.models import register_model
from modelopsx.workflow import stages
from tests.fixtures_basin import start_emulator
from tests.integration.registry.fixtures import set_basin_env
from tests.integration.registry.helpers import fake_model_dir

MODEL = "det"


@pytest.fixture
def basin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = start_emulator(tmp_path / "basin")
    set_basin_env(monkeypatch, emulator.endpoint)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("splits")
    generate_synthetic(root / "val", n_images=8, seed=5, size=(128, 96))
    generate_synthetic(root / "test", n_images=12, seed=6, size=(128, 96))
    return root


def perfect_detections(test_dir: Path) -> list[dict[str, Any]]:
    boxes = [b for b in load_dataset(test_dir).annotations if not (b.ignore or b.iscrowd)]
    return [{"image_id": b.image_id, "category_id": 1, "bbox": list(b.bbox), "score": 0.9} for b in boxes]


def candidate(tmp_path: Path, data_dir: Path, seed: int = 1) -> tuple[Path, int]:
    """A registered model version and its evaluation folder (what train, evaluate and basin_sync leave)."""
    registry = stages.open_registry()
    model_dir = fake_model_dir(tmp_path, seed)
    version = register_model(registry, MODEL, model_dir, registry.store, {})["seq"]
    detections = perfect_detections(data_dir / "test")
    result = evaluate_detections(data_dir / "test", detections, score_threshold=0.5)
    evaluation = tmp_path / f"evaluation-{seed}"
    evaluation.mkdir()
    record = {
        **result.to_json(),
        "test_hash": dataset_version_hash(data_dir / "test"),
        "score_threshold": 0.5,
    }
    (evaluation / stages.EVALUATION_FILE).write_text(json.dumps(record))
    (evaluation / stages.DETECTIONS_FILE).write_text(json.dumps(detections))
    return evaluation, int(version)


def gate(evaluation: Path, data_dir: Path, version: int, out: Path) -> dict[str, Any]:
    return stages.compare(evaluation, data_dir, MODEL, version, "", "", out)


def nothing_released() -> None:
    registry = stages.open_registry()
    assert registry.records("promotions", MODEL) == []
    assert champion(registry, MODEL) is None


def test_first_candidate_beats_hog_then_deploy_rechecks_everything(
    basin: Any, tmp_path: Path, data_dir: Path
) -> None:
    evaluation, version = candidate(tmp_path, data_dir)
    result = gate(evaluation, data_dir, version, tmp_path / "decision")
    assert result["decision"] == "promote", result["reason"]
    decision = json.loads((tmp_path / "decision" / "decision.json").read_text())
    assert decision["champion"]["baseline"] == "hog"
    assert decision["candidate"]["model_dvc_hash"].endswith(".dir")
    assert [c["metric"] for c in decision["comparisons"]] == ["precision", "recall", "f1", "accuracy"]
    model_dir = tmp_path / "model-1"
    serving = str(tmp_path / "serving")

    def refused(decision_dir: Path, message: str, version: int = version, model: Path = model_dir) -> None:
        with pytest.raises(UserError, match=message):
            stages.deploy(model, decision_dir, MODEL, version, serving)
        nothing_released()
        assert not (tmp_path / "serving").exists()

    refused(tmp_path / "no-decision", "gate decision .* does not exist")
    for name, change, message in (
        ("keep", {"decision": "keep", "reason": "not better"}, "is 'keep', not 'promote'"),
        ("other-version", {"candidate": {**decision["candidate"], "model_version": 7}},
         "made for 'det' version 7"),
        ("other-content", {"candidate": {**decision["candidate"], "model_dvc_hash": "0" * 32 + ".dir"}},
         "does not match"),
        ("stale", {"champion": {"model_name": MODEL, "model_version": 5}}, "the decision is stale"),
    ):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "decision.json").write_text(json.dumps({**decision, **change}))
        refused(tmp_path / name, message)
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "decision.json").write_text("{promote")
    refused(tmp_path / "garbled", "not valid JSON")
    refused(tmp_path / "decision", "handed to deploy", model=fake_model_dir(tmp_path / "other", 9))

    deployed = stages.deploy(model_dir, tmp_path / "decision", MODEL, version, serving)
    assert deployed["promotion"] == 1 and (tmp_path / "serving" / MODEL / "1" / "saved_model.pb").is_file()
    again = stages.deploy(model_dir, tmp_path / "decision", MODEL, version, serving)  # a retried step
    assert again["promotion"] == 1 and len(stages.open_registry().records("promotions", MODEL)) == 1


@pytest.mark.parametrize(
    "evaluation_json, message",
    [
        (None, "evaluation .* does not exist"),
        ("{not json", "not valid JSON"),
        ({"metrics": {}}, "missing metric"),
        ({"metrics": {"accuracy": "0.9", "precision": 1, "recall": 1, "f1": 1}}, "must be a number"),
        ({"metrics": {"accuracy": float("nan"), "precision": 1, "recall": 1, "f1": 1}}, "not a finite"),
        ({"metrics": {"accuracy": 1.5, "precision": 1, "recall": 1, "f1": 1}}, "not a finite number in"),
        ({"metrics": {"accuracy": 1, "precision": 1, "recall": 1, "f1": 1}, "test_hash": "x"}, "test split"),
    ],
)
def test_compare_fails_on_evidence_it_cannot_trust(
    basin: Any, tmp_path: Path, data_dir: Path, evaluation_json: Any, message: str
) -> None:
    evaluation, version = candidate(tmp_path, data_dir)
    path = evaluation / stages.EVALUATION_FILE
    if evaluation_json is None:
        path.unlink()
    elif isinstance(evaluation_json, str):
        path.write_text(evaluation_json)
    else:
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, **evaluation_json}))
    with pytest.raises(UserError, match=message):
        gate(evaluation, data_dir, version, tmp_path / "decision")
    assert stages.open_registry().records("evaluations", MODEL) == []
    assert not (tmp_path / "decision" / "decision.json").exists()
    nothing_released()


def test_compare_refuses_missing_or_garbled_detections(basin: Any, tmp_path: Path, data_dir: Path) -> None:
    evaluation, version = candidate(tmp_path, data_dir)
    (evaluation / stages.DETECTIONS_FILE).write_text("")  # a failed predict must not be scored as "none"
    with pytest.raises(UserError, match="detections file is empty"):
        gate(evaluation, data_dir, version, tmp_path / "decision")
    (evaluation / stages.DETECTIONS_FILE).write_text("[{")
    with pytest.raises(UserError, match="not valid JSON"):
        gate(evaluation, data_dir, version, tmp_path / "decision")
    (evaluation / stages.DETECTIONS_FILE).unlink()
    with pytest.raises(UserError, match="detections file not found"):
        gate(evaluation, data_dir, version, tmp_path / "decision")
    nothing_released()


def test_a_hand_edited_keep_decision_deploys_nothing(basin: Any, tmp_path: Path, data_dir: Path) -> None:
    """A real keep (a candidate that finds nobody) edited to promote, candidate and champion fields filled
    in: deploy once promoted it. The verdict must follow from the checks, and the decision must be the one
    compare recorded."""
    evaluation, version = candidate(tmp_path, data_dir)
    missing = [{**d, "bbox": [0.0, 0.0, 2.0, 2.0]} for d in perfect_detections(data_dir / "test")]
    result = evaluate_detections(data_dir / "test", missing, score_threshold=0.5)
    record = {
        **result.to_json(),
        "test_hash": dataset_version_hash(data_dir / "test"),
        "score_threshold": 0.5,
    }
    (evaluation / stages.EVALUATION_FILE).write_text(json.dumps(record))
    (evaluation / stages.DETECTIONS_FILE).write_text(json.dumps(missing))
    assert gate(evaluation, data_dir, version, tmp_path / "decision")["decision"] == "keep"
    kept = json.loads((tmp_path / "decision" / "decision.json").read_text())
    assert kept["candidate"]["model_version"] == version and kept["champion"]["baseline"] == "hog"
    model_dir, serving = tmp_path / "model-1", str(tmp_path / "serving")

    edited = {**kept, "decision": "promote"}
    all_passed = {**edited, "checks": [{**c, "passed": True} for c in kept["checks"]]}
    for name, decision, message in (
        ("edited", edited, "the verdict does not follow from the checks"),
        ("all-passed", all_passed, "no compare step recorded this decision"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "decision.json").write_text(json.dumps(decision))
        with pytest.raises(UserError, match=message):
            stages.deploy(model_dir, tmp_path / name, MODEL, version, serving)
        nothing_released()
        assert not (tmp_path / "serving").exists()
