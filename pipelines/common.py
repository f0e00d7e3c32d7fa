"""Wiring shared by the training and sweep pipelines: Basin credentials, retries, GPU placement, defaults."""

from __future__ import annotations

from typing import Any

from kfp import dsl, kubernetes

from modelopsx.settings import BASIN_SECRET, BASIN_SECRET_ENV, DEFAULT_MODEL_NAME

# Basin calls already retry inside the client; this retries a whole step after e.g. an adapter restart.
BASIN_RETRIES = 3
BASIN_BACKOFF = "30s"
BASIN_BACKOFF_FACTOR = 2.0

DEFAULT_ACCELERATOR_TYPE = "nvidia.com/gpu"
DEFAULT_ACCELERATOR_COUNT = "1"
# Labels set by NVIDIA's GPU operator / feature discovery, and the taint GPU node pools usually carry.
DEFAULT_GPU_NODE_SELECTOR: dict[str, str] = {"nvidia.com/gpu.present": "true"}
DEFAULT_GPU_TOLERATIONS: list[dict[str, str]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
]

DEFAULT_DATASET = "synthetic"
__all__ = ["DEFAULT_MODEL_NAME"]  # defined with the library's settings; the pipelines' default model name


def with_basin(task: dsl.PipelineTask, retry: bool = True) -> dsl.PipelineTask:
    """Basin credentials from the Secret as env vars; retries with backoff for steps that talk to Basin."""
    kubernetes.use_secret_as_env(task, secret_name=BASIN_SECRET, secret_key_to_env=BASIN_SECRET_ENV)
    if retry:
        task.set_retry(
            num_retries=BASIN_RETRIES, backoff_duration=BASIN_BACKOFF, backoff_factor=BASIN_BACKOFF_FACTOR
        )
    return task


def on_gpu(
    task: dsl.PipelineTask,
    accelerator_type: Any,
    accelerator_count: Any,
    node_selector: Any,
    tolerations: Any,
) -> dsl.PipelineTask:
    """Request GPUs from the (str) pipeline parameters and place the pod on GPU nodes."""
    task.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)
    kubernetes.add_node_selector_json(task, node_selector)
    kubernetes.add_toleration_json(task, tolerations)
    return task


PRESET_NOTE = (
    " Training settings left at 0 or empty take the value of train_preset (the model's own presets:"
    " default, local, cpu); weights 'none' trains from scratch; train_overrides sets any other field."
)


def train_preset(gpu: bool) -> str:
    """The model's preset the named training parameters fall back to (modelopsx.model.settings)."""
    return "default" if gpu else "local"


def augment_copies(gpu: bool) -> int:
    # The quick CPU preset is timed on the plain split (tf.data augments online); on GPU materialize one copy.
    return 1 if gpu else 0
