"""Deploy a gate decision: the last step of the release path, which re-checks everything before writing.

Like TFX's Pusher re-checking the blessing, `deploy_decision` does not trust that it was called for a reason:
it reads the decision itself and refuses, before anything is written, unless it is a `promote` made for
exactly this model name, version and content, against the champion that is still current (a decision taken
against an older champion is stale). A retried step that finds its own promotion record only finishes the
copy to serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelopsx.registry.champion import champion, promote_model
from modelopsx.registry.deploy import (
    ReleaseError,
    check_promote_decision,
    check_serving_reachable,
    deploy_model,
    read_decision,
    saved_model_dir,
)
from modelopsx.registry.log import Registry


def _check_still_current(registry: Registry, decision: dict[str, Any], model_name: str) -> None:
    against = decision.get("champion") or {}  # the champion's identity, or the baseline's, or nothing
    expected = None if not against or against.get("baseline") else against.get("model_version")
    current = champion(registry, model_name)
    now = None if current is None else int(current["seq"])
    if now != expected:
        then = "no champion" if expected is None else f"champion v{expected}"
        raise ReleaseError(
            f"the decision was made against {then}, but the champion is now "
            f"{'none' if now is None else f'v{now}'}: the decision is stale",
            hint="run the compare step again so the candidate is gated against the current champion",
        )


def deploy_decision(
    registry: Registry, model_dir: Path, decision_file: Path, model_name: str, model_version: int,
    serving_uri: str,
) -> dict[str, Any]:  # fmt: skip
    """Check the decision, then append the promotion and copy the SavedModel to serving; returns the
    promotion record. Raises ReleaseError (nothing written) when the decision does not authorise it."""
    from modelopsx.storage.dvc_remote import directory_hash

    decision = read_decision(Path(decision_file))
    record = registry.get("models", model_name, model_version)
    check_promote_decision(decision, model_name, model_version, record.get("dvc_hash"))
    local_hash = directory_hash(Path(model_dir))
    if local_hash != record.get("dvc_hash"):
        raise ReleaseError(
            f"the model files handed to deploy ({local_hash}) are not {model_name} version {model_version} "
            f"({record.get('dvc_hash')})",
            hint="deploy the MODEL_DIR that was registered and gated",
        )
    saved_model_dir(Path(model_dir))
    latest = registry.latest("promotions", model_name)
    if (
        latest is not None
        and int(latest["model_version"]) == model_version
        and (latest.get("decision") or {}).get("created_at") == decision.get("created_at")
    ):
        # An earlier attempt of this very step recorded the promotion, then failed while copying.
        deploy_model(Path(model_dir), serving_uri, model_name, int(latest["seq"]))
        return latest
    _check_still_current(registry, decision, model_name)
    check_serving_reachable(serving_uri, model_name)
    return promote_model(
        registry,
        model_name,
        model_version,
        str(decision.get("reason", "gate")),
        decision=decision,
        serving_uri=serving_uri,
        model_dir=Path(model_dir),
    )
