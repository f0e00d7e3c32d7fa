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
    from modelopsx.workflow import stages

    record = stages.evaluate(
        model.path,
        data.path,
        evaluation.path,
        title=f"{model.metadata.get('backbone', 'model')} on test split",
    )
    for name, value in stages.metrics_for_logging(record["metrics"]).items():
        metrics.log_metric(name, value)
    categories, matrix = stages.confusion_matrix(record["confusion"])
    confusion.log_confusion_matrix(categories, matrix)
    stages.self_contained_html(f"{evaluation.path}/report", report.path)
    evaluation.metadata.update(
        {
            "test_hash": record["test_hash"],
            "metrics": record["metrics"],
            "undefined": record.get("undefined", {}),
        }
    )
