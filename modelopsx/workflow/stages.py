"""The glue each KFP component runs: one function per stage, testable without KFP.

Components (components/*.py) stay thin: they turn typed artifacts into paths, call one function here and copy
the returned metadata onto their output artifacts. Everything that touches Basin reads its endpoint, keys and
store from the MODELOPSX_BASIN_* environment (a Kubernetes Secret on a cluster; the local runner's emulator).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.errors import StorageError, UserError
from modelopsx.model.layout import (
    DETECTIONS_JSON,
    EVALUATION_JSON,
    MODEL_KERAS,
    REPORT_DIR,
    read_model_json,
)
from modelopsx.settings import BASIN_SECRET, BASIN_SECRET_ENV, registry_store_url

if TYPE_CHECKING:
    from modelopsx.model.config import TrainConfig
    from modelopsx.registry.log import Registry
    from modelopsx.registry.records import Lineage
    from modelopsx.registry.warm_start import WarmStart
    from modelopsx.storage.base import ObjectStore

EVALUATION_FILE = EVALUATION_JSON  # the evaluation folder's files (names kept for the components and tests)
DETECTIONS_FILE = DETECTIONS_JSON
SPLIT_NAMES = ("train", "val", "test")

# --------------------------------------------------------------------------------------------- Basin access


def basin_store_url() -> str:
    """The object store (bucket root) that holds DVC objects and the registry: the Basin store unless
    $MODELOPSX_REGISTRY_URL names another, as for every registry command."""
    return registry_store_url()


def open_basin() -> ObjectStore:
    from modelopsx.storage.stores import open_store

    return open_store(basin_store_url())


def open_registry() -> Registry:
    from modelopsx.registry.log import Registry

    return Registry(open_basin())


# ------------------------------------------------------------------------------------------------- ingest


def ingest(dataset_name: str, dataset_version: str, out_dir: str | Path) -> dict[str, Any]:
    """Resolve a dataset version ("latest" included) in the registry, pull it from Basin and validate it."""
    from modelopsx.data.validate import validate_dataset
    from modelopsx.errors import DatasetError
    from modelopsx.registry.datasets import pull_dataset, resolve_dataset

    out = Path(out_dir)
    store = open_basin()
    record = resolve_dataset(open_registry(), dataset_name, dataset_version)
    version = str(record.get("version", record.get("seq")))
    pulled = Path(pull_dataset(store, dataset_name, version, out))
    report = validate_dataset(pulled)
    if not report.ok:
        raise DatasetError(
            f"dataset {dataset_name} v{version} fails validation: "
            + "; ".join(str(e) for e in report.errors[:5]),
            hint="fix the dataset and publish a new version with `modelopsx dataset publish`",
        )
    if pulled.resolve() != out.resolve():  # keep the artifact self-contained at its own path
        _move_contents(pulled, out)
    return {
        "dataset_name": dataset_name,
        "dataset_version": version,
        "dvc_hash": record.get("dvc_hash", ""),
        "content_hash": record.get("content_hash", ""),
        "counts": record.get("counts", {}),
    }


def _move_contents(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        shutil.move(str(child), str(dst / child.name))


# -------------------------------------------------------------------------------------------------- split


def split(src: str | Path, out_dir: str | Path, val: float, test: float, salt: str = "") -> dict[str, Any]:
    """Split by group hash into out/{train,val,test}; the metadata carries per-split hashes."""
    from modelopsx.data.split import split_dataset

    summary = split_dataset(Path(src), Path(out_dir), val=val, test=test, salt=salt)
    meta: dict[str, Any] = {"val_fraction": val, "test_fraction": test, "salt": salt}
    meta.update({f"{name}_hash": h for name, h in summary.get("hashes", {}).items()})
    meta["counts"] = summary.get("counts", {})
    return meta


# ------------------------------------------------------------------------------------------------ augment


def augment(split_dir: str | Path, out_dir: str | Path, copies: int, seed: int) -> dict[str, Any]:
    """Materialize `copies` augmented copies of the train split; val and test pass through untouched."""
    from modelopsx.data.augment import augment_dataset

    src, out = Path(split_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if copies > 0:
        augment_dataset(src / "train", out / "train", copies=copies, seed=seed)
    else:
        _link_tree(src / "train", out / "train")
    for name in ("val", "test"):
        _link_tree(src / name, out / name)
    if (src / "split.json").is_file():
        shutil.copy2(src / "split.json", out / "split.json")
    return {
        "copies": copies,
        "seed": seed,
        **{f"{name}_hash": dataset_version_hash(out / name) for name in SPLIT_NAMES},
    }


def _link_tree(src: Path, dst: Path) -> None:
    """Hardlink a directory tree (copy where links are impossible, e.g. across filesystems)."""

    def link(s: str, d: str) -> None:
        try:
            Path(d).hardlink_to(s)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


# -------------------------------------------------------------------------------------------------- train


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    params: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    preset: str = "default",
    trial: dict[str, Any] | None = None,
    model_name: str = "",
    workers: int = 1,
    placement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on data_dir/train (validated on data_dir/val) into the MODEL_DIR layout at out_dir.

    Settings: the preset, the named parameters that are set, `overrides`, then the sweep `trial`. Unless the
    weights are set explicitly, training warm-starts from `model_name`'s champion (see
    registry.warm_start) when the architecture matches. With `workers` > 1 the training runs as a Kubeflow
    Trainer TrainJob (modelopsx.workflow.trainjob) placed by `placement` (image, accelerator_type,
    accelerator_count); the starting weights are chosen here, once, for all workers."""
    import tempfile

    from modelopsx.model.distributed import parse_worker_count
    from modelopsx.model.settings import UNSET, train_config
    from modelopsx.model.train import TrainResult, train_model

    workers = parse_worker_count(workers)
    settings = {**(overrides or {}), **(trial or {})}
    config = train_config(params, settings, preset)
    explicit = params.get("weights") not in UNSET or "weights" in settings
    with tempfile.TemporaryDirectory(prefix="modelopsx-warm-start-") as tmp:
        label = None
        if model_name and not explicit:
            start = _warm_start(model_name, config, Path(tmp))
            config.weights, label = start.weights, start.label
        if workers > 1:
            _train_on_cluster(Path(data_dir), Path(out_dir), config, label, workers, placement or {})
            result: TrainResult | None = None
        else:
            result = train_model(Path(data_dir), Path(out_dir), config, quiet=False, weights_label=label)
    # Training on this machine hands its model.json back as the result's metadata; a cluster's chief wrote it.
    model_json = result.metadata if result else read_model_json(out_dir)
    meta: dict[str, Any] = {
        "preset": preset,
        "backbone": model_json.get("backbone", config.backbone),
        "input_size": list(model_json.get("input_size", config.input_size)),
        "score_threshold": model_json.get("score_threshold"),
        "train_dataset_hash": model_json.get("train_dataset_hash", ""),
        "initial_weights": model_json.get("initial_weights", result.initial_weights if result else ""),
        "config": _jsonable(config.to_json()),
        "trial": _jsonable(trial or {}),
    }
    history = model_json.get("history") or (result.history if result else [])
    final = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
    meta["training_metrics"] = {k: float(v) for k, v in final.items() if isinstance(v, int | float)}
    return meta


def _train_on_cluster(
    data_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    label: str | None,
    workers: int,
    placement: dict[str, Any],
) -> None:
    """Hand the training to a TrainJob; local starting weights travel through the store as one file."""
    from modelopsx.workflow import trainjob

    weights_file = None
    if config.weights and config.weights not in ("imagenet",) and not config.weights.startswith("basin://"):
        path = Path(config.weights)
        weights_file = path / MODEL_KERAS if path.is_dir() else path
    trainjob.train_on_cluster(
        data_dir,
        out_dir,
        config.to_json(),
        weights_file,
        label,
        workers,
        str(placement.get("image", "")),
        str(placement.get("accelerator_type", "")),
        str(placement.get("accelerator_count", "1")),
        basin_store_url(),
        BASIN_SECRET_ENV,
        BASIN_SECRET,
    )


def _warm_start(model_name: str, config: TrainConfig, into: Path) -> WarmStart:
    """The registry's choice of starting weights, logged; an unreachable registry falls back to the config."""
    from modelopsx.registry.warm_start import WarmStart, choose_warm_start

    try:
        start = choose_warm_start(open_registry(), model_name, config.to_json(), into)
    except UserError as exc:
        start = WarmStart(config.weights, str(config.weights or "scratch"), notes=(exc.message,))
    for note in start.notes:
        print(f"warm start: {note}", flush=True)
    if start.model_version is not None:
        print(f"warm start: training starts from {start.label}", flush=True)
    else:
        print(f"warm start: no registered model fits; weights as configured ({start.label})", flush=True)
    return start


# ----------------------------------------------------------------------------------------------- evaluate


def evaluate(
    model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, title: str = ""
) -> dict[str, Any]:
    """Predict on the test split, score at the model's operating threshold, write evaluation + report.

    out_dir receives evaluation.json (metrics, confusion, test hash), curves.json, detections.json and
    report/.
    """
    from modelopsx.data.format import load_dataset
    from modelopsx.evaluation.bootstrap import bootstrap_intervals
    from modelopsx.evaluation.curves import CURVES_FILE, write_curves
    from modelopsx.evaluation.metrics import evaluate_detections
    from modelopsx.evaluation.report import write_report
    from modelopsx.metric_spec import DEFAULT_CONFIDENCE
    from modelopsx.model.predict import predict_dataset

    model, test_dir, out = Path(model_dir), Path(data_dir) / "test", Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from modelopsx.registry.compare import operating_threshold

    # The threshold chosen on validation; choosing one here, on the test split, would flatter the model.
    threshold = operating_threshold(read_model_json(model).get("score_threshold"), f"the model in {model}")
    detections = predict_dataset(model, test_dir, out_json=out / DETECTIONS_FILE)
    result = evaluate_detections(test_dir, detections, score_threshold=threshold)
    gt = load_dataset(test_dir)
    # Intervals of each metric over resampled test images, so the report says how sure each value is.
    intervals = bootstrap_intervals(
        gt, detections, n_resamples=1000, confidence=DEFAULT_CONFIDENCE, score_threshold=threshold
    )
    write_report(
        result,
        gt,
        detections,
        out / REPORT_DIR,
        title=title or "ModelOpsX evaluation",
        intervals=intervals,
        confidence=DEFAULT_CONFIDENCE,
    )
    record = result.to_json()
    record["intervals"] = {name: list(bounds) for name, bounds in intervals.items()}
    record["test_hash"] = dataset_version_hash(test_dir)
    record["score_threshold"] = result.metrics.get("score_threshold", threshold)
    (out / EVALUATION_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    write_curves(result.curves, out / CURVES_FILE)  # DVC plots data for the registry's git mirror
    return record


# ------------------------------------------------------------------------------------------------ sync


def lineage_from(metadata: dict[str, Any], run_id: str = "") -> Lineage:
    """The registry's Lineage from a dataset artifact's metadata (set by ingest, split and augment)."""
    from modelopsx.registry.records import Lineage

    try:
        version: int | None = int(float(metadata.get("dataset_version") or ""))
    except ValueError:
        version = None
    return Lineage(
        dataset_name=metadata.get("dataset_name") or None,
        dataset_version=version,
        dataset_dvc_hash=metadata.get("dvc_hash") or None,
        dataset_content_hash=metadata.get("content_hash") or None,
        split_hashes={
            name: str(metadata[f"{name}_hash"]) for name in SPLIT_NAMES if metadata.get(f"{name}_hash")
        },
        pipeline_run_id=run_id or None,
    )


def sync_to_basin(
    model_dir: str | Path,
    evaluation_dir: str | Path,
    model_name: str,
    data_metadata: dict[str, Any],
    run_id: str = "",
) -> dict[str, Any]:
    """Mirror the model (registered as a new model version) and its evaluation folder (metrics, detections,
    report) to Basin in DVC's layout. Returns the model record plus "evaluation_dvc_hash" and all CIDs."""
    from modelopsx.registry.models import register_evaluated_model

    return register_evaluated_model(
        open_basin, model_name, Path(model_dir), Path(evaluation_dir), lineage_from(data_metadata, run_id)
    )


# ------------------------------------------------------------------------------------------------ compare


def compare(
    evaluation_dir: str | Path,
    data_dir: str | Path,
    model_name: str,
    model_version: int,
    evaluation_dvc_hash: str,
    gate_policy: str,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Gate the candidate against the champion (or, with none yet, the HOG baseline) on the same test split
    (registry.gating): the decision goes to out_dir and into an "evaluations" record of the candidate;
    evidence that cannot be trusted fails the step and nothing is deployed."""
    from modelopsx.gate.policy import GatePolicy
    from modelopsx.registry.gating import gate_candidate

    registry = open_registry()
    policy = GatePolicy.from_json_string(gate_policy)
    gated = gate_candidate(
        registry,
        Path(evaluation_dir),
        Path(data_dir),
        model_name,
        model_version,
        evaluation_dvc_hash,
        policy,
        Path(out_dir),
    )
    decision = gated.decision
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "markdown": decision.to_markdown(),
        "evaluation_seq": gated.evaluation_seq,
        "model_version": model_version,
        "champion_version": (decision.champion or {}).get("model_version"),
    }


# ------------------------------------------------------------------------------------------------- deploy


def deploy(
    model_dir: str | Path, decision_dir: str | Path, model_name: str, model_version: int, serving_uri: str
) -> dict[str, Any]:
    """Deploy a promote decision (registry.release re-checks it) to <serving_uri>/<model>/<promotion>/."""
    from modelopsx.gate.decision import DECISION_FILE
    from modelopsx.registry.release import deploy_decision

    uri = serving_uri or f"{basin_store_url()}/serving"
    promotion = deploy_decision(
        open_registry(), Path(model_dir), Path(decision_dir) / DECISION_FILE, model_name, model_version, uri
    )
    return {
        "serving_uri": uri,
        "deployed_to": f"{uri.rstrip('/')}/{model_name}/{promotion['seq']}",
        "promotion": int(promotion["seq"]),
        "model_name": model_name,
        "model_version": model_version,
    }


# -------------------------------------------------------------------------------------------------- sweep


def copy_tree(src: str | Path, dst: str | Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


# ------------------------------------------------------------------------------------------------ helpers


def _jsonable(value: Any) -> Any:
    """Tuples to lists and unknown objects to strings, so metadata survives KFP's JSON round trip."""
    return json.loads(json.dumps(value, default=str))


def require_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast with a clear message naming the endpoint when nothing answers there."""
    from modelopsx.netcheck import connect_error, http_host_port

    address = http_host_port(endpoint)
    if address is None:
        raise StorageError(
            f"Basin endpoint {endpoint!r} is not an http(s) URL",
            hint="pass e.g. --basin-endpoint http://127.0.0.1:8014",
        )
    reason = connect_error(*address, timeout=timeout)
    if reason is not None:
        raise StorageError(
            f"Basin endpoint {endpoint} is unreachable ({reason})",
            hint="start the Basin S3 adapter (or `modelopsx basin serve`) or fix the URL",
        )
