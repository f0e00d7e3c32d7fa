"""Split: group-hash split into train/val/test, so frames of one scene never leak across splits."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def split(
    dataset: Input[Dataset], val_fraction: float, test_fraction: float, salt: str, splits: Output[Dataset]
):
    """`splits` holds train/, val/, test/ and split.json; metadata carries each split's content hash."""
    from modelopsx.workflow import stages

    splits.metadata.update(dataset.metadata)
    splits.metadata.update(stages.split(dataset.path, splits.path, val_fraction, test_fraction, salt))
