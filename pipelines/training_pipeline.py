"""The training pipeline: ingest -> split -> augment -> train -> evaluate -> basin_sync -> compare -> deploy.

`build_training_pipeline(gpu=True)` is the cluster pipeline: the train step requests GPUs from the `str`
parameters accelerator_type / accelerator_count and is placed by the JSON parameters gpu_node_selector and
gpu_tolerations. `gpu=False` is the CPU fallback (kind, kfp.local): the same steps without any accelerator,
node selector or toleration, and the quick local training defaults.
"""

from collections.abc import Callable
from typing import Any

from kfp import dsl

from components.augment import augment
from components.basin_sync import basin_sync
from components.compare import compare
from components.deploy import deploy
from components.evaluate import evaluate
from components.ingest import ingest
from components.split import split
from components.train import train_cpu, train_gpu
from pipelines import common

PIPELINE_NAME = "modelopsx-training"
CPU_PIPELINE_NAME = "modelopsx-training-cpu"


def add_release_steps(
    model: Any, evaluation: Any, data: Any, model_name: Any, gate_policy: Any, serving_uri: Any
) -> None:
    """basin_sync -> compare -> deploy (only on "promote"); shared with the sweep pipeline."""
    sync_task = common.with_basin(
        basin_sync(
            model=model,
            evaluation=evaluation,
            data=data,
            model_name=model_name,
            run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        )
    )
    gate_task = common.with_basin(
        compare(
            evaluation=evaluation,
            data=data,
            model_name=model_name,
            model_version=sync_task.outputs["model_version"],
            evaluation_dvc_hash=sync_task.outputs["evaluation_dvc_hash"],
            gate_policy=gate_policy,
        )
    )
    gate_task.set_caching_options(False)  # reads the current champion: never reuse an old decision
    with dsl.If(gate_task.outputs["Output"] == "promote", name="promoted"):
        common.with_basin(
            deploy(
                model=model,
                decision_record=gate_task.outputs["decision_record"],
                model_name=model_name,
                model_version=sync_task.outputs["model_version"],
                serving_uri=serving_uri,
            )
        )


def build_training_pipeline(gpu: bool) -> Callable[..., Any]:

    def data_and_training(
        dataset_name: Any,
        dataset_version: Any,
        val_fraction: Any,
        test_fraction: Any,
        split_salt: Any,
        augment_copies: Any,
        augment_seed: Any,
    ) -> Any:
        ingest_task = common.with_basin(ingest(dataset_name=dataset_name, dataset_version=dataset_version))
        ingest_task.set_caching_options(False)  # "latest" must be resolved afresh on every run
        split_task = split(
            dataset=ingest_task.outputs["dataset"],
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            salt=split_salt,
        )
        return augment(splits=split_task.outputs["splits"], copies=augment_copies, seed=augment_seed)

    if gpu:

        @dsl.pipeline(
            name=PIPELINE_NAME,
            description="Train, evaluate, gate and deploy the pedestrian "
            "detector on GPU nodes; every artifact mirrored to Basin." + common.PRESET_NOTE,
        )
        def training_pipeline(
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
            augment_task = data_and_training(
                dataset_name,
                dataset_version,
                val_fraction,
                test_fraction,
                split_salt,
                augment_copies,
                augment_seed,
            )
            train_task = common.with_basin(
                train_gpu(
                    data=augment_task.outputs["augmented"],
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
                    trial={},
                    model_name=model_name,
                ),
                retry=False,
            )
            train_task.set_caching_options(False)  # starts from the current champion
            common.on_gpu(train_task, accelerator_type, accelerator_count, gpu_node_selector, gpu_tolerations)
            evaluate_task = evaluate(
                model=train_task.outputs["model"], data=augment_task.outputs["augmented"]
            )
            add_release_steps(
                train_task.outputs["model"],
                evaluate_task.outputs["evaluation"],
                augment_task.outputs["augmented"],
                model_name,
                gate_policy,
                serving_uri,
            )

        return training_pipeline

    @dsl.pipeline(
        name=CPU_PIPELINE_NAME,
        description="CPU fallback of the training pipeline (kind clusters, "
        "kfp.local): no accelerator, no GPU node placement, the quick local preset." + common.PRESET_NOTE,
    )
    def training_pipeline_cpu(
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
    ) -> None:
        augment_task = data_and_training(
            dataset_name,
            dataset_version,
            val_fraction,
            test_fraction,
            split_salt,
            augment_copies,
            augment_seed,
        )
        train_task = common.with_basin(
            train_cpu(
                data=augment_task.outputs["augmented"],
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
                trial={},
                model_name=model_name,
            ),
            retry=False,
        )
        train_task.set_caching_options(False)  # starts from the current champion
        evaluate_task = evaluate(model=train_task.outputs["model"], data=augment_task.outputs["augmented"])
        add_release_steps(
            train_task.outputs["model"],
            evaluate_task.outputs["evaluation"],
            augment_task.outputs["augmented"],
            model_name,
            gate_policy,
            serving_uri,
        )

    return training_pipeline_cpu
