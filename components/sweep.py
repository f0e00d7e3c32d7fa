"""Sweep helpers: check the trials list before any training starts; pick the best trial afterwards."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def check_trials(trials: list, selection_metric: str) -> list:
    """A malformed list (or an unknown metric) fails here, before any training, naming what is wrong."""
    from modelopsx.model import sweep

    sweep.check_selection_metric(selection_metric)
    return sweep.validate_trials(trials)


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def select_best(
    models: Input[list[Model]],
    evaluations: Input[list[Artifact]],
    metric: str,
    best_model: Output[Model],
    best_evaluation: Output[Artifact],
) -> int:
    """Copies the best trial's model and evaluation forward; returns its index in the trials list.

    Trials are ranked on their validation metrics: ranking them on the test split, then gating the winner on
    that same split, would favour whichever trial got lucky on those images."""
    from modelopsx.model import sweep
    from modelopsx.workflow import stages

    scores = [sweep.validation_metrics(m.path) for m in models]
    index = sweep.best_trial(scores, metric)
    stages.copy_tree(models[index].path, best_model.path)
    stages.copy_tree(evaluations[index].path, best_evaluation.path)
    best_model.metadata.update(models[index].metadata)
    best_model.metadata.update(
        {
            "trial_index": index,
            "selected_by": metric,
            "selected_on": "validation split",
            "selected_value": scores[index].get(metric, "undefined"),
        }
    )
    best_evaluation.metadata.update(evaluations[index].metadata)
    return index
