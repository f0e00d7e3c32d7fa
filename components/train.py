"""Train: the Keras detector on the train split (validated on val), exported in the MODEL_DIR layout.

Two components from one function: `train` runs in the CPU image, `train_gpu` in the GPU image.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from modelopsx.workflow.images import MODELOPSX_GPU_IMAGE, MODELOPSX_IMAGE


def train(
    data: Input[Dataset],
    backbone: str,
    input_height: int,
    input_width: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weights: str,
    seed: int,
    preset: str,
    overrides: dict,
    trial: dict,
    model_name: str,
    train_workers: int,
    accelerator_type: str,
    accelerator_count: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Settings: the model's `preset`, the named ones that are set (0 / empty keep the preset's value),
    `overrides` (any other TrainConfig field), then a sweep `trial`. Unless `weights` is set, training
    starts from `model_name`'s champion when its architecture matches. With `train_workers` > 1 the step
    hands the training to a Kubeflow Trainer TrainJob of that many workers, each given `accelerator_count`
    GPUs, and waits for it."""
    from modelopsx.workflow import stages
    from modelopsx.workflow.images import MODELOPSX_GPU_IMAGE, MODELOPSX_IMAGE

    params = {
        "backbone": backbone,
        "input_height": input_height,
        "input_width": input_width,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "weights": weights,
        "seed": seed,
    }
    placement = {
        "image": MODELOPSX_GPU_IMAGE if accelerator_type else MODELOPSX_IMAGE,
        "accelerator_type": accelerator_type,
        "accelerator_count": accelerator_count,
    }
    meta = stages.train(
        data.path, model.path, params, overrides, preset, trial, model_name, train_workers, placement
    )
    model.metadata.update(meta)
    model.metadata["dataset_version"] = data.metadata.get("dataset_version", "")
    for name, value in meta["training_metrics"].items():
        metrics.log_metric(name, value)


train_cpu = dsl.component(train, base_image=MODELOPSX_IMAGE, install_kfp_package=False)
train_gpu = dsl.component(train, base_image=MODELOPSX_GPU_IMAGE, install_kfp_package=False)
