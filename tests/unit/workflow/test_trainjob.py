"""The TrainJob the train step creates for train_workers > 1, checked against Kubeflow Trainer's CRD schemas
(vendored at the pinned release, tests/data/kubeflow-trainer-v2.3.0) and against the runtime in manifests/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from modelopsx.errors import ModelError, PipelineError
from modelopsx.model import distributed
from modelopsx.workflow import trainjob

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "tests" / "data" / f"kubeflow-trainer-{trainjob.TRAINER_VERSION}"
RUNTIME_DIR = ROOT / "manifests" / "trainer" / "runtime"
K8S_VERSION = "1.32"


def crd_schema(plural: str) -> dict[str, Any]:
    data = json.loads((SCHEMAS / f"{plural}.schema.json").read_text())
    assert data["group"] == trainjob.API_GROUP and data["version"] == trainjob.API_VERSION
    return data["openAPIV3Schema"]


def validate_crd(obj: dict[str, Any], plural: str) -> None:
    """The CRD's OpenAPI v3 schema as JSON Schema, plus strict field validation: a field the schema does not
    know would be pruned by the API server. (CEL rules, x-kubernetes-validations, are not evaluated.)"""
    schema = crd_schema(plural)
    jsonschema.Draft7Validator(schema).validate(obj)
    assert list(unknown_fields(obj, schema)) == []


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = ""):
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            if key in schema["properties"]:
                yield from unknown_fields(value, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                yield f"{path}.{key}"
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            yield from unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for index, item in enumerate(obj):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")


def rendered_runtime_objects() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render the manifests (it ships kustomize)")
    out = subprocess.run([kubectl, "kustomize", str(RUNTIME_DIR)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def shipped_runtime() -> dict[str, Any]:
    return next(o for o in rendered_runtime_objects() if o["kind"] == trainjob.RUNTIME_KIND)


def four_workers() -> dict[str, Any]:
    job = {
        "data": "basin://t2abc/trainjobs/modelopsx-train-0a1b2c3d/data",
        "model": "basin://t2abc/trainjobs/modelopsx-train-0a1b2c3d/model",
        "config": {"epochs": 3},
        "weights_label": None,
    }
    return trainjob.render_trainjob(
        "modelopsx-train-0a1b2c3d",
        "kubeflow",
        4,
        "ghcr.io/modelopsx/modelopsx:0.1.0-gpu",
        job,
        "nvidia.com/gpu",
        "1",
        {"access-key": "MODELOPSX_BASIN_ACCESS_KEY"},
        "modelopsx-basin",
    )


def node_container(runtime: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    jobs = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert [j["name"] for j in jobs] == ["node"]
    pod = jobs[0]["template"]["spec"]["template"]
    return jobs[0], next(c for c in pod["spec"]["containers"] if c["name"] == trainjob.CONTAINER_NAME)


def test_the_trainjob_for_four_workers_is_valid_and_uses_the_shipped_runtime() -> None:
    body = four_workers()
    validate_crd(body, "trainjobs")
    runtime = shipped_runtime()
    assert body["spec"]["runtimeRef"] == {
        "apiGroup": runtime["apiVersion"].split("/")[0],
        "kind": runtime["kind"],
        "name": runtime["metadata"]["name"],
    }
    trainer = body["spec"]["trainer"]
    assert trainer["numNodes"] == 4
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": 1}
    env = {e["name"]: e for e in trainer["env"]}
    assert env[distributed.WORKERS_ENV]["value"] == "4"
    assert json.loads(env[trainjob.JOB_ENV]["value"])["model"].endswith("/model")
    assert env["MODELOPSX_BASIN_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "modelopsx-basin"
    # The TrainJob adds to the runtime's environment; it never redefines what the runtime sets.
    _, container = node_container(runtime)
    assert not set(env) & {e["name"] for e in container["env"]}


def test_the_shipped_runtime_is_valid_and_gives_each_pod_its_place() -> None:
    runtime = shipped_runtime()
    validate_crd(runtime, "clustertrainingruntimes")
    job, container = node_container(runtime)
    pod_template = job["template"]["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node"}, "spec": pod_template["spec"]}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    network = runtime["spec"]["template"]["spec"]["network"]
    assert network["enableDNSHostnames"] is True

    # The environment a pod of TrainJob "tj" gets: the runtime's downward-API values, the TrainJob's env,
    # and Kubernetes' completion index. TF_CONFIG follows JobSet's hostnames; worker 0 is the chief.
    labels = {"jobset.sigs.k8s.io/jobset-name": "tj", "jobset.sigs.k8s.io/replicatedjob-name": job["name"]}
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            env[item["name"]] = labels[path.split("'")[1]]
    env[distributed.WORKERS_ENV] = "4"
    port = str(next(p["containerPort"] for p in container["ports"] if p["name"] == "tf-worker"))
    assert env[distributed.PORT_ENV] == port
    clusters = [
        distributed.cluster_from_env({**env, distributed.COMPLETION_INDEX_ENV: str(i)}) for i in range(4)
    ]
    hosts = [f"tj-node-0-{i}.tj:{port}" for i in range(4)]
    assert [c.workers if c else None for c in clusters] == [tuple(hosts)] * 4
    assert [c.index for c in clusters if c] == [0, 1, 2, 3]
    assert [c.is_chief for c in clusters if c] == [True, False, False, False]


def test_rbac_lets_the_pipeline_create_watch_and_delete_trainjobs() -> None:
    objects = rendered_runtime_objects()
    for obj in objects:
        if obj["kind"] != trainjob.RUNTIME_KIND:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    role = next(o for o in objects if o["kind"] == "Role")
    rule = next(r for r in role["rules"] if r["resources"] == [trainjob.TRAINJOB_PLURAL])
    assert {"create", "get", "watch", "delete"} <= set(rule["verbs"])
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]
    reader = next(o for o in objects if o["kind"] == "ClusterRole")
    assert reader["rules"][0]["resourceNames"] == [trainjob.RUNTIME_NAME]


def test_schema_validation_rejects_a_broken_trainjob() -> None:
    body = four_workers()
    body["spec"]["trainer"]["numNodes"] = "four"
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(body, "trainjobs")
    del body["spec"]["runtimeRef"]
    with pytest.raises(jsonschema.ValidationError):
        validate_crd(body, "trainjobs")
    misspelt = four_workers()
    misspelt["spec"]["trainer"]["numNode"] = misspelt["spec"]["trainer"].pop("numNodes")
    with pytest.raises(AssertionError, match="numNode"):
        validate_crd(misspelt, "trainjobs")


def test_cpu_workers_ask_for_no_gpu() -> None:
    body = trainjob.render_trainjob("tj", "kubeflow", 2, "ghcr.io/modelopsx/modelopsx:0.1.0", {})
    validate_crd(body, "trainjobs")
    assert body["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": 0}


def test_one_worker_is_no_trainjob() -> None:
    with pytest.raises(PipelineError, match="2 or more"):
        trainjob.render_trainjob("tj", "kubeflow", 1, "image", {})


def test_submit_refuses_a_bad_worker_count_before_the_run() -> None:
    from modelopsx.workflow.submit import parse_params

    spec = {"train_workers": {"parameterType": "NUMBER_INTEGER"}}
    assert parse_params(["train_workers=4"], spec) == {"train_workers": 4}
    with pytest.raises(ModelError, match="train_workers must be >= 1"):
        parse_params(["train_workers=0"], spec)
    with pytest.raises(PipelineError, match="is not an integer"):
        parse_params(["train_workers=2.5"], spec)


def test_a_local_run_refuses_several_workers() -> None:
    from modelopsx.workflow.local_run import check_run_arguments

    check_run_arguments(None, None, {"train_workers": 1})
    with pytest.raises(PipelineError, match="needs a cluster with Kubeflow Trainer"):
        check_run_arguments(None, None, {"train_workers": 3})


def test_the_step_reads_the_trainjob_outcome_from_its_conditions() -> None:
    assert trainjob.condition_summary({}) == ("", "created")
    running = {"conditions": [{"type": "Suspended", "status": "False"}]}
    assert trainjob.condition_summary(running) == ("", "Suspended=False")
    failed = {
        "conditions": [
            {"type": "Suspended", "status": "False"},
            {"type": "Failed", "status": "True", "reason": "JobsFailed", "message": "node-0 failed"},
        ]
    }
    assert trainjob.condition_summary(failed) == ("Failed", "Failed: JobsFailed node-0 failed")
    done = {"conditions": [{"type": "Complete", "status": "True", "reason": "JobsCompleted"}]}
    assert trainjob.condition_summary(done)[0] == "Complete"
