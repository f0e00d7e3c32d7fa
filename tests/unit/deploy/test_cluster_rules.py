"""What a cluster would reject (or run broken) that schema validation passes: rendered overlays, checked
against what each image actually does.

- args without a command replace the image's CMD when the image has no ENTRYPOINT to receive them;
- a read-only root where the program writes outside every writable volume;
- probes on a port the container does not declare, or the program does not listen on, or a path it does
  not serve.
Each rule is shown to fire on a broken copy of a real manifest, so none of these tests can pass vacuously.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.deploy.conftest import MANIFESTS, ROOT, render

OVERLAYS = [
    "basin/base",
    "basin/overlays/emulator",
    "basin/overlays/adapter",
    "serving",
    "kfp/local",
    "gpu/node-setup",
]


@dataclass(frozen=True)
class ImageFacts:
    """What a container image does when started: taken from its Dockerfile where the project builds it."""

    has_entrypoint: bool


def _dockerfile_facts(name: str) -> ImageFacts:
    text = (ROOT / "images" / name).read_text()
    return ImageFacts(has_entrypoint=re.search(r"^ENTRYPOINT ", text, re.M) is not None)


IMAGES = {
    "ghcr.io/modelopsx/modelopsx": _dockerfile_facts("Dockerfile"),
    # textileio/basin-s3's Dockerfile: CMD ["./basin_s3"], no ENTRYPOINT.
    "basin-s3": ImageFacts(has_entrypoint=False),
    # tensorflow/serving: ENTRYPOINT tf_serving_entrypoint.sh, which passes "$@" to tensorflow_model_server.
    "tensorflow/serving": ImageFacts(has_entrypoint=True),
}


def image_facts(image: str) -> ImageFacts:
    repository = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    if repository not in IMAGES:
        pytest.fail(f"image {image!r} is unknown to the cluster rules: add what it does at start-up")
    return IMAGES[repository]


def expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\(([A-Za-z_]\w*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def literal_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """Values the manifests fix: env values and envFrom ConfigMaps (Secrets and field refs are runtime)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            env.update(
                next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)["data"]
            )
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
    return env


def program_facts(container: dict[str, Any], env: dict[str, str]) -> tuple[set[str], int | None]:
    """(paths the program writes, port it listens on) for the programs these manifests start."""
    argv = [expand(a, env) for a in container.get("command", []) + container.get("args", [])]
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    image = container["image"]
    if argv[:3] == ["modelopsx", "basin", "serve"]:
        return {flags.get("root", "/data"), "/tmp"}, int(flags.get("port", 8014))
    if "basin-s3" in image:  # basin_s3 creates ~/.s3-basin at start-up and listens on $PORT
        return {env.get("HOME", "/").rstrip("/") + "/.s3-basin"}, int(env.get("PORT", 8014))
    if "tensorflow/serving" in image:
        return set(), int(flags.get("rest_api_port", 8501))
    if "pull-models.sh" in " ".join(argv):  # the model puller: staging, models and the sync cache
        return {"/staging", "/models", env.get("MODELOPSX_CACHE_DIR", "/home/modelopsx/.cache")}, None
    if any("dataset synth" in a for a in argv):  # the seed Job renders the dataset under /tmp
        return {"/tmp"}, None
    pytest.fail(f"container {container['name']!r} runs a program the cluster rules do not know: {argv}")


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "Job", "DaemonSet", "StatefulSet")
    ]


def problems(objects: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for where, pod in pod_specs(objects):
        for container in pod["containers"]:
            at = f"{where} container {container['name']}"
            env = literal_env(container, objects)
            if (
                container.get("args")
                and not container.get("command")
                and not image_facts(container["image"]).has_entrypoint
            ):
                found.append(f"{at}: args without command replace the image's CMD")
            writes, port = program_facts(container, env)
            if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                mounts = [
                    m["mountPath"].rstrip("/")
                    for m in container.get("volumeMounts", [])
                    if not m.get("readOnly")
                ]
                for path in sorted(writes):
                    if not any(path == m or path.startswith(m + "/") for m in mounts):
                        found.append(
                            f"{at}: read-only root, but the program writes {path} outside any volume"
                        )
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(kind)
                if not probe:
                    continue
                target = probe.get("httpGet") or probe.get("tcpSocket") or {}
                if "port" not in target:
                    continue
                number = ports.get(target["port"]) if isinstance(target["port"], str) else target["port"]
                if number is None or number not in ports.values():
                    found.append(
                        f"{at}: {kind} on port {target['port']!r}, which the container does not declare"
                    )
                elif port is not None and number != port:
                    found.append(f"{at}: {kind} on port {number}, but the program listens on {port}")
                if "httpGet" in probe and "tensorflow/serving" in container["image"]:
                    served = f"/v1/models/{env.get('MODEL_NAME', '?')}"
                    if probe["httpGet"]["path"] != served:
                        found.append(f"{at}: {kind} asks {probe['httpGet']['path']}, but it serves {served}")
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_breaks_no_cluster_rule(overlay: str) -> None:
    assert problems(render(MANIFESTS / overlay)) == []


def _deployment(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


def test_args_replacing_cmd_are_caught() -> None:
    objects = render(MANIFESTS / "basin/overlays/adapter")
    broken = copy.deepcopy(objects)
    del _deployment(broken, "basin-s3")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert any("replace the image's CMD" in p for p in problems(broken))


def test_read_only_root_without_a_volume_is_caught() -> None:
    objects = render(MANIFESTS / "basin/overlays/adapter")
    broken = copy.deepcopy(objects)
    container = _deployment(broken, "basin-s3")["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = []
    assert any("writes /home/basin/.s3-basin" in p for p in problems(broken))
    emulator = copy.deepcopy(render(MANIFESTS / "basin/overlays/emulator"))
    container = _deployment(emulator, "basin-s3")["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    assert any("writes /tmp" in p for p in problems(emulator))


def test_probes_on_unserved_ports_and_paths_are_caught() -> None:
    serving = copy.deepcopy(render(MANIFESTS / "serving"))
    tf_serving = _deployment(serving, "pedestrian-detector-serving")["spec"]["template"]["spec"][
        "containers"
    ][0]
    tf_serving["readinessProbe"]["httpGet"]["path"] = "/v1/models/some-other-model"
    tf_serving["readinessProbe"]["httpGet"]["port"] = "grpc"
    found = problems(serving)
    assert any("asks /v1/models/some-other-model" in p for p in found)
    assert any("listens on 8501" in p for p in found)
    emulator = copy.deepcopy(render(MANIFESTS / "basin/overlays/emulator"))
    container = _deployment(emulator, "basin-s3")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["tcpSocket"]["port"] = "metrics"
    assert any("does not declare" in p for p in problems(emulator))


def test_serving_probe_follows_the_model_name(tmp_path: Any) -> None:
    """The probe path comes from MODEL_NAME: rename the model in a copy of the overlay and render it."""
    import shutil

    copy_dir = tmp_path / "serving"
    shutil.copytree(MANIFESTS / "serving", copy_dir)
    kustomization = copy_dir / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("MODEL_NAME=pedestrian-detector", "MODEL_NAME=people-v2")
    )
    objects = render(copy_dir)
    probe = _deployment(objects, "pedestrian-detector-serving")["spec"]["template"]["spec"]["containers"][0]
    assert probe["readinessProbe"]["httpGet"]["path"] == "/v1/models/people-v2"
    assert problems(objects) == []
