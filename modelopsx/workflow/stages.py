"""The glue each KFP component runs: one function per stage, testable without KFP.

Components (components/*.py) stay thin: they turn typed artifacts into paths, call one function here and copy
the returned metadata onto their output artifacts. Everything that touches Basin reads its endpoint, keys and
store from the MODELOPSX_BASIN_* environment (a Kubernetes Secret on a cluster; the local runner's emulator).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.errors import PipelineError, StorageError, UserError
from modelopsx.gate import METRIC_DIRECTIONS, EvidenceError
from modelopsx.settings import BasinSettings

EVALUATION_FILE = "evaluation.json"
DETECTIONS_FILE = "detections.json"
REPORT_DIR = "report"
SPLIT_NAMES = ("train", "val", "test")
# A sweep selects by one of the gate's metrics, in the gate's direction (lower is better for miss rates).
SELECTION_METRICS = tuple(METRIC_DIRECTIONS)
LOWER_IS_BETTER = frozenset(m for m, d in METRIC_DIRECTIONS.items() if d == "lower_is_better")
# Pipeline parameters a sweep trial may set, besides any TrainConfig field.
TRIAL_PARAMETERS = (
    "backbone",
    "input_height",
    "input_width",
    "epochs",
    "batch_size",
    "learning_rate",
    "weights",
    "seed",
)


# --------------------------------------------------------------------------------------------- Basin access


def basin_store_url() -> str:
    """The object store (bucket root) that holds DVC objects and the registry."""
    return f"basin://{BasinSettings.from_env().store}"


def open_basin() -> Any:
    from modelopsx.storage.stores import open_store

    return open_store(basin_store_url())


def open_registry() -> Any:
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


# Named pipeline parameters at these values keep the preset's value (the KFP UI shows 0 / empty).
UNSET = (None, "", 0, 0.0)
PRESETS = ("default", "local", "cpu")


def preset_config(preset: str) -> Any:
    """The model's own presets: "default" (GPU), "local" (quick CPU run), "cpu" (longer CPU run)."""
    from modelopsx.model.config import TrainConfig

    makers = {"default": TrainConfig, "local": TrainConfig.local_default, "cpu": TrainConfig.cpu_default}
    if preset not in makers:
        raise PipelineError(f"unknown training preset {preset!r}", hint=f"use one of: {', '.join(PRESETS)}")
    return makers[preset]()


def train_config(
    params: dict[str, Any], overrides: dict[str, Any] | None = None, preset: str = "default"
) -> Any:
    """A TrainConfig: the preset, then the named pipeline parameters that are set (not 0 / empty), then
    `overrides` (train_overrides and a sweep trial: any TrainConfig field, applied as given).

    weights: "" keeps the preset's, "none" trains from random initialisation.
    """
    from modelopsx.model.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = dict(overrides or {})
    unknown = sorted(k for k in {**params, **overrides} if k not in fields and k not in TRIAL_PARAMETERS)
    if unknown:
        raise PipelineError(
            f"unknown training setting(s): {', '.join(unknown)}",
            hint=f"valid settings: {', '.join(sorted(fields | set(TRIAL_PARAMETERS)))}",
        )
    values = preset_config(preset).to_json()
    chosen = {k: v for k, v in params.items() if v not in UNSET}
    chosen.update(overrides)
    height, width = values["input_size"]
    for key, value in chosen.items():
        if key == "input_height":
            height = value
        elif key == "input_width":
            width = value
        elif key == "weights" and isinstance(value, str) and value.lower() == "none":
            values["weights"] = None
        else:
            values[key] = value
    values["input_size"] = [height, width]
    # KFP carries numbers in dict/list parameters as floats: give integer fields their integers back.
    int_fields = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "int | None")}
    for key in int_fields & set(values):
        if isinstance(values[key], float) and values[key].is_integer():
            values[key] = int(values[key])
    values["input_size"] = [int(v) for v in values["input_size"]]
    return TrainConfig.from_json(values)


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    params: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    preset: str = "default",
    trial: dict[str, Any] | None = None,
    model_name: str = "",
) -> dict[str, Any]:
    """Train on data_dir/train (validated on data_dir/val) into the MODEL_DIR layout at out_dir.

    Settings: the preset, the named parameters that are set, `overrides`, then the sweep `trial`. Unless the
    weights are set explicitly, training warm-starts from `model_name`'s champion (see
    registry.warm_start) when the architecture matches."""
    import tempfile

    from modelopsx.model.train import train_model

    settings = {**(overrides or {}), **(trial or {})}
    config = train_config(params, settings, preset)
    explicit = params.get("weights") not in UNSET or "weights" in settings
    with tempfile.TemporaryDirectory(prefix="modelopsx-warm-start-") as tmp:
        label = None
        if model_name and not explicit:
            start = _warm_start(model_name, config, Path(tmp))
            config.weights, label = start.weights, start.label
        result = train_model(Path(data_dir), Path(out_dir), config, quiet=False, weights_label=label)
    model_json = _read_json(Path(out_dir) / "model.json")
    meta: dict[str, Any] = {
        "preset": preset,
        "backbone": model_json.get("backbone", config.backbone),
        "input_size": list(model_json.get("input_size", config.input_size)),
        "score_threshold": model_json.get("score_threshold"),
        "train_dataset_hash": model_json.get("train_dataset_hash", ""),
        "initial_weights": result.initial_weights,
        "config": _jsonable(config.to_json()),
        "trial": _jsonable(trial or {}),
    }
    history = model_json.get("history") or result.history or []
    final = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
    meta["training_metrics"] = {k: float(v) for k, v in final.items() if isinstance(v, int | float)}
    return meta


def _warm_start(model_name: str, config: Any, into: Path) -> Any:
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
    from modelopsx.evaluation.curves import CURVES_FILE, write_curves
    from modelopsx.evaluation.metrics import evaluate_detections
    from modelopsx.evaluation.report import write_report
    from modelopsx.model.predict import predict_dataset

    model, test_dir, out = Path(model_dir), Path(data_dir) / "test", Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from modelopsx.registry.compare import operating_threshold

    # The threshold chosen on validation; choosing one here, on the test split, would flatter the model.
    threshold = operating_threshold(
        _read_json(model / "model.json").get("score_threshold"), f"the model in {model}"
    )
    detections = predict_dataset(model, test_dir, out_json=out / DETECTIONS_FILE)
    result = evaluate_detections(test_dir, detections, score_threshold=threshold)
    gt = load_dataset(test_dir)
    write_report(result, gt, detections, out / REPORT_DIR, title=title or "ModelOpsX evaluation")
    record = result.to_json()
    record["test_hash"] = dataset_version_hash(test_dir)
    record["score_threshold"] = result.metrics.get("score_threshold", threshold)
    (out / EVALUATION_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    write_curves(result.curves, out / CURVES_FILE)  # DVC plots data for the registry's git mirror
    return record


def confusion_matrix(confusion: dict[str, int]) -> tuple[list[str], list[list[int]]]:
    """Image-level confusion as KFP expects it: rows are the truth, columns the prediction."""
    categories = ["pedestrian", "no pedestrian"]
    tp, fn = int(confusion.get("tp", 0)), int(confusion.get("fn", 0))
    fp, tn = int(confusion.get("fp", 0)), int(confusion.get("tn", 0))
    return categories, [[tp, fn], [fp, tn]]


def self_contained_html(report_dir: str | Path, out_file: str | Path) -> Path:
    """Copy report_dir/index.html to out_file with its local images inlined as data URIs.

    The KFP UI shows an HTML artifact as one file, so relative image links would break there.
    """
    report_dir, out_file = Path(report_dir), Path(out_file)
    html = (report_dir / "index.html").read_text()

    def inline(match: re.Match[str]) -> str:
        ref = match.group(2)
        path = report_dir / ref
        if ref.startswith(("data:", "http:", "https:", "/")) or not path.is_file():
            return match.group(0)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'{match.group(1)}"data:{mime};base64,{data}"'

    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(re.sub(r'(src=)"([^"]+)"', inline, html))
    return out_file


def metrics_for_logging(metrics: dict[str, Any]) -> dict[str, float]:
    """KFP metrics are numbers; undefined metrics (None) are left out (their reason is in the evaluation)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


# ------------------------------------------------------------------------------------------------ sync


def lineage_from(metadata: dict[str, Any], run_id: str = "") -> Any:
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
    from modelopsx.registry.log import Registry
    from modelopsx.registry.models import model_file_cids, register_model
    from modelopsx.storage.dvc_remote import push_directory

    model, evaluation = Path(model_dir), Path(evaluation_dir)
    store = open_basin()
    evaluation_json = _read_json(evaluation / EVALUATION_FILE)
    evaluation_hash = push_directory(evaluation, store)
    lineage = lineage_from(data_metadata, run_id)
    lineage.initial_weights = _read_json(model / "model.json").get("initial_weights")
    record = register_model(
        Registry(store),
        model_name,
        model,
        store,
        evaluation_json.get("metrics", {}),
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
    """Gate the candidate against the champion (or, with none yet, the HOG baseline) on the same test split.

    The decision goes to out_dir (decision.json, .md) and into an "evaluations" record of the candidate, so
    keep decisions are on record too. Evidence that cannot be trusted (a missing or malformed evaluation or
    detections file, metrics out of range, no operating threshold, an evaluation of another test split) is
    an error: the step fails and nothing is deployed."""
    from modelopsx.gate import GatePolicy
    from modelopsx.registry.compare import compare_with_champion
    from modelopsx.registry.records import EvaluationRecord, Lineage

    registry = open_registry()
    evaluation, data = Path(evaluation_dir), Path(data_dir)
    policy = GatePolicy.from_json_string(gate_policy)
    candidate = read_evaluation(evaluation / EVALUATION_FILE)
    test_hash = dataset_version_hash(data / "test")
    if candidate.get("test_hash") != test_hash:
        raise EvidenceError(
            f"the candidate's evaluation is of test split {str(candidate.get('test_hash'))[:12]}, "
            f"not of this run's test split {test_hash[:12]}",
            hint="evaluate and compare must read the same split artifact",
        )
    model_record = registry.get("models", model_name, model_version)
    decision = compare_with_champion(
        registry,
        model_name,
        candidate["metrics"],
        data / "test",
        test_hash,
        policy,
        candidate_detections=evaluation / DETECTIONS_FILE,
        candidate_score_threshold=candidate.get("score_threshold"),
        candidate_info={
            "model_name": model_name,
            "model_version": model_version,
            "model_dvc_hash": model_record.get("dvc_hash"),
            "test_split_hash": test_hash,
            "score_threshold": candidate.get("score_threshold"),
            "initial_weights": (model_record.get("lineage") or {}).get("initial_weights"),
        },
        val_dir=data / "val",
    )
    decision.write(Path(out_dir))
    record = EvaluationRecord(
        model_name=model_name,
        model_version=model_version,
        test_split_hash=test_hash,
        metrics=candidate["metrics"],
        undefined=candidate.get("undefined", {}),
        score_threshold=candidate.get("score_threshold"),
        lineage=Lineage.from_dict(model_record.get("lineage")),
    ).to_dict()
    record.update({"decision": decision.to_json(), "artifacts_dvc_hash": evaluation_dvc_hash})
    seq = registry.append("evaluations", model_name, record)
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "markdown": decision.to_markdown(),
        "evaluation_seq": seq,
        "model_version": model_version,
        "champion_version": (decision.champion or {}).get("model_version"),
    }


def read_evaluation(path: Path) -> dict[str, Any]:
    """evaluation.json as the gate needs it: a JSON object with a metrics object."""
    hint = "re-run the evaluate step; its evaluation.json is the candidate's evidence"
    if not path.is_file():
        raise EvidenceError(f"no evaluation at {path}", hint=hint)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"evaluation {path} is not valid JSON ({exc})", hint=hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise EvidenceError(f"evaluation {path} has no metrics object", hint=hint)
    return data


# ------------------------------------------------------------------------------------------------- deploy


def deploy(
    model_dir: str | Path, decision_dir: str | Path, model_name: str, model_version: int, serving_uri: str
) -> dict[str, Any]:
    """Deploy a promote decision (registry.release re-checks it) to <serving_uri>/<model>/<promotion>/."""
    from modelopsx.registry.release import deploy_decision

    uri = serving_uri or f"{basin_store_url()}/serving"
    promotion = deploy_decision(
        open_registry(), Path(model_dir), Path(decision_dir) / "decision.json", model_name, model_version, uri
    )
    return {
        "serving_uri": uri,
        "deployed_to": f"{uri.rstrip('/')}/{model_name}/{promotion['seq']}",
        "promotion": int(promotion["seq"]),
        "model_name": model_name,
        "model_version": model_version,
    }


# -------------------------------------------------------------------------------------------------- sweep


def validate_trials(trials: Any) -> list[dict[str, Any]]:
    """Check a sweep's `trials` list: a non-empty list of dicts whose keys are known training settings."""
    from modelopsx.model.config import TrainConfig

    allowed = set(TRIAL_PARAMETERS) | {f.name for f in dataclasses.fields(TrainConfig)}
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
    """The metrics training measured on the validation split (model.json `val_metrics`)."""
    values = _read_json(Path(model_dir) / "model.json").get("val_metrics")
    return dict(values) if isinstance(values, dict) else {}


def copy_tree(src: str | Path, dst: str | Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


# ------------------------------------------------------------------------------------------------ helpers


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


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
