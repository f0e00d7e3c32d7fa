"""Ingest: resolve a dataset version ("latest" included) in the registry, pull it from Basin, validate it."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def ingest(dataset_name: str, dataset_version: str, dataset: Output[Dataset]) -> str:
    """Returns the resolved version; the artifact metadata carries its DVC and content hashes."""
    from modelopsx.workflow import stages

    dataset.metadata.update(stages.ingest(dataset_name, dataset_version, dataset.path))
    return str(dataset.metadata["dataset_version"])
