"""The train step beyond one node: a Kubeflow Trainer v2 TrainJob on the modelopsx-tf-multiworker runtime.

The pipeline's train step (`stages.train` with train_workers > 1) stays the step KFP sees. It:
1. checks that the Trainer and this project's runtime are installed (else fails at once, saying what to
   install);
2. puts the run's inputs in the store under `trainjobs/<job>/` (the split, the resolved starting weights, the
   resolved training settings);
3. creates the TrainJob (`render_trainjob`) and waits for it, printing its conditions and its pods' phases;
4. on success copies the chief's exported model from the store into its output artifact; on failure raises
   with the failed worker's last log lines; when the run is cancelled (SIGTERM) deletes the TrainJob.

Each worker pod runs `python -m modelopsx.workflow.trainjob` (the runtime's command): it reads the job
description from MODELOPSX_TRAIN_JOB, downloads the split, trains (modelopsx.model.distributed builds
TF_CONFIG from the JobSet environment) and, on the chief, uploads the model.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from modelopsx import settings
from modelopsx.errors import PipelineError, UserError
from modelopsx.model import distributed
from modelopsx.model.layout import MODEL_JSON

TRAINER_VERSION = "v2.3.0"  # the Kubeflow Trainer release the runtime and the vendored CRD schemas match
API_GROUP = "trainer.kubeflow.org"
API_VERSION = "v1alpha1"
TRAINJOB_PLURAL = "trainjobs"
RUNTIME_KIND = "ClusterTrainingRuntime"
RUNTIME_PLURAL = "clustertrainingruntimes"
RUNTIME_NAME = "modelopsx-tf-multiworker"
GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER_NAME = "node"  # the Trainer applies a TrainJob's trainer settings to the container named "node"
JOB_ENV = "MODELOPSX_TRAIN_JOB"
OUT_DIR_ENV = "MODELOPSX_OUT_DIR"  # where a worker trains (default: a temporary directory)
PREFIX = "trainjobs"
POLL_SECONDS = 10.0
LOG_LINES = 40
INSTALL_HINT = (
    "install Kubeflow Trainer "
    f"{TRAINER_VERSION} and this project's runtime: kubectl apply --server-side -k "
    f'"https://github.com/kubeflow/trainer.git/manifests/overlays/manager?ref={TRAINER_VERSION}" '
    "&& kubectl apply -k manifests/trainer/runtime (make kind-up does both); or set train_workers to 1"
)


def job_name() -> str:
    """A fresh DNS-1035 name (JobSet derives pod hostnames from it, so it stays short)."""
    return f"modelopsx-train-{uuid.uuid4().hex[:8]}"


def render_trainjob(
    name: str,
    namespace: str,
    workers: int,
    image: str,
    job: Mapping[str, Any],
    accelerator_type: str = "",
    accelerator_count: str = "1",
    secret_env: Mapping[str, str] | None = None,
    secret_name: str = "",
) -> dict[str, Any]:
    """The TrainJob for `workers` workers of `image`, each given the job description and Basin credentials."""
    workers = distributed.parse_worker_count(workers)
    if workers < 2:
        raise PipelineError(f"a TrainJob needs 2 or more workers, got {workers}", hint="1 trains in the step")
    env: list[dict[str, Any]] = [
        {"name": distributed.WORKERS_ENV, "value": str(workers)},
        {"name": distributed.IMAGE_ENV, "value": image},
        {"name": JOB_ENV, "value": json.dumps(dict(job), sort_keys=True)},
    ]
    for key, var in (secret_env or {}).items():
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}})
    trainer: dict[str, Any] = {"image": image, "numNodes": workers, "env": env}
    if accelerator_type:
        count = int(accelerator_count or "1")
        trainer["resourcesPerNode"] = {
            "limits": {accelerator_type: count},
            "requests": {accelerator_type: count},
        }
    else:  # CPU workers (kind): no GPU, whatever the runtime's default asks for
        trainer["resourcesPerNode"] = {"limits": {GPU_RESOURCE: 0}, "requests": {"cpu": "1"}}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "TrainJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "modelopsx", "modelopsx.io/step": "train"},
        },
        "spec": {
            "runtimeRef": {"apiGroup": API_GROUP, "kind": RUNTIME_KIND, "name": RUNTIME_NAME},
            "trainer": trainer,
        },
    }


# ------------------------------------------------------------------------------------------------ worker


def worker_main(env: Mapping[str, str] | None = None) -> int:
    """One worker of the TrainJob: download the split, train, and (chief) upload the model."""
    from modelopsx.model.config import TrainConfig
    from modelopsx.model.train import train_model
    from modelopsx.storage.stores import open_store
    from modelopsx.storage.sync import sync

    env = os.environ if env is None else env
    try:
        job = json.loads(env[JOB_ENV])
    except (KeyError, ValueError) as exc:
        print(f"error: {JOB_ENV} is missing or not JSON ({exc})", file=sys.stderr)
        return 2
    try:
        cluster = distributed.cluster_from_env()
        index = cluster.index if cluster else 0
        with tempfile.TemporaryDirectory(prefix="modelopsx-trainjob-") as tmp:
            split = Path(tmp) / "split"
            print(f"worker {index}: downloading the split from {job['data']}", flush=True)
            summary = sync(open_store(job["data"]), open_store(split))
            if summary.failed:
                raise PipelineError(f"could not download the split from {job['data']}: {summary.failed}")
            out = Path(env.get(OUT_DIR_ENV) or Path(tmp) / "model")
            config = TrainConfig.from_json(job["config"])
            train_model(split, out, config, quiet=False, weights_label=job.get("weights_label"))
            if cluster is None or cluster.is_chief:
                print(f"worker {index}: uploading the model to {job['model']}", flush=True)
                result = sync(open_store(out), open_store(job["model"]), last=lambda k: k == MODEL_JSON)
                if result.failed:
                    raise PipelineError(f"could not upload the model to {job['model']}: {result.failed}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


# ------------------------------------------------------------------------------------------------ cluster


def current_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.is_file() else (settings.env("NAMESPACE") or "kubeflow")


def _kube_clients() -> tuple[Any, Any]:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise PipelineError(
                f"no Kubernetes cluster to create the TrainJob in ({exc})",
                hint="train_workers > 1 runs on a cluster with Kubeflow Trainer; locally use train_workers 1",
            ) from None
    return client.CustomObjectsApi(), client.CoreV1Api()


def require_trainer(custom: Any) -> None:
    """Fail at once, saying what to install, when the TrainJob API or the runtime is missing."""
    from kubernetes.client.exceptions import ApiException

    try:
        custom.get_cluster_custom_object(API_GROUP, API_VERSION, RUNTIME_PLURAL, RUNTIME_NAME)
    except ApiException as exc:
        if exc.status == 404:
            raise PipelineError(
                f"Kubeflow Trainer's {RUNTIME_KIND} {RUNTIME_NAME!r} is not installed on this cluster "
                f"({API_GROUP}/{API_VERSION}: {exc.reason})",
                hint=INSTALL_HINT,
            ) from None
        raise PipelineError(
            f"cannot read {RUNTIME_KIND} {RUNTIME_NAME!r}: {exc.status} {exc.reason}"
        ) from None


@contextmanager
def delete_on_cancel(delete: Callable[[], None]) -> Iterator[None]:
    """KFP cancels a run by terminating its pods (SIGTERM): delete the TrainJob before the step exits."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        print("run cancelled: deleting the TrainJob", flush=True)
        delete()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def condition_summary(status: Mapping[str, Any]) -> tuple[str, str]:
    """('Complete' | 'Failed' | '', text) from a TrainJob's status conditions."""
    conditions = status.get("conditions") or []
    for kind in ("Failed", "Complete"):
        for cond in conditions:
            if cond.get("type") == kind and cond.get("status") == "True":
                return kind, f"{kind}: {cond.get('reason', '')} {cond.get('message', '')}".strip()
    text = ", ".join(f"{c.get('type')}={c.get('status')}" for c in conditions) or "created"
    return "", text


def wait_for(custom: Any, core: Any, name: str, namespace: str, poll_s: float = POLL_SECONDS) -> None:
    """Poll the TrainJob, printing each change; raise with the failed workers' last log lines."""
    selector = f"jobset.sigs.k8s.io/jobset-name={name}"
    last = ""
    while True:
        obj = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, TRAINJOB_PLURAL, name)
        outcome, text = condition_summary(obj.get("status") or {})
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        phases = ", ".join(sorted(f"{p.metadata.name}={p.status.phase}" for p in pods)) or "no pods yet"
        line = f"TrainJob {name}: {text}; pods: {phases}"
        if line != last:
            print(line, flush=True)
            last = line
        if outcome == "Complete":
            return
        if outcome == "Failed":
            raise PipelineError(f"TrainJob {name} failed: {text}\n" + failed_logs(core, pods, namespace))
        time.sleep(poll_s)


def failed_logs(core: Any, pods: list[Any], namespace: str) -> str:
    failed = [p for p in pods if p.status.phase == "Failed"] or pods
    parts = []
    for pod in failed[:4]:
        try:
            logs = core.read_namespaced_pod_log(
                pod.metadata.name, namespace, container=CONTAINER_NAME, tail_lines=LOG_LINES
            )
        except Exception as exc:  # a pod already gone: say so instead of hiding the failure
            logs = f"(logs unavailable: {exc})"
        parts.append(f"--- last {LOG_LINES} lines of {pod.metadata.name} ---\n{logs}")
    return "\n".join(parts)


def train_on_cluster(
    split_dir: Path,
    out_dir: Path,
    config_json: dict[str, Any],
    weights_file: Path | None,
    weights_label: str | None,
    workers: int,
    image: str,
    accelerator_type: str,
    accelerator_count: str,
    store_url: str,
    secret_env: Mapping[str, str],
    secret_name: str,
) -> None:
    """Run the training as a TrainJob and leave the chief's model in out_dir (see the module docstring)."""
    from modelopsx.storage.stores import open_store
    from modelopsx.storage.sync import sync

    custom, core = _kube_clients()
    require_trainer(custom)
    name, namespace = job_name(), current_namespace()
    base = f"{store_url.rstrip('/')}/{PREFIX}/{name}"
    print(f"TrainJob {name}: uploading the split to {base}/data", flush=True)
    _checked(sync(open_store(split_dir), open_store(f"{base}/data")), "upload the split")
    config = dict(config_json)
    if weights_file is not None:
        key = f"{PREFIX}/{name}/weights/{weights_file.name}"
        open_store(store_url).put(key, weights_file.read_bytes())
        config["weights"] = f"{store_url.rstrip('/')}/{key}"
    job = {"data": f"{base}/data", "model": f"{base}/model", "config": config, "weights_label": weights_label}
    body = render_trainjob(
        name, namespace, workers, image, job, accelerator_type, accelerator_count, secret_env, secret_name
    )

    def delete() -> None:
        custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, TRAINJOB_PLURAL, name)

    custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, TRAINJOB_PLURAL, body)
    print(f"TrainJob {namespace}/{name}: {workers} workers of {image}", flush=True)
    with delete_on_cancel(delete):
        wait_for(custom, core, name, namespace)
    _checked(sync(open_store(f"{base}/model"), open_store(out_dir)), "download the chief's model")
    delete()


def _checked(summary: Any, what: str) -> None:
    if summary.failed:
        raise PipelineError(f"could not {what}: {summary.failed}")


if __name__ == "__main__":
    code = worker_main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without TensorFlow's teardown: with several workers it shuts the coordination service down
    # against peers that already left, which turns a finished training into a failed exit.
    os._exit(code)
