"""Evaluate: predict on the test split, compute the metrics, write the report (curves, sample detections)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    data: Input[Dataset],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
):
    """`evaluation` is a folder (evaluation.json, detections.json, report/) that basin_sync mirrors."""
    from modelopsx.evaluation.metrics import defined_metrics
    from modelopsx.evaluation.report import confusion_matrix, self_contained_html
    from modelopsx.workflow import stages

    record = stages.evaluate(
        model.path,
        data.path,
        evaluation.path,
        title=f"{model.metadata.get('backbone', 'model')} on test split",
    )
    for name, value in defined_metrics(record["metrics"]).items():
        metrics.log_metric(name, value)
    categories, matrix = confusion_matrix(record["confusion"])
    confusion.log_confusion_matrix(categories, matrix)
    self_contained_html(f"{evaluation.path}/report", report.path)
    evaluation.metadata.update(
        {
            "test_hash": record["test_hash"],
            "metrics": record["metrics"],
            "undefined": record.get("undefined", {}),
        }
    )
