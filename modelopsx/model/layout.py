"""What lives in a model folder (MODEL_DIR, the --out of `modelopsx train`) and in the evaluation folder
beside it, the one strict reader of their JSON files, and the atomic writer of those training writes.

A missing or damaged file is an error (ModelError unless the caller names its own type) saying which file
and how to get it back, never an empty value: an empty model.json or evaluation.json would let a caller
register, rank or deploy a model with no facts behind it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelopsx.errors import ModelError, UserError
from modelopsx.jsonfile import read_json

# The model folder, as training exports it.
MODEL_JSON = "model.json"  # metadata: params, score threshold, val metrics, history, lineage facts
MODEL_KERAS = "model.keras"  # the Keras model prediction loads
SAVED_MODEL_DIR = "saved_model"  # the TF SavedModel that deploy copies to serving
HISTORY_CSV = "history.csv"  # per-epoch losses, appended across resumes
CHECKPOINT_DIR = "checkpoints"  # resume state; removed once training finishes
LAST_CHECKPOINT = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE_FILE = "state.json"
MODEL_FILES = (MODEL_JSON, MODEL_KERAS)  # what makes a folder a usable model

# The evaluation folder that the evaluate step writes next to it.
EVALUATION_JSON = "evaluation.json"  # metrics, confusion, intervals, test split hash
DETECTIONS_JSON = "detections.json"
REPORT_DIR = "report"

MODEL_HINT = "pass the --out folder of `modelopsx train` (it holds model.json and model.keras), or re-train"
EVALUATION_HINT = "re-run the evaluate step; its evaluation.json is the candidate's evidence"


def missing_model_file(model_dir: Path | str) -> str | None:
    """The first of MODEL_FILES that `model_dir` lacks; None when it holds them all."""
    return next((name for name in MODEL_FILES if not (Path(model_dir) / name).is_file()), None)


def is_model_dir(model_dir: Path | str) -> bool:
    return missing_model_file(model_dir) is None


def require_model_dir(model_dir: Path | str, hint: str = MODEL_HINT) -> Path:
    """`model_dir` as a Path; ModelError naming the missing file when it is not a model folder."""
    missing = missing_model_file(model_dir)
    if missing is not None:
        raise ModelError(f"{model_dir}: not a model directory (missing {missing})", hint=hint)
    return Path(model_dir)


def read_json_object(path: Path, what: str, error: type[UserError], hint: str) -> dict[str, Any]:
    """The JSON object in `path`; `error` when it is missing, not valid JSON, or not an object."""
    data = read_json(Path(path), what, error, hint)
    if not isinstance(data, dict):
        raise error(f"{what} {path} is not a JSON object", hint=hint)
    return data


def read_model_json(model_dir: Path | str) -> dict[str, Any]:
    """MODEL_DIR/model.json; ModelError when it is missing, damaged or not an object."""
    return read_json_object(Path(model_dir) / MODEL_JSON, "model metadata", ModelError, MODEL_HINT)


def read_evaluation_json(evaluation_dir: Path | str, error: type[UserError] = ModelError) -> dict[str, Any]:
    """EVALUATION_DIR/evaluation.json with its metrics object; `error` when it is missing or has none."""
    path = Path(evaluation_dir) / EVALUATION_JSON
    data = read_json_object(path, "evaluation", error, EVALUATION_HINT)
    if not isinstance(data.get("metrics"), dict):
        raise error(f"evaluation {path} has no metrics object", hint=EVALUATION_HINT)
    return data


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temporary file, then a rename): a crash leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
