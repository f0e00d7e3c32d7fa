"""Static checks of manifests/: every offline overlay renders and validates against its Kubernetes schema."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from .conftest import MANIFESTS, load_yaml, render

K8S_VERSION = "1.32"
OFFLINE_OVERLAYS = ["kfp/local", "basin/base", "basin/overlays/emulator", "basin/overlays/adapter", "serving",
                    "gpu/node-setup"]
REMOTE_OVERLAYS = {"kfp/upstream": r"\?ref=2\.17\.0$", "gpu/device-plugin": r"/v0\.17\.1/"}


@pytest.mark.parametrize("overlay", OFFLINE_OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    objects = render(MANIFESTS / overlay)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"].get("namespace", "kubeflow") == "kubeflow", obj["metadata"]


def test_validation_rejects_a_broken_object() -> None:
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"replicas": "two", "selector": {}, "template": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("overlay", "pin"), REMOTE_OVERLAYS.items())
def test_remote_bases_are_pinned(overlay: str, pin: str) -> None:
    resources = load_yaml(MANIFESTS / overlay / "kustomization.yaml")["resources"]
    assert resources and all(re.search(pin, r) for r in resources), resources


def test_kind_port_mappings_match_node_ports() -> None:
    cluster = load_yaml(MANIFESTS / "kind" / "cluster.yaml")
    assert [n["role"] for n in cluster["nodes"]] == ["control-plane", "worker"]
    mapped = {m["containerPort"] for m in cluster["nodes"][0]["extraPortMappings"]}
    node_ports = set()
    for overlay in ["kfp/local", "basin/overlays/emulator", "serving"]:
        for obj in render(MANIFESTS / overlay):
            if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
                node_ports |= {p["nodePort"] for p in obj["spec"]["ports"] if "nodePort" in p}
    assert node_ports == mapped


def test_emulator_overlay_replaces_the_adapter_behind_the_same_service() -> None:
    adapter = {o["kind"]: o for o in render(MANIFESTS / "basin/overlays/adapter")}
    emulator = [o for o in render(MANIFESTS / "basin/overlays/emulator") if o["kind"] == "Deployment"][0]
    container = emulator["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["modelopsx", "basin", "serve"]
    assert adapter["Service"]["metadata"]["name"] == "basin-s3"
    secret = adapter["Secret"]
    assert secret["stringData"]["endpoint"] == "http://basin-s3.kubeflow:8014"


def test_serving_reads_the_model_path_deploy_writes() -> None:
    objects = render(MANIFESTS / "serving")
    settings = next(o for o in objects if o["metadata"]["name"].startswith("serving-settings"))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    serving = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--model_base_path=/models/$(MODEL_NAME)" in serving["args"]
    assert serving["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{settings['data']['MODEL_NAME']}"
    defaults = next(o for o in render(MANIFESTS / "kfp/local") if o["kind"] == "ConfigMap")
    assert settings["data"]["SERVING_URI"] == defaults["data"]["serving-uri"]


def test_gpu_node_setup_script_labels_and_taints() -> None:
    script = (MANIFESTS / "gpu/node-setup/label-gpu-nodes.sh").read_text()
    assert "nvidia.com/gpu.present=true" in script and "nvidia.com/gpu=present:NoSchedule" in script


def compiled_kubernetes_executors(name: str) -> dict:
    docs = list(yaml.safe_load_all((MANIFESTS.parent / "pipelines" / "compiled" / name).read_text()))
    platform = next(d for d in docs if d and "platforms" in d)
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_secret_keys_match_what_the_pipeline_reads() -> None:
    secret = next(o for o in render(MANIFESTS / "basin/base") if o["kind"] == "Secret")
    read = set()
    for executor in compiled_kubernetes_executors("training_pipeline.yaml").values():
        for mount in executor.get("secretAsEnv", []):
            assert mount["secretName"] == secret["metadata"]["name"]
            read |= {(k["secretKey"], k["envVar"]) for k in mount["keyToEnv"]}
    assert read, "the pipeline mounts no Basin secret"
    assert {key for key, _ in read} <= set(secret["stringData"])
    documented = (MANIFESTS / "basin/base/secret.yaml").read_text()
    for key, env in read:
        assert f"{key} -> {env}" in documented


def test_gpu_pipeline_defaults_match_node_setup() -> None:
    header = (MANIFESTS.parent / "pipelines" / "compiled" / "training_pipeline.yaml").read_text()
    assert "gpu_node_selector: dict [Default: {'nvidia.com/gpu.present': 'true'}]" in header
    assert "'key': 'nvidia.com/gpu'" in header and "'effect': 'NoSchedule'" in header
    cpu = compiled_kubernetes_executors("training_pipeline_cpu.yaml")
    assert not any("nodeSelector" in e or "tolerations" in e for e in cpu.values())
