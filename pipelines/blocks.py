"""The pipelines' parameters and building blocks, each written once.

A pipeline is a list of parameters plus a body that wires blocks: `data` (ingest -> split -> augment), `train`
(on CPU or placed on GPU nodes), `release` (basin_sync -> compare -> deploy on "promote"). `make_pipeline`
turns them into a KFP pipeline function whose signature is the parameter list, so adding a parameter is one
line in PARAMETERS (and its use in one block).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from kfp import dsl
from modelopsx.components.augment import augment
from modelopsx.components.basin_sync import basin_sync
from modelopsx.components.compare import compare
from modelopsx.components.deploy import deploy
from modelopsx.components.evaluate import evaluate
from modelopsx.components.ingest import ingest
from modelopsx.components.split import split
from modelopsx.components.train import train_cpu, train_gpu
from modelopsx.pipelines import common

DEFAULT_TRIALS: list[dict[str, Any]] = [{"learning_rate": 0.001}, {"learning_rate": 0.0003}]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: type
    default: Any


def data_parameters(gpu: bool) -> tuple[Parameter, ...]:
    return (
        Parameter("dataset_name", str, common.DEFAULT_DATASET),
        Parameter("dataset_version", str, "latest"),
        Parameter("val_fraction", float, 0.15),
        Parameter("test_fraction", float, 0.15),
        Parameter("split_salt", str, ""),
        Parameter("augment_copies", int, common.augment_copies(gpu)),
        Parameter("augment_seed", int, 0),
    )


def training_parameters(gpu: bool) -> tuple[Parameter, ...]:
    """Settings left at 0 or empty take the preset's value (see modelopsx.model.settings)."""
    return (
        Parameter("backbone", str, ""),
        Parameter("input_height", int, 0),
        Parameter("input_width", int, 0),
        Parameter("epochs", int, 0),
        Parameter("batch_size", int, 0),
        Parameter("learning_rate", float, 0.0),
        Parameter("weights", str, ""),
        Parameter("seed", int, 0),
        Parameter("train_preset", str, common.train_preset(gpu)),
        Parameter("train_overrides", dict, {}),
        # 1: the train step trains in its own pod; N > 1: it runs a Kubeflow Trainer TrainJob of N workers
        # (runtime modelopsx-tf-multiworker, manifests/trainer) and waits for it
        Parameter("train_workers", int, 1),
    )


RELEASE_PARAMETERS = (
    Parameter("model_name", str, common.DEFAULT_MODEL_NAME),
    Parameter("gate_policy", str, ""),
    Parameter("serving_uri", str, ""),
)
GPU_PARAMETERS = (
    Parameter("accelerator_type", str, common.DEFAULT_ACCELERATOR_TYPE),
    Parameter("accelerator_count", str, common.DEFAULT_ACCELERATOR_COUNT),
    Parameter("gpu_node_selector", dict, common.DEFAULT_GPU_NODE_SELECTOR),
    Parameter("gpu_tolerations", list, common.DEFAULT_GPU_TOLERATIONS),
)
SWEEP_PARAMETERS = (
    Parameter("trials", list, DEFAULT_TRIALS),
    Parameter("selection_metric", str, "f1"),
)


def parameters(gpu: bool, sweep: bool = False) -> tuple[Parameter, ...]:
    """Every parameter of a pipeline, in the order the UI lists them."""
    head = SWEEP_PARAMETERS if sweep else ()
    tail = GPU_PARAMETERS if gpu else ()
    return head + data_parameters(gpu) + training_parameters(gpu) + RELEASE_PARAMETERS + tail


def make_pipeline(
    name: str, description: str, params: Sequence[Parameter], body: Callable[[SimpleNamespace], None]
) -> Callable[..., Any]:
    """A KFP pipeline whose signature is `params`; `body` gets them as attributes of one namespace."""
    signature = inspect.Signature(
        [
            inspect.Parameter(
                p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default, annotation=p.type
            )
            for p in params
        ]
    )

    def pipeline_func(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        body(SimpleNamespace(**bound.arguments))

    pipeline_func.__signature__ = signature  # type: ignore[attr-defined]  # KFP reads inspect.signature
    pipeline_func.__name__ = pipeline_func.__qualname__ = name.replace("-", "_")
    return dsl.pipeline(name=name, description=description)(pipeline_func)


# ------------------------------------------------------------------------------------------------ blocks


def data(p: SimpleNamespace, after: dsl.PipelineTask | None = None) -> dsl.PipelineTask:
    """ingest (never cached: "latest" is resolved afresh) -> split -> augment; returns the augment task."""
    ingest_task = common.with_basin(ingest(dataset_name=p.dataset_name, dataset_version=p.dataset_version))
    ingest_task.set_caching_options(False)
    if after is not None:
        ingest_task.after(after)
    split_task = split(
        dataset=ingest_task.outputs["dataset"],
        val_fraction=p.val_fraction,
        test_fraction=p.test_fraction,
        salt=p.split_salt,
    )
    return augment(splits=split_task.outputs["splits"], copies=p.augment_copies, seed=p.augment_seed)


def train(p: SimpleNamespace, data: Any, gpu: bool, trial: Any = None) -> dsl.PipelineTask:
    """The train step on CPU, or requesting GPUs and placed on GPU nodes; never cached, since unless weights
    are set it starts from the current champion, which its inputs do not name."""
    component = train_gpu if gpu else train_cpu
    task = common.with_basin(
        component(
            data=data,
            backbone=p.backbone,
            input_height=p.input_height,
            input_width=p.input_width,
            epochs=p.epochs,
            batch_size=p.batch_size,
            learning_rate=p.learning_rate,
            weights=p.weights,
            seed=p.seed,
            preset=p.train_preset,
            overrides=p.train_overrides,
            trial={} if trial is None else trial,
            model_name=p.model_name,
            train_workers=p.train_workers,
            accelerator_type=p.accelerator_type if gpu else "",
            accelerator_count=p.accelerator_count if gpu else "0",
        ),
        retry=False,
    )
    task.set_caching_options(False)
    if gpu:
        common.on_gpu(task, p.accelerator_type, p.accelerator_count, p.gpu_node_selector, p.gpu_tolerations)
    return task


def train_and_evaluate(p: SimpleNamespace, data: Any, gpu: bool, trial: Any = None) -> tuple[Any, Any]:
    """Returns the train and evaluate tasks."""
    train_task = train(p, data, gpu, trial)
    return train_task, evaluate(model=train_task.outputs["model"], data=data)


def release(p: SimpleNamespace, model: Any, evaluation: Any, data: Any) -> None:
    """basin_sync -> compare -> deploy (only on "promote"; deploy re-checks the decision itself)."""
    sync_task = common.with_basin(
        basin_sync(
            model=model,
            evaluation=evaluation,
            data=data,
            model_name=p.model_name,
            run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        )
    )
    gate_task = common.with_basin(
        compare(
            evaluation=evaluation,
            data=data,
            model_name=p.model_name,
            model_version=sync_task.outputs["model_version"],
            evaluation_dvc_hash=sync_task.outputs["evaluation_dvc_hash"],
            gate_policy=p.gate_policy,
        )
    )
    gate_task.set_caching_options(False)  # reads the current champion: never reuse an old decision
    with dsl.If(gate_task.outputs["Output"] == "promote", name="promoted"):
        common.with_basin(
            deploy(
                model=model,
                decision_record=gate_task.outputs["decision_record"],
                model_name=p.model_name,
                model_version=sync_task.outputs["model_version"],
                serving_uri=p.serving_uri,
            )
        )
