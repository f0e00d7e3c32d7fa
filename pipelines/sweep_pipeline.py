"""The sweep pipeline: one dataset, many training trials in parallel, the best one goes through the gate.

ingest -> split -> augment -> check_trials -> ParallelFor(trials){train -> evaluate} -> Collected ->
select_best(selection_metric, on validation) -> basin_sync -> compare -> deploy (only on "promote").
A trial is an object of training settings laid over the base parameters, e.g. {"learning_rate": 0.0003}.
"""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from kfp import dsl
from modelopsx.components.sweep import check_trials, select_best
from modelopsx.pipelines import blocks, common

PIPELINE_NAME = "modelopsx-sweep"
CPU_PIPELINE_NAME = "modelopsx-sweep-cpu"
DEFAULT_TRIALS = blocks.DEFAULT_TRIALS


def build_sweep_pipeline(gpu: bool) -> Callable[..., Any]:
    def body(p: SimpleNamespace) -> None:
        # a malformed trials list fails here, before any data moves or GPU is taken
        trials_task = check_trials(trials=p.trials, selection_metric=p.selection_metric)
        data = blocks.data(p, after=trials_task).outputs["augmented"]
        with dsl.ParallelFor(trials_task.output, name="trials") as trial:
            train_task, evaluate_task = blocks.train_and_evaluate(p, data, gpu, trial)
        best = select_best(
            models=dsl.Collected(train_task.outputs["model"]),
            evaluations=dsl.Collected(evaluate_task.outputs["evaluation"]),
            metric=p.selection_metric,
        )
        blocks.release(p, best.outputs["best_model"], best.outputs["best_evaluation"], data)

    return blocks.make_pipeline(
        PIPELINE_NAME if gpu else CPU_PIPELINE_NAME,
        "Parameter sweep: train and evaluate every trial (a JSON object of training settings) in parallel, "
        "gate the best by selection_metric." + common.PRESET_NOTE,
        blocks.parameters(gpu, sweep=True),
        body,
    )
