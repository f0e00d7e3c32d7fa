"""What the registry mirror's files look like; pure functions of registry records.

datasets/<name>.dvc                   the dataset version (checks out to datasets/<name>/)
models/<name>/model.dvc               the model version (models/<name>/model/)
models/<name>/dataset.dvc             the dataset version it was trained on (models/<name>/dataset/)
models/<name>/metrics.json            its test metrics (DVC metrics)
models/<name>/plots/*.json            its precision-recall and miss-rate/FPPI curves (DVC plots)
dvc.yaml                              declares those metrics and plots for `dvc metrics|plots diff`
artifacts.yaml                        GTO's annotations: each name's type and path
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from modelopsx.evaluation.curves import MISS_RATE_FPPI, PRECISION_RECALL
from modelopsx.storage.dvc_remote import dvc_file

DATASETS_DIR = "datasets"
MODELS_DIR = "models"
PLOT_AXES = {PRECISION_RECALL: ("recall", "precision"), MISS_RATE_FPPI: ("fppi", "miss_rate")}
# GTO reads `<name>@v<semver>` and `<name>#<stage>#<n>` tags of names matching this pattern.
_GTO_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?$")
PROD_STAGE = "prod"


def gto_compatible(name: str) -> bool:
    return bool(_GTO_NAME.match(name))


def version_tag(name: str, version: int) -> str:
    """GTO's version tag (semantic version); version_alias is the short form users type."""
    return f"{name}@v{version}.0.0"


def version_alias(name: str, version: int) -> str:
    return f"{name}@v{version}"


def promotion_tag(name: str, seq: int) -> str:
    """GTO's stage assignment: the counter is the promotion's registry seq, so rollbacks get a new tag."""
    return f"{name}#{PROD_STAGE}#{seq}"


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def pointer(dir_hash: str, path: str, meta: dict[str, Any]) -> str:
    """A `.dvc` file for one directory version (md5 `.dir` hash, `hash: md5`), with registry facts as meta."""
    content = dvc_file(dir_hash, path)
    content["meta"] = {k: v for k, v in meta.items() if v is not None}
    return _yaml(content)


def dataset_files(name: str, record: dict[str, Any]) -> dict[str, str]:
    meta = {
        "registry_version": record["seq"],
        "content_hash": record.get("content_hash"),
        "counts": record.get("counts"),
        "created_at": record.get("created_at"),
    }
    return {f"{DATASETS_DIR}/{name}.dvc": pointer(record["dvc_hash"], name, meta)}


def model_files(
    name: str, record: dict[str, Any], plots: dict[str, list[dict[str, float]]]
) -> dict[str, str]:
    """The files of one model version; plot files it lacks are written as "" (deleted by the writer)."""
    lineage = record.get("lineage") or {}
    base = f"{MODELS_DIR}/{name}"
    meta = {
        "registry_version": record["seq"],
        "score_threshold": record.get("score_threshold"),
        "test_split_hash": record.get("test_split_hash"),
        "created_at": record.get("created_at"),
        "dataset": lineage.get("dataset_name"),
        "dataset_version": lineage.get("dataset_version"),
        "pipeline_run_id": lineage.get("pipeline_run_id"),
        "code": lineage.get("code"),
    }
    metrics = {
        k: v
        for k, v in (record.get("metrics") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    files = {
        f"{base}/model.dvc": pointer(record["dvc_hash"], "model", meta),
        f"{base}/metrics.json": json.dumps(metrics, indent=1, sort_keys=True) + "\n",
        f"{base}/dataset.dvc": "",
    }
    if lineage.get("dataset_dvc_hash"):
        files[f"{base}/dataset.dvc"] = pointer(
            lineage["dataset_dvc_hash"],
            "dataset",
            {"dataset": lineage.get("dataset_name"), "registry_version": lineage.get("dataset_version")},
        )
    for plot in PLOT_AXES:
        rows = plots.get(plot)
        files[f"{base}/plots/{plot}.json"] = json.dumps(rows, indent=0) + "\n" if rows else ""
    return files


def dvc_yaml(model_names: list[str], root: Path) -> str:
    """Top-level metrics and plots of every model in the tree (those whose files exist under root)."""
    metrics, plots = [], []
    for name in sorted(model_names):
        base = f"{MODELS_DIR}/{name}"
        if (root / base / "metrics.json").is_file():
            metrics.append(f"{base}/metrics.json")
        for plot, (x, y) in PLOT_AXES.items():
            if (root / base / "plots" / f"{plot}.json").is_file():
                plots.append({f"{base}/plots/{plot}.json": {"x": x, "y": y, "title": f"{name}: {plot}"}})
    return _yaml({"metrics": metrics, "plots": plots})


def artifacts_yaml(datasets: list[str], models: list[str]) -> str:
    """GTO's index: which names are models and datasets, and where each lives in the tree."""
    index: dict[str, dict[str, str]] = {}
    for name in sorted(datasets):
        index[name] = {"type": "dataset", "path": f"{DATASETS_DIR}/{name}"}
    for name in sorted(models):
        index[name] = {"type": "model", "path": f"{MODELS_DIR}/{name}/model"}
    return _yaml({k: v for k, v in index.items() if gto_compatible(k)})


def gitignore_lines(files: dict[str, str]) -> dict[str, set[str]]:
    """Per folder, the `/<path>` entries that keep DVC-tracked outputs out of git (as `dvc add` writes), and
    at the top `dvc plots diff`'s default output, so comparing models leaves the mirror clean for a sync."""
    entries: dict[str, set[str]] = {"": {"/dvc_plots"}}
    for rel, text in files.items():
        if rel.endswith(".dvc") and text:
            folder, _, file_name = rel.rpartition("/")
            entries.setdefault(folder, set()).add("/" + file_name.removesuffix(".dvc"))
    return entries
