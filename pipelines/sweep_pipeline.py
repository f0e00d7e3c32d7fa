"""The sweep pipeline: one dataset, many training trials in parallel, the best one goes through the gate.

ingest -> split -> augment -> check_trials -> ParallelFor(trials){train -> evaluate} -> Collected ->
select_best(selection_metric, on validation) -> basin_sync -> compare -> deploy (only on "promote").
A trial is an object of training settings laid over the base parameters, e.g. {"learning_rate": 0.0003}.
"""

from collections.abc import Callable
from typing import Any

from kfp import dsl

from components.augment import augment
from components.evaluate import evaluate
from components.ingest import ingest
from components.split import split
from components.sweep import check_trials, select_best
from components.train import train_cpu, train_gpu
from pipelines import common
from pipelines.training_pipeline import add_release_steps

PIPELINE_NAME = "modelopsx-sweep"
CPU_PIPELINE_NAME = "modelopsx-sweep-cpu"
DEFAULT_TRIALS: list[dict[str, Any]] = [{"learning_rate": 0.001}, {"learning_rate": 0.0003}]


def build_sweep_pipeline(gpu: bool) -> Callable[..., Any]:
    train_component = train_gpu if gpu else train_cpu

    @dsl.pipeline(
        name=PIPELINE_NAME if gpu else CPU_PIPELINE_NAME,
        description="Parameter sweep: train and evaluate every trial (a JSON object of training settings) in "
        "parallel, gate the best by selection_metric." + common.PRESET_NOTE,
    )
    def sweep_pipeline(
        trials: list = DEFAULT_TRIALS,  # noqa: B006  (pipeline parameter default, never mutated)
        selection_metric: str = "f1",
        dataset_name: str = common.DEFAULT_DATASET,
        dataset_version: str = "latest",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_salt: str = "",
        augment_copies: int = common.augment_copies(gpu),
        augment_seed: int = 0,
        backbone: str = "",
        input_height: int = 0,
        input_width: int = 0,
        epochs: int = 0,
        batch_size: int = 0,
        learning_rate: float = 0.0,
        weights: str = "",
        seed: int = 0,
        train_preset: str = common.train_preset(gpu),
        train_overrides: dict = {},  # noqa: B006  (any TrainConfig field; never mutated)
        model_name: str = common.DEFAULT_MODEL_NAME,
        gate_policy: str = "",
        serving_uri: str = "",
        accelerator_type: str = common.DEFAULT_ACCELERATOR_TYPE,
        accelerator_count: str = common.DEFAULT_ACCELERATOR_COUNT,
        gpu_node_selector: dict = common.DEFAULT_GPU_NODE_SELECTOR,  # noqa: B006
        gpu_tolerations: list = common.DEFAULT_GPU_TOLERATIONS,  # noqa: B006
    ) -> None:
        trials_task = check_trials(
            trials=trials, selection_metric=selection_metric
        )  # fail before any data moves or GPU is taken
        ingest_task = common.with_basin(ingest(dataset_name=dataset_name, dataset_version=dataset_version))
        ingest_task.set_caching_options(False)
        ingest_task.after(trials_task)
        split_task = split(
            dataset=ingest_task.outputs["dataset"],
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            salt=split_salt,
        )
        augment_task = augment(splits=split_task.outputs["splits"], copies=augment_copies, seed=augment_seed)
        data = augment_task.outputs["augmented"]
        with dsl.ParallelFor(trials_task.output, name="trials") as trial:
            train_task = common.with_basin(
                train_component(
                    data=data,
                    backbone=backbone,
                    input_height=input_height,
                    input_width=input_width,
                    epochs=epochs,
                    batch_size=batch_size,
                    learning_rate=learning_rate,
                    weights=weights,
                    seed=seed,
                    preset=train_preset,
                    overrides=train_overrides,
                    trial=trial,
                    model_name=model_name,
                ),
                retry=False,
            )
            train_task.set_caching_options(False)  # starts from the current champion
            if gpu:
                common.on_gpu(
                    train_task, accelerator_type, accelerator_count, gpu_node_selector, gpu_tolerations
                )
            evaluate_task = evaluate(model=train_task.outputs["model"], data=data)
        best = select_best(
            models=dsl.Collected(train_task.outputs["model"]),
            evaluations=dsl.Collected(evaluate_task.outputs["evaluation"]),
            metric=selection_metric,
        )
        add_release_steps(
            best.outputs["best_model"],
            best.outputs["best_evaluation"],
            data,
            model_name,
            gate_policy,
            serving_uri,
        )

    return sweep_pipeline
