"""The model folder's layout and its strict reader: a missing or damaged file is an error, never {}."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.errors import ModelError, UserError
from modelopsx.model import layout


def model_dir(root: Path, meta: object = None) -> Path:
    (root / layout.MODEL_JSON).write_text(json.dumps({"score_threshold": 0.4} if meta is None else meta))
    (root / layout.MODEL_KERAS).write_bytes(b"weights")
    return root


def test_a_model_folder_holds_its_metadata_and_keras_model(tmp_path: Path) -> None:
    assert layout.MODEL_FILES == ("model.json", "model.keras")
    assert layout.missing_model_file(tmp_path) == "model.json" and not layout.is_model_dir(tmp_path)
    model_dir(tmp_path)
    assert layout.is_model_dir(tmp_path) and layout.require_model_dir(tmp_path) == tmp_path
    (tmp_path / layout.MODEL_KERAS).unlink()
    with pytest.raises(ModelError, match=r"not a model directory \(missing model.keras\)") as info:
        layout.require_model_dir(tmp_path)
    assert "modelopsx train" in (info.value.hint or "")


def test_model_json_is_read_strictly(tmp_path: Path) -> None:
    assert layout.read_model_json(model_dir(tmp_path)) == {"score_threshold": 0.4}
    with pytest.raises(ModelError, match="model metadata .*model.json does not exist") as info:
        layout.read_model_json(tmp_path / "elsewhere")
    assert info.value.hint
    (tmp_path / layout.MODEL_JSON).write_text('{"score_threshold": ')
    with pytest.raises(ModelError, match="is not valid JSON"):
        layout.read_model_json(tmp_path)
    (tmp_path / layout.MODEL_JSON).write_text("[1, 2]")
    with pytest.raises(ModelError, match="is not a JSON object"):
        layout.read_model_json(tmp_path)


class Evidence(UserError):
    pass


def test_evaluation_json_needs_its_metrics(tmp_path: Path) -> None:
    with pytest.raises(Evidence, match="evaluation .*evaluation.json does not exist") as info:
        layout.read_evaluation_json(tmp_path, Evidence)
    assert "evaluate step" in (info.value.hint or "")
    (tmp_path / layout.EVALUATION_JSON).write_text("{not json")
    with pytest.raises(ModelError, match="is not valid JSON"):
        layout.read_evaluation_json(tmp_path)
    (tmp_path / layout.EVALUATION_JSON).write_text(json.dumps({"test_hash": "x"}))
    with pytest.raises(Evidence, match="has no metrics object"):
        layout.read_evaluation_json(tmp_path, Evidence)
    (tmp_path / layout.EVALUATION_JSON).write_text(json.dumps({"metrics": {"f1": 0.5}}))
    assert layout.read_evaluation_json(tmp_path)["metrics"] == {"f1": 0.5}
