"""IR tests on the compiled pipelines (the committed YAML users submit), as kfp's compiler tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelopsx.pipelines.common import BASIN_SECRET, BASIN_SECRET_ENV

ROOT = Path(__file__).resolve().parents[2]
COMPILED = ROOT / "pipelines" / "compiled"
FILES = ("training_pipeline.yaml", "training_pipeline_cpu.yaml", "sweep_pipeline.yaml")

# component -> {output artifact: schema title}
OUTPUT_TYPES = {
    "ingest": {"dataset": "system.Dataset"},
    "split": {"splits": "system.Dataset"},
    "augment": {"augmented": "system.Dataset"},
    "train": {"model": "system.Model", "metrics": "system.Metrics"},
    "evaluate": {
        "metrics": "system.Metrics",
        "confusion": "system.ClassificationMetrics",
        "report": "system.HTML",
        "evaluation": "system.Artifact",
    },
    "compare": {"decision_report": "system.Markdown", "decision_record": "system.Artifact"},
}
BASIN_TASKS = ("ingest", "basin-sync", "compare", "deploy")


def load(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pipeline spec, kubernetes platform executors) of a committed file."""
    docs = [d for d in yaml.safe_load_all((COMPILED / name).read_text()) if d]
    spec = next(d for d in docs if "pipelineInfo" in d)
    platform = next((d for d in docs if "platforms" in d), {"platforms": {}})
    executors = platform["platforms"].get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    return spec, executors


def all_tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task in the root DAG and in nested DAGs (conditions, loops), by task name."""
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def executor_of(spec: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
    return dict(spec["deploymentSpec"]["executors"][label]["container"], label=label)


@pytest.mark.parametrize("name", FILES)
def test_every_stage_is_present_with_typed_artifacts(name: str) -> None:
    spec, _ = load(name)
    tasks = all_tasks(spec)
    for stage in ("ingest", "split", "augment", "train", "evaluate", "basin-sync", "compare", "deploy"):
        assert stage in tasks, f"{name}: stage {stage} missing"
    for stage, outputs in OUTPUT_TYPES.items():
        component = spec["components"][tasks[stage]["componentRef"]["name"]]
        declared = component["outputDefinitions"]["artifacts"]
        for artifact, schema in outputs.items():
            assert declared[artifact]["artifactType"]["schemaTitle"] == schema, (name, stage, artifact)
    deploy_inputs = spec["components"][tasks["deploy"]["componentRef"]["name"]]["inputDefinitions"]
    assert deploy_inputs["artifacts"]["model"]["artifactType"]["schemaTitle"] == "system.Model"


@pytest.mark.parametrize("name", ["training_pipeline.yaml", "sweep_pipeline.yaml"])
def test_gpu_train_requests_the_accelerator_from_parameters(name: str) -> None:
    spec, executors = load(name)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["accelerator_type"]["defaultValue"] == "nvidia.com/gpu"
    assert params["accelerator_count"]["defaultValue"] == "1"
    assert {params[p]["parameterType"] for p in ("accelerator_type", "accelerator_count")} == {"STRING"}
    train = all_tasks(spec)["train"]
    container = executor_of(spec, train)
    accelerator = container["resources"]["accelerator"]
    assert accelerator["resourceType"] == "{{$.inputs.parameters['pipelinechannel--accelerator_type']}}"
    assert accelerator["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--accelerator_count']}}"
    assert container["image"].endswith("-gpu")
    # the placeholders resolve to the pipeline parameters (through the loop's inputs in the sweep)
    source = train["inputs"]["parameters"]["pipelinechannel--accelerator_type"]["componentInputParameter"]
    assert source.endswith("accelerator_type")
    placement = executors[container["label"]]
    selector = placement["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
    tolerations = placement["tolerations"][0]["tolerationJson"]["componentInputParameter"]
    assert selector.endswith("gpu_node_selector") and tolerations.endswith("gpu_tolerations")
    # nothing but train asks for a GPU
    others = [
        t
        for n, t in all_tasks(spec).items()
        if n != "train"
        and "componentRef" in t
        and "executorLabel" in spec["components"][t["componentRef"]["name"]]
    ]
    assert all("resources" not in executor_of(spec, t) for t in others)


def test_cpu_pipeline_requests_no_gpu_and_no_gpu_placement() -> None:
    spec, executors = load("training_pipeline_cpu.yaml")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not {"accelerator_type", "accelerator_count", "gpu_node_selector", "gpu_tolerations"} & set(params)
    for label, executor in spec["deploymentSpec"]["executors"].items():
        assert "accelerator" not in executor["container"].get("resources", {}), label
        assert not executor["container"]["image"].endswith("-gpu"), label
    for label, placement in executors.items():
        assert "nodeSelector" not in placement and "tolerations" not in placement, label
    assert "nvidia.com/gpu" not in (COMPILED / "training_pipeline_cpu.yaml").read_text()


@pytest.mark.parametrize("name", FILES)
def test_caching_is_off_where_latest_or_champion_is_read(name: str) -> None:
    tasks = all_tasks(load(name)[0])
    # train too: unless weights are set it starts from the current champion, which its inputs do not name
    for task in ("ingest", "train", "compare"):
        assert not tasks[task]["cachingOptions"].get("enableCache"), (name, task)
    for task in ("split", "augment", "evaluate"):
        assert tasks[task]["cachingOptions"].get("enableCache") is True, (name, task)


@pytest.mark.parametrize("name", FILES)
def test_basin_steps_retry_and_get_the_secret_as_env(name: str) -> None:
    spec, executors = load(name)
    tasks = all_tasks(spec)
    expected = sorted(BASIN_SECRET_ENV.items())
    for task in BASIN_TASKS:
        assert tasks[task]["retryPolicy"]["maxRetryCount"] >= 2, (name, task)
    for task in (*BASIN_TASKS, "train"):
        placement = executors[executor_of(spec, tasks[task])["label"]]
        (secret,) = placement["secretAsEnv"]
        assert secret["secretName"] == BASIN_SECRET == "modelopsx-basin"
        assert sorted((m["secretKey"], m["envVar"]) for m in secret["keyToEnv"]) == expected, (name, task)
    assert set(BASIN_SECRET_ENV.values()) == {
        "MODELOPSX_BASIN_ACCESS_KEY",
        "MODELOPSX_BASIN_SECRET_KEY",
        "MODELOPSX_BASIN_ENDPOINT",
        "MODELOPSX_BASIN_STORE",
    }
    # training, evaluation and data steps have no reason to be retried blindly
    assert "retryPolicy" not in tasks["train"] and "retryPolicy" not in tasks["evaluate"]


@pytest.mark.parametrize("name", FILES)
def test_deploy_runs_only_when_the_gate_promotes(name: str) -> None:
    spec, _ = load(name)
    root = spec["root"]["dag"]["tasks"]
    assert "deploy" not in root
    (condition,) = [
        t
        for t in root.values()
        if "deploy" in spec["components"][t["componentRef"]["name"]].get("dag", {}).get("tasks", {})
    ]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--compare-Output'] == 'promote'"
    )


def test_sweep_fans_out_trials_and_collects_them_for_the_selection() -> None:
    spec, _ = load("sweep_pipeline.yaml")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["trials"]["parameterType"] == "LIST" and params["selection_metric"]["defaultValue"] == "f1"
    root = spec["root"]["dag"]["tasks"]
    (loop,) = [t for t in root.values() if "parameterIterator" in t]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("check-trials-Output")
    loop_tasks = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(loop_tasks) == {"train", "evaluate"}
    select = spec["components"][root["select-best"]["componentRef"]["name"]]["inputDefinitions"]["artifacts"]
    assert all(select[a]["isArtifactList"] for a in ("models", "evaluations"))
    assert "metrics" not in select  # trials are ranked on validation (model.json), not on the test split
    assert root["basin-sync"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"] == {
        "outputArtifactKey": "best_model",
        "producerTask": "select-best",
    }


def test_committed_files_equal_a_fresh_compile(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MODELOPSX_IMAGE", "MODELOPSX_GPU_IMAGE")}
    proc = subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "compile", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        fresh = (tmp_path / name).read_text()
        assert fresh == (COMPILED / name).read_text(), (
            f"pipelines/compiled/{name} is stale: run `make compile` and commit it"
        )
