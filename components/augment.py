"""Augment: materialize box-aware augmented copies of the train split (val and test pass through)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def augment(splits: Input[Dataset], copies: int, seed: int, augmented: Output[Dataset]):
    from modelopsx.workflow import stages

    augmented.metadata.update(splits.metadata)
    augmented.metadata.update(stages.augment(splits.path, augmented.path, copies, seed))
