"""Basin sync: mirror the model and its evaluation to Basin (DVC layout) and register the model version."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def basin_sync(
    model: Input[Model], evaluation: Input[Artifact], data: Input[Dataset], model_name: str, run_id: str
) -> NamedTuple(  # type: ignore[valid-type]
    "SyncOutputs", model_version=int, model_dvc_hash=str, evaluation_dvc_hash=str, cids=dict
):
    """Outputs the registry's model version, the DVC hashes of model and evaluation, and every file's CID."""
    from modelopsx.workflow import stages

    record = stages.sync_to_basin(model.path, evaluation.path, model_name, dict(data.metadata), run_id)
    return record["seq"], record["dvc_hash"], record["evaluation_dvc_hash"], record["cids"]
