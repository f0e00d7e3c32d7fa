"""The training pipeline: ingest -> split -> augment -> train -> evaluate -> basin_sync -> compare -> deploy.

`build_training_pipeline(gpu=True)` is the cluster pipeline: the train step requests GPUs from the `str`
parameters accelerator_type / accelerator_count and is placed by the JSON parameters gpu_node_selector and
gpu_tolerations. `gpu=False` is the CPU fallback (kind, kfp.local): the same steps without any accelerator,
node selector or toleration, and the quick local training defaults. Parameters and blocks: pipelines.blocks.
"""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from modelopsx.pipelines import blocks, common

PIPELINE_NAME = "modelopsx-training"
CPU_PIPELINE_NAME = "modelopsx-training-cpu"
DESCRIPTIONS = {
    True: "Train, evaluate, gate and deploy the pedestrian detector on GPU nodes; every artifact mirrored to "
    "Basin.",
    False: "CPU fallback of the training pipeline (kind clusters, kfp.local): no accelerator, no GPU node "
    "placement, the quick local preset.",
}


def build_training_pipeline(gpu: bool) -> Callable[..., Any]:
    def body(p: SimpleNamespace) -> None:
        augment_task = blocks.data(p)
        data = augment_task.outputs["augmented"]
        train_task, evaluate_task = blocks.train_and_evaluate(p, data, gpu)
        blocks.release(p, train_task.outputs["model"], evaluate_task.outputs["evaluation"], data)

    return blocks.make_pipeline(
        PIPELINE_NAME if gpu else CPU_PIPELINE_NAME,
        DESCRIPTIONS[gpu] + common.PRESET_NOTE,
        blocks.parameters(gpu),
        body,
    )
