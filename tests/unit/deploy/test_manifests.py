"""Static checks of manifests/: every offline overlay renders and validates against its Kubernetes schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.conftest import MANIFESTS, load_yaml, render

K8S_VERSION = "1.32"
OFFLINE_OVERLAYS = [
    "kfp/local",
    "basin/base",
    "basin/overlays/emulator",
    "basin/overlays/adapter",
    "serving",
    "gpu/node-setup",
]
REMOTE_OVERLAYS = {
    "kfp/upstream": r"\?ref=2\.17\.0$",
    "gpu/device-plugin": r"/v0\.17\.1/",
    "trainer/upstream": r"\?ref=v2\.3\.0$",  # modelopsx.workflow.trainjob.TRAINER_VERSION
}


@pytest.mark.parametrize("overlay", OFFLINE_OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    objects = render(MANIFESTS / overlay)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"].get("namespace", "kubeflow") == "kubeflow", obj["metadata"]


def test_validation_rejects_a_broken_object() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("overlay", "pin"), REMOTE_OVERLAYS.items())
def test_remote_bases_are_pinned(overlay: str, pin: str) -> None:
    resources = load_yaml(MANIFESTS / overlay / "kustomization.yaml")["resources"]
    assert resources and all(re.search(pin, r) for r in resources), resources


def test_the_trainer_pin_matches_the_vendored_schemas_and_the_code() -> None:
    from modelopsx.workflow.trainjob import TRAINER_VERSION

    resources = load_yaml(MANIFESTS / "trainer/upstream/kustomization.yaml")["resources"]
    assert all(r.endswith(f"?ref={TRAINER_VERSION}") for r in resources)
    assert (MANIFESTS.parent / "tests" / "data" / f"kubeflow-trainer-{TRAINER_VERSION}").is_dir()
    makefile = (MANIFESTS.parent / "Makefile").read_text()
    assert "kubectl apply --server-side -k manifests/trainer/upstream" in makefile
    assert "kubectl apply -k manifests/trainer/runtime" in makefile


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


def serving_settings() -> dict[str, str]:
    objects = render(MANIFESTS / "serving")
    return next(o for o in objects if o["metadata"]["name"].startswith("serving-settings"))["data"]


def test_serving_reads_the_model_path_deploy_writes() -> None:
    objects = render(MANIFESTS / "serving")
    settings = serving_settings()
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    serving, puller = deployment["spec"]["template"]["spec"]["containers"]
    assert "--model_base_path=/models/$(MODEL_NAME)" in serving["args"]
    assert serving["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{settings['MODEL_NAME']}"
    # The pipeline deploys to basin://<store>/serving by default; basin:/// names the Secret's store.
    assert settings["SERVING_URI"] == "basin:///serving"
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in puller["env"] if "valueFrom" in e}
    assert secrets == {"modelopsx-basin"}


def test_model_puller_publishes_only_complete_versions(basin_env: object, tmp_path: Path) -> None:
    """deploy_model -> Basin -> pull-models.sh: complete versions appear whole, partial ones never."""
    from modelopsx.registry.deploy import deploy_model
    from modelopsx.storage.stores import open_store

    model_dir = tmp_path / "model" / "saved_model"
    (model_dir / "variables").mkdir(parents=True)
    (model_dir / "variables" / "variables.index").write_bytes(b"index")
    (model_dir / "saved_model.pb").write_bytes(b"graph")
    name = serving_settings()["MODEL_NAME"]
    deploy_model(model_dir.parent, "basin:///serving", name, 1)
    # An interrupted deploy of version 2: files but no saved_model.pb yet.
    open_store("basin:///serving").put(f"{name}/2/variables/variables.index", b"partial")

    env = {
        **os.environ,
        "SERVING_URI": "basin:///serving",
        "MODEL_NAME": name,
        "POLL_SECONDS": "0",
        "STAGING_DIR": str(tmp_path / "staging"),
        "MODELS_DIR": str(tmp_path / "models"),
        "ONCE": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["sh", str(MANIFESTS / "serving" / "pull-models.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    published = tmp_path / "models" / name
    assert sorted(p.name for p in published.iterdir()) == ["1"]
    assert (published / "1" / "saved_model.pb").read_bytes() == b"graph"
    assert (published / "1" / "variables" / "variables.index").read_bytes() == b"index"


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


def test_device_plugin_runs_under_the_nvidia_runtime_class(tmp_path: Path) -> None:
    """The plugin's patch applies to the upstream DaemonSet's name and names the RuntimeClass node-setup
    creates (rendered offline: the remote base is swapped for a stub of the same object)."""
    runtime_class = next(o for o in render(MANIFESTS / "gpu/node-setup") if o["kind"] == "RuntimeClass")
    kustomization = load_yaml(MANIFESTS / "gpu/device-plugin/kustomization.yaml")
    kustomization["resources"] = ["daemonset.yaml"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (tmp_path / "daemonset.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
                "spec": {
                    "selector": {"matchLabels": {"name": "p"}},
                    "template": {
                        "metadata": {"labels": {"name": "p"}},
                        "spec": {
                            "containers": [
                                {"name": "ctr", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
                            ]
                        },
                    },
                },
            }
        )
    )
    daemonset = render(tmp_path)[0]
    assert daemonset["spec"]["template"]["spec"]["runtimeClassName"] == runtime_class["metadata"]["name"]
    assert runtime_class["handler"] == "nvidia"
