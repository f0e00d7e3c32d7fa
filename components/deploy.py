"""Deploy: record the promotion, write the SavedModel to serving (TF Serving layout, saved_model.pb last)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from modelopsx.workflow.images import MODELOPSX_IMAGE


@dsl.component(base_image=MODELOPSX_IMAGE, install_kfp_package=False)
def deploy(
    model: Input[Model],
    decision_record: Input[Artifact],
    model_name: str,
    model_version: int,
    serving_uri: str,
) -> str:
    """Returns the URI the model was written to: <serving_uri>/<model_name>/<promotion seq>."""
    from modelopsx.workflow import stages

    return stages.deploy(model.path, decision_record.path, model_name, model_version, serving_uri)[
        "deployed_to"
    ]
