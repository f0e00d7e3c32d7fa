"""`make image-check`: build the CPU image with podman and run the cluster's work in it, as a cluster would.

In the image, as its non-root user and with no network but a loopback shared with the Basin emulator:
the emulator started from the kind overlay's Deployment (read-only root), the seed Job from the same overlay,
every step of the compiled CPU pipeline from the compiled YAML's own command and args (kfp.local's
DockerRunner through podman's Docker-compatible API generates each executor input), and the model puller from
the serving Deployment. Nothing is hard-coded that the manifests or the compiled YAML already say.
Skips (exit 0, saying why) where podman, or debootstrap for a stand-in base, cannot run. A tool of the
repository, not of the installed package: `python -m tests.image_check` from the repository's root.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelopsx.gate.decision import Decision
from tests import tiny_run

ROOT = Path(__file__).resolve().parents[1]
COMPILED_CPU = ROOT / "pipelines" / "compiled" / "training_pipeline_cpu.yaml"
STAND_IN_BASE = "localhost/modelopsx-base:python3.11-bookworm"
BASIN_PORT = 8014
# Small on purpose: this proves the image and the wiring, not the model (the local-run test's tiny run, from
# random weights, under the policy that promotes the first model so deploy and the model puller run too).
SEED_IMAGES = str(tiny_run.IMAGES)
TINY_PARAMS: dict[str, Any] = {**tiny_run.promoting(), "weights": "none"}
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")


class Skip(Exception):
    """The check cannot run on this machine; the message says why and what would make it run."""


class CheckFailed(Exception):
    """Something ran in the container and did not do what the cluster needs."""


# ---- reading what the manifests and the compiled pipeline say ----


def render(overlay: str) -> list[dict[str, Any]]:
    """Render a kustomize overlay under manifests/ (kubectl's built-in kustomize)."""
    if shutil.which("kubectl") is None:
        raise Skip(
            "kubectl is not installed (it renders the manifests); https://kubernetes.io/docs/tasks/tools/"
        )
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise CheckFailed(f"kubectl kustomize manifests/{overlay} failed: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name_prefix: str = "") -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(name_prefix):
            return obj
    raise CheckFailed(f"no {kind} {name_prefix!r} in the rendered manifests")


def pod_containers(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}


def _data(obj: dict[str, Any]) -> dict[str, str]:
    """A Secret's or ConfigMap's values, decoded."""
    values = (
        {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        if obj["kind"] == "Secret"
        else dict(obj.get("data") or {})
    )
    values.update(obj.get("stringData") or {})
    return values


def container_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """The environment Kubernetes would give the container: envFrom, then env (values, Secret and ConfigMap
    keys, and $(VAR) references to earlier variables)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_data(find(objects, "ConfigMap", source["configMapRef"]["name"])))
        if "secretRef" in source:
            env.update(_data(find(objects, "Secret", source["secretRef"]["name"])))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        ref = item.get("valueFrom", {})
        kind, key = ("Secret", "secretKeyRef") if "secretKeyRef" in ref else ("ConfigMap", "configMapKeyRef")
        if key not in ref:
            continue  # field references (pod name, ...) mean nothing outside a cluster
        values = _data(find(objects, kind, ref[key]["name"]))
        if ref[key]["key"] in values:
            env[item["name"]] = values[ref[key]["key"]]
        elif not ref[key].get("optional"):
            raise CheckFailed(f"{kind} {ref[key]['name']} has no key {ref[key]['key']!r}")
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values ($$ escapes; unknown names stay)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


def command_line(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    return [expand(part, env) for part in container.get("command", []) + container.get("args", [])]


def compiled_images(package: Path) -> set[str]:
    docs = [d for d in yaml.safe_load_all(package.read_text()) if d]
    spec = next(d for d in docs if "deploymentSpec" in d)
    return {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e}


def compiled_secret_env(package: Path, secret: dict[str, str]) -> dict[str, str]:
    """Env vars the compiled pipeline maps from the Basin Secret (its platform spec), with their values."""
    docs = [d for d in yaml.safe_load_all(package.read_text()) if d]
    platform: dict[str, Any] = next((d for d in docs if "platforms" in d), {})
    executors = (
        platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    )
    env: dict[str, str] = {}
    for executor in executors.values():
        for mount in executor.get("secretAsEnv", []):
            for pair in mount["keyToEnv"]:
                env[pair["envVar"]] = secret[pair["secretKey"]]
    return env


def pipeline_parameters(package: Path) -> set[str]:
    docs = [d for d in yaml.safe_load_all(package.read_text()) if d]
    spec = next(d for d in docs if "pipelineInfo" in d)
    return set(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


def dockerfile_default_base(dockerfile: Path) -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile.read_text(), re.M)
    if match is None:
        raise CheckFailed(f"{dockerfile} declares no ARG PYTHON_IMAGE=<default>")
    return match.group(1)


# ---- the host's pip settings, carried into the build ----


@dataclass
class PipSettings:
    build_args: dict[str, str] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)  # podman build -v specs, read-only


PIP_KEYS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "find-links": "PIP_FIND_LINKS",
    "cert": "PIP_CERT",
}
CERT_IN_BUILD = "/run/modelopsx-pip/ca.pem"


def pip_settings(config_list: str, environ: dict[str, str]) -> PipSettings:
    """Build args that make pip in the build use the host's index, links and CA bundle.

    `config_list` is `pip config list` output (`scope.key='value'` lines); PIP_* variables win over it, as for
    pip itself. Local indexes and link folders are mounted read-only at the same path; the CA bundle at a
    fixed path.
    """
    values: dict[str, str] = {}
    for line in config_list.splitlines():
        match = re.match(r"^[\w:.-]*?\.?([a-z-]+)='(.*)'$", line.strip())
        if match and match.group(1) in PIP_KEYS:
            values[PIP_KEYS[match.group(1)]] = match.group(2)
    values.update({k: v for k, v in environ.items() if k in PIP_KEYS.values() and v})
    settings = PipSettings()
    for name, value in values.items():
        if name == "PIP_CERT":
            if Path(value).is_file():
                settings.build_args[name] = CERT_IN_BUILD
                settings.mounts.append(f"{value}:{CERT_IN_BUILD}:ro")
            continue
        settings.build_args[name] = value
        for item in value.split():
            path = item.removeprefix("file://")
            if path.startswith("/") and Path(path).exists():
                # an index's files usually sit beside its simple/ pages: mount the folder above it
                mount = str(Path(path).parent if path.rstrip("/").endswith("/simple") else path)
                settings.mounts.append(f"{mount}:{mount}:ro")
    settings.mounts = list(dict.fromkeys(settings.mounts))
    return settings


# ---- podman ----


@dataclass
class Podman:
    runtime: str | None

    def argv(self, *args: str) -> list[str]:
        return ["podman", *(["--runtime", self.runtime] if self.runtime else []), *args]

    def run(
        self, *args: str, check: bool = True, timeout: float | None = None, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(*args), capture_output=capture, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise CheckFailed(
                f"podman {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                f"{(result.stderr or result.stdout or '').strip()[-3000:]}"
            )
        return result


def find_podman(runtime: str | None) -> Podman:
    if shutil.which("podman") is None:
        raise Skip("podman is not installed (Debian/Ubuntu: apt-get install podman; https://podman.io)")
    podman = Podman(runtime if runtime and shutil.which(runtime) else None)
    info = podman.run("info", check=False, timeout=120)
    if info.returncode != 0:
        raise Skip(f"podman cannot run here: {info.stderr.strip().splitlines()[-1:] or info.returncode}")
    return podman


def say(message: str) -> None:
    print(f"image-check: {message}", flush=True)


def ensure_base(podman: Podman, official: str) -> str:
    """The official base if present or pullable, else a stand-in made from Debian packages (cached)."""
    if podman.run("image", "exists", official, check=False).returncode == 0:
        return official
    try:
        if podman.run("pull", "--quiet", official, check=False, timeout=120).returncode == 0:
            return official
    except subprocess.TimeoutExpired:
        pass
    if podman.run("image", "exists", STAND_IN_BASE, check=False).returncode == 0:
        say(f"{official} cannot be pulled; using the cached stand-in {STAND_IN_BASE}")
        return STAND_IN_BASE
    if shutil.which("debootstrap") is None:
        raise Skip(
            f"{official} cannot be pulled and debootstrap is not installed to make a stand-in "
            "(apt-get install debootstrap)"
        )
    if os.geteuid() != 0:
        raise Skip(f"{official} cannot be pulled and making a stand-in with debootstrap needs root")
    say(f"{official} cannot be pulled; making a stand-in base from Debian packages")
    script = ROOT / "images" / "check" / "debian-python-base.sh"
    result = subprocess.run(["sh", str(script), STAND_IN_BASE], text=True, check=False)
    if result.returncode != 0:
        raise Skip("could not make the stand-in base with debootstrap (see the messages above)")
    return STAND_IN_BASE


def build_image(podman: Podman, tags: list[str], base: str, pip: PipSettings) -> None:
    args = ["build", "--network=host", "-f", str(ROOT / "images" / "Dockerfile")]
    for tag in tags:
        args += ["-t", tag]
    args += ["--build-arg", f"PYTHON_IMAGE={base}"]
    for name, value in pip.build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    for mount in pip.mounts:
        args += ["-v", mount]
    result = podman.run(*args, str(ROOT), check=False, capture=False)
    if result.returncode != 0:
        raise CheckFailed("podman build of images/Dockerfile failed (see the build log above)")


def security_args(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """The pod's user and the container's read-only root, as podman flags."""
    user = container.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {}).get(
        "runAsUser"
    )
    args = [f"--user={user}"] if user else []
    if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for limit in ULIMITS:
        args += ["--ulimit", limit]
    return args + ["--cap-drop=ALL", "--security-opt=no-new-privileges"]


def env_args(env: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in env.items():
        out += ["-e", f"{key}={value}"]
    return out


def writable_dir(path: Path) -> Path:
    """A host folder the container's non-root user may write (a volume in the cluster)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@contextmanager
def docker_api(podman: Podman, work: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a private socket, for kfp.local's DockerRunner."""
    socket = work / "podman.sock"
    service = subprocess.Popen(
        podman.argv("system", "service", "--time=0", f"unix://{socket}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if socket.exists():
                break
            time.sleep(0.1)
        else:
            raise CheckFailed("podman system service did not open its socket")
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=30)


@dataclass
class StepResult:
    name: str
    status: str
    seconds: float


def _podman_gone_as_not_found() -> None:
    """podman 4.x answers 500 "no such container" where Docker answers 404 for a container that auto-remove
    already took; the docker SDK then raises APIError instead of NotFound, which kfp.local expects for a
    step that exits before its logs are read. Map that answer to NotFound, as Docker would."""
    import docker.api.client
    import docker.errors

    original = docker.errors.create_api_error_from_http_exception

    def translate(error: Exception) -> None:
        try:
            original(error)  # always raises
        except docker.errors.APIError as api_error:
            if "no such container" in str(api_error.explanation or ""):
                raise docker.errors.NotFound(str(api_error), response=api_error.response) from error
            raise

    docker.api.client.create_api_error_from_http_exception = translate  # type: ignore[assignment]


# What a step counts as when its exit code cannot be read: not 0, so never a success (Docker's own code
# for "the container could not be run as asked").
EXIT_CODE_UNKNOWN = 125


def run_step_container(
    client: Any, image: str, command: list[str], volumes: dict[str, Any], **container_run_args: Any
) -> int:
    """kfp.local's DockerRunner step, with the container kept until its exit code is read.

    kfp.local starts each step with auto-remove and counts a container that is already gone at `wait` as a
    success (exit 0), so a step the engine removed early passes whatever it did. Here the container is
    removed only after its code is read, and one that disappears anyway counts as unknown: a failure."""
    import contextlib

    import docker.errors

    container = client.containers.run(
        image=image if ":" in image else f"{image}:latest",
        command=command,
        detach=True,
        stdout=True,
        stderr=True,
        volumes=volumes,
        auto_remove=False,
        **container_run_args,
    )
    try:
        with contextlib.suppress(docker.errors.NotFound):
            for line in container.logs(stream=True, follow=True):
                print(line.decode(errors="replace"), end="")
        try:
            return int(container.wait()["StatusCode"])
        except docker.errors.NotFound:
            print(
                f"step container {container.short_id} was removed before its exit code was read: "
                f"exit code unknown, counted as failed ({EXIT_CODE_UNKNOWN})",
                flush=True,
            )
            return EXIT_CODE_UNKNOWN
    finally:
        with contextlib.suppress(docker.errors.APIError):  # NotFound included: already gone
            container.remove(force=True)


def run_pipeline(image_env: dict[str, str], network: str, root: Path, socket: str) -> list[StepResult]:
    """Every step of the compiled CPU pipeline, each in its own container of the image."""
    import docker
    from kfp import components, local
    from kfp.local import docker_task_handler

    os.environ["DOCKER_HOST"] = socket
    _podman_gone_as_not_found()
    docker_task_handler.run_docker_container = run_step_container
    params = pipeline_parameters(COMPILED_CPU)
    arguments = {k: v for k, v in TINY_PARAMS.items() if k in params}
    local.init(
        runner=local.DockerRunner(
            network_mode=network,
            environment=image_env,
            ulimits=[
                docker.types.Ulimit(name=n, soft=int(v.split(":")[0]), hard=int(v.split(":")[1]))
                for n, v in (u.split("=") for u in ULIMITS)
            ],
        ),
        pipeline_root=str(writable_dir(root)),
        raise_on_error=False,
    )
    pipeline = components.load_component_from_file(str(COMPILED_CPU))
    log = root.parent / "pipeline.log"
    with log.open("w") as sink, _tee(sink) as lines:
        pipeline(**arguments)
    return _step_results(lines)


@contextmanager
def _tee(sink: Any) -> Iterator[list[str]]:
    """Copy stdout and stderr to the log file while keeping the lines for the step summary."""
    import contextlib
    import io

    lines: list[str] = []
    console = sys.stdout  # the real one: printing to the redirected stream would loop back here

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            sink.write(text)
            clean = re.sub(r"\x1b\[[0-9;]*m", "", text)
            lines.extend(clean.splitlines())
            for line in clean.splitlines():
                if re.search(r"Executing task '|Task '.*' finished with status", line):
                    print("  " + line.split(" - ")[-1].strip(), file=console, flush=True)
            return len(text)

    tee = Tee()
    with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
        yield lines


def _step_results(lines: list[str]) -> list[StepResult]:
    started: dict[str, float] = {}
    results: list[StepResult] = []
    stamp = r"(\d\d):(\d\d):(\d\d)\.(\d+)"
    for line in lines:
        time_match = re.match(stamp, line)
        at = 0.0
        if time_match:
            h, m, s, frac = time_match.groups()
            at = int(h) * 3600 + int(m) * 60 + int(s) + float("0." + frac)
        if (match := re.search(r"Executing task '([\w-]+)'", line)) is not None:
            started[match.group(1)] = at
        elif (match := re.search(r"Task '([\w-]+)' finished with status (\w+)", line)) is not None:
            name, status = match.groups()
            results.append(StepResult(name, status, max(0.0, at - started.get(name, at))))
    return results


def check(image: str, runtime: str | None, keep: bool) -> int:
    started = time.monotonic()
    podman = find_podman(runtime)
    dockerfile = ROOT / "images" / "Dockerfile"
    base = ensure_base(podman, dockerfile_default_base(dockerfile))
    images = sorted(compiled_images(COMPILED_CPU) | {image})
    pip = pip_settings(
        subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
        ).stdout,
        dict(os.environ),
    )
    say(f"building images/Dockerfile on {base} as {', '.join(images)}")
    build_start = time.monotonic()
    build_image(podman, images, base, pip)
    build_s = time.monotonic() - build_start
    size = podman.run("image", "inspect", "--format", "{{.Size}}", images[0]).stdout.strip()

    basin = render("basin/overlays/emulator")
    serving = render("serving")
    secret = _data(find(basin, "Secret", "modelopsx-basin"))
    work = Path(tempfile.mkdtemp(prefix="modelopsx-image-check-"))
    work.chmod(0o755)
    name = f"modelopsx-image-check-{os.getpid()}"
    try:
        # 1. The emulator, as the kind overlay runs it: its Deployment's command, env, user, read-only root.
        emulator = find(basin, "Deployment", "basin-s3")
        pod = emulator["spec"]["template"]["spec"]
        container = pod_containers(emulator)["basin-s3"]
        env = container_env(container, basin)
        argv = command_line(container, env)
        root_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("--root=")), "/data")
        podman.run(
            "run",
            "-d",
            "--name",
            name,
            "--network=none",
            *security_args(pod, container),
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            env.get("HOME", "/home/basin"),
            "-v",
            f"{writable_dir(work / 'basin')}:{root_dir}",
            *env_args(env),
            images[0],
            *argv,
        )
        _wait_for_port(podman, name)
        say(f"Basin emulator up in the image (read-only root, uid {pod['securityContext']['runAsUser']})")
        loopback = {**secret, "endpoint": f"http://127.0.0.1:{BASIN_PORT}"}  # the Service, here: the netns

        # 2. The seed Job, twice: the first publishes, the second finds the dataset and adds nothing.
        job = find(basin, "Job", "modelopsx-seed-dataset")
        seed = pod_containers(job)["seed"]
        seed_env = {
            **container_env(seed, basin),
            "IMAGES": SEED_IMAGES,
            "MODELOPSX_BASIN_ENDPOINT": loopback["endpoint"],
        }
        outcomes = []
        for _ in range(2):
            ran = podman.run(
                "run",
                "--rm",
                f"--network=container:{name}",
                *security_args(job["spec"]["template"]["spec"], seed),
                "--tmpfs",
                "/tmp",
                *env_args(seed_env),
                images[0],
                *command_line(seed, seed_env),
                timeout=900,
            )
            outcomes.append(ran.stdout.strip().splitlines()[-1:] or [""])
        say(f"seed Job: first run published ({outcomes[0][0]}); second: {outcomes[1][0]}")
        if "nothing to publish" not in outcomes[1][0]:
            raise CheckFailed("the seed Job published again on a Basin that already holds the dataset")

        # 3. Every step of the compiled CPU pipeline, in containers of the image.
        step_env = compiled_secret_env(COMPILED_CPU, loopback)
        with docker_api(podman, work) as socket:
            steps = run_pipeline(step_env, f"container:{name}", work / "pipeline-root", socket)
        for step in steps:
            say(f"  step {step.name:<12} {step.status:<8} {step.seconds:6.1f} s")
        failed = [s.name for s in steps if s.status != "SUCCESS"]
        if failed or not steps:
            raise CheckFailed(
                f"pipeline steps failed: {', '.join(failed) or 'none ran'} (log: {work / 'pipeline.log'})"
            )
        evaluations = _registry_json(podman, name, loopback, "evaluations", "pedestrian-detector")
        gated = [e["decision"] for e in evaluations if e.get("decision")]
        decision = Decision.from_json(gated[-1], where="in the image's registry") if gated else None
        say(f"gate decision in the registry: {decision.decision if decision else None}")

        # 4. The model puller from the serving Deployment (its Secret is the Basin overlay's), one pass.
        deployment = find(serving, "Deployment", "pedestrian-detector-serving")
        puller = pod_containers(deployment)["model-puller"]
        puller_env = {
            **container_env(puller, serving + basin),
            "ONCE": "1",
            "MODELOPSX_BASIN_ENDPOINT": loopback["endpoint"],
        }
        models = writable_dir(work / "models")
        script_dir = next(m["mountPath"] for m in puller["volumeMounts"] if m["name"] == "puller")
        mounts = [
            "-v",
            f"{models}:/models",
            "-v",
            f"{writable_dir(work / 'staging')}:/staging",
            "-v",
            f"{ROOT / 'manifests' / 'serving'}:{script_dir}:ro",
        ]
        pulled = podman.run(
            "run",
            "--rm",
            f"--network=container:{name}",
            *security_args(deployment["spec"]["template"]["spec"], puller),
            *mounts,
            *env_args(puller_env),
            images[0],
            *command_line(puller, puller_env),
            timeout=600,
        )
        versions = sorted(p.parent.name for p in (models / puller_env["MODEL_NAME"]).glob("*/saved_model.pb"))
        say(f"model puller: {pulled.stdout.strip().splitlines()[-1:] or ['(no output)']}; served: {versions}")
        if decision is None or not decision.promote:
            verdict = decision.decision if decision else None
            raise CheckFailed(f"the gate decided {verdict!r}; this check's policy promotes the first model")
        if not versions:
            raise CheckFailed("the gate promoted but the model puller published no version")
        say(
            f"PASSED in {time.monotonic() - started:.0f} s (build {build_s:.0f} s); image size "
            f"{int(size) / 1e6:.0f} MB"
            if size.isdigit()
            else f"PASSED; image size {size}"
        )
        return 0
    finally:
        podman.run("rm", "-f", name, check=False)
        if keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _wait_for_port(podman: Podman, name: str, timeout: float = 60.0) -> None:
    probe = f"import socket; socket.create_connection(('127.0.0.1', {BASIN_PORT}), 1).close()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if podman.run("exec", name, "python", "-c", probe, check=False).returncode == 0:
            return
        time.sleep(1)
    logs = podman.run("logs", name, check=False)
    raise CheckFailed(f"the emulator did not listen on {BASIN_PORT}: {(logs.stdout + logs.stderr)[-2000:]}")


def _registry_json(podman: Podman, name: str, basin: dict[str, str], kind: str, record: str) -> Any:
    env = {
        "MODELOPSX_BASIN_ENDPOINT": basin["endpoint"],
        "MODELOPSX_BASIN_ACCESS_KEY": basin["access-key"],
        "MODELOPSX_BASIN_SECRET_KEY": basin["secret-key"],
        "MODELOPSX_BASIN_STORE": basin["store"],
    }
    out = podman.run("exec", *env_args(env), name, "modelopsx", "registry", "list", kind, record, "--json")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]  # JSON lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--image", default="ghcr.io/modelopsx/modelopsx:0.1.0", help="tag for the built image"
    )
    parser.add_argument(
        "--runtime",
        default="runc",
        help="OCI runtime for podman when installed (runc; crun fails on some hosts)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, models, Basin data)")
    args = parser.parse_args(argv)
    try:
        return check(args.image, args.runtime, args.keep)
    except Skip as exc:
        say(f"SKIPPED: {exc}")
        return 0
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"image-check: FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
