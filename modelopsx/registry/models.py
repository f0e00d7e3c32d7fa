"""Register trained models and their evaluations (the records the gate and the champion read)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelopsx.errors import ModelError
from modelopsx.gate.evidence import EvidenceError
from modelopsx.model.layout import read_evaluation_json, read_model_json
from modelopsx.registry.log import Registry
from modelopsx.registry.records import EvaluationRecord, Lineage, ModelRecord
from modelopsx.storage.base import ObjectStore

# What model.json says about how the model was trained, copied into its registry record.
TRAINING_FACTS = ("initial_weights", "epochs_run", "time_limit_hit", "train_seconds", "pretrained")


def model_file_cids(model_dir: Path) -> dict[str, str]:
    """CID of every file in MODEL_DIR, by relative path."""
    from modelopsx.storage.cid import cid_of_file

    root = Path(model_dir)
    return {p.relative_to(root).as_posix(): cid_of_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def register_model(
    registry: Registry,
    model_name: str,
    model_dir: Path,
    store: ObjectStore,
    metrics: dict[str, float | None],
    *,
    parameters: dict[str, Any] | None = None,
    score_threshold: float | None = None,
    test_split_hash: str | None = None,
    lineage: Lineage | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """Push MODEL_DIR to `store` in DVC layout and append a models record; returns it ("seq" = "version").

    parameters and score_threshold default to what MODEL_DIR/model.json records.
    """
    from modelopsx.data.paths import check_links_inside
    from modelopsx.storage.dvc_remote import push_directory

    check_links_inside(Path(model_dir), f"model folder {model_dir}", ModelError)  # before a byte is pushed
    model_json = read_model_json(model_dir)
    dvc_hash = push_directory(Path(model_dir), store, quiet=quiet)
    if score_threshold is None and isinstance(model_json.get("score_threshold"), int | float):
        score_threshold = float(model_json["score_threshold"])
    record = ModelRecord(
        dvc_hash=dvc_hash,
        dvc_remote=store.url,
        cids=model_file_cids(model_dir),
        parameters=parameters if parameters is not None else dict(model_json.get("params") or {}),
        metrics=dict(metrics),
        score_threshold=score_threshold,
        test_split_hash=test_split_hash,
        lineage=lineage or Lineage(),
        training={k: model_json[k] for k in TRAINING_FACTS if k in model_json},
    ).to_dict()
    seq = registry.append("models", model_name, record, seq_fields=("version",))
    return registry.get("models", model_name, seq)


def register_evaluated_model(
    open_store: Callable[[], ObjectStore],
    model_name: str,
    model_dir: Path,
    evaluation_dir: Path,
    lineage: Lineage,
) -> dict[str, Any]:
    """Mirror the model (registered as a new model version) and its evaluation folder (metrics, detections,
    report) to the store `open_store` opens, in DVC's layout. Returns the model record plus
    "evaluation_dvc_hash" and all CIDs. The store is opened only once both folders' facts are read."""
    from modelopsx.storage.dvc_remote import push_directory

    model, evaluation = Path(model_dir), Path(evaluation_dir)
    # Never a model version without its evidence: a missing evaluation.json stops the sync before a push.
    evaluation_json = read_evaluation_json(evaluation, EvidenceError)
    initial_weights = read_model_json(model).get("initial_weights")
    store = open_store()
    evaluation_hash = push_directory(evaluation, store)
    lineage.initial_weights = initial_weights
    record = register_model(
        Registry(store),
        model_name,
        model,
        store,
        evaluation_json["metrics"],
        test_split_hash=evaluation_json.get("test_hash"),
        lineage=lineage,
    )
    return {
        **record,
        "evaluation_dvc_hash": evaluation_hash,
        "cids": {
            **record.get("cids", {}),
            **{f"evaluation/{k}": v for k, v in model_file_cids(evaluation).items()},
        },
    }


def register_evaluation(
    registry: Registry,
    model_name: str,
    model_version: int | None,
    metrics: dict[str, float | None],
    test_split_hash: str | None,
    *,
    undefined: dict[str, str] | None = None,
    score_threshold: float | None = None,
    lineage: Lineage | None = None,
) -> dict[str, Any]:
    record = EvaluationRecord(
        model_name=model_name,
        model_version=model_version,
        test_split_hash=test_split_hash,
        metrics=dict(metrics),
        undefined=dict(undefined or {}),
        score_threshold=score_threshold,
        lineage=lineage or Lineage(),
    ).to_dict()
    seq = registry.append("evaluations", model_name, record)
    return registry.get("evaluations", model_name, seq)


def evaluation_on_split(
    registry: Registry, model_name: str, model_version: int, test_split_hash: str
) -> dict[str, Any] | None:
    """The latest stored evaluation of that model version on that test split, if any."""
    for record in registry.iter_newest("evaluations", model_name):
        if record.get("model_version") == model_version and record.get("test_split_hash") == test_split_hash:
            return record
    return None


def materialize_model(registry: Registry, model_name: str, model_version: int, out_dir: Path) -> Path:
    """Fetch a registered model's MODEL_DIR from its DVC remote into out_dir (verified) and return it."""
    from modelopsx.storage.dvc_remote import pull_directory
    from modelopsx.storage.stores import open_store

    record = registry.get("models", model_name, model_version)
    remote = record.get("dvc_remote")
    store = open_store(remote) if remote else registry.store
    return pull_directory(record["dvc_hash"], store, Path(out_dir))
