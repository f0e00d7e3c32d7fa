"""Compare: the promotion gate, champion vs candidate on the same test split; the decision is a record."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def compare(
    evaluation: Input[Artifact],
    data: Input[Dataset],
    model_name: str,
    model_version: int,
    evaluation_dvc_hash: str,
    gate_policy: str,
    decision_report: Output[Markdown],
    decision_record: Output[Artifact],
) -> str:
    """Returns "promote" or "keep" (one plain output, which kfp.local's condition evaluation can read);
    decision_record holds decision.json and decision.md, the reason is in both artifacts' metadata."""
    from modelopsx.workflow import stages

    result = stages.compare(
        evaluation.path,
        data.path,
        model_name,
        model_version,
        evaluation_dvc_hash,
        gate_policy,
        decision_record.path,
    )
    with open(decision_report.path, "w") as fh:
        fh.write(result["markdown"])
    meta = {k: v for k, v in result.items() if k != "markdown" and v is not None}
    decision_report.metadata.update(meta)
    decision_record.metadata.update(meta)
    return result["decision"]
