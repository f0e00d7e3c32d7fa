"""The champion is the model named by the latest promotion record; promotion and rollback append one.

Order matters for crash safety: the promotion record is appended first, then the model is copied to serving.
A crash in between leaves serving behind the registry, which `deploy.repair_serving` detects and repairs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelopsx.registry.deploy import deploy_model
from modelopsx.registry.log import Registry, RegistryError
from modelopsx.registry.models import materialize_model
from modelopsx.registry.records import Lineage, PromotionRecord


def champion(registry: Registry, model_name: str) -> dict[str, Any] | None:
    """The model record of the latest promotion (with its "promotion" record attached), or None."""
    promotion = registry.latest("promotions", model_name)
    if promotion is None:
        return None
    model = dict(registry.get("models", model_name, int(promotion["model_version"])))
    model["promotion"] = promotion
    return model


def promote_model(
    registry: Registry,
    model_name: str,
    model_version: int,
    reason: str,
    *,
    action: str = "promote",
    decision: dict[str, Any] | None = None,
    serving_uri: str | None = None,
    model_dir: Path | None = None,
    lineage: Lineage | None = None,
    after_record: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Append a promotion record naming models/<model_name>/<model_version>, then deploy it if serving_uri.

    The serving version is the promotion's seq, so every promotion (rollbacks included) gets a new, higher
    version. `model_dir` avoids a download when the caller has the model locally. `after_record` runs between
    the record and the copy (tests use it to crash exactly there). Returns the promotion record (with "seq").
    """
    model = registry.get("models", model_name, model_version)  # raises, listing versions, when unknown
    previous = registry.latest("promotions", model_name)
    record = PromotionRecord(
        model_name=model_name,
        model_version=model_version,
        action=action,
        reason=reason,
        model_dvc_hash=model.get("dvc_hash"),
        dvc_remote=model.get("dvc_remote"),
        previous_model_version=int(previous["model_version"]) if previous else None,
        serving_uri=serving_uri,
        decision=decision,
        lineage=lineage or Lineage.from_dict(model.get("lineage")),
    ).to_dict()
    seq = registry.append("promotions", model_name, record)
    stored = registry.get("promotions", model_name, seq)
    if after_record is not None:
        after_record(stored)
    if serving_uri:
        deploy_dir = model_dir
        if deploy_dir is None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="modelopsx-deploy-") as tmp:
                deploy_dir = materialize_model(registry, model_name, model_version, Path(tmp) / "model")
                deploy_model(deploy_dir, serving_uri, model_name, seq)
        else:
            deploy_model(deploy_dir, serving_uri, model_name, seq)
    return stored


def rollback(
    registry: Registry, model_name: str, to_version: int, reason: str, serving_uri: str | None = None
) -> dict[str, Any]:
    """Make an older model the champion again: a new promotion record (action "rollback") plus a redeploy.

    Everything is checked before the record is appended, so a refused rollback changes nothing: the reason,
    the current champion, the target version's record, its model files in the store (pulled and verified),
    the SavedModel in them, and the serving store's reachability.
    """
    import tempfile

    from modelopsx.registry.deploy import check_serving_reachable, saved_model_dir

    if not reason.strip():
        raise RegistryError("a rollback needs a reason", hint='pass --reason "why the older model is back"')
    current = registry.latest("promotions", model_name)
    if current is None:
        raise RegistryError(
            f"model {model_name!r} has never been promoted, so there is nothing to roll back",
            hint=f"list promotions with `modelopsx registry list promotions {model_name}`",
        )
    if int(current["model_version"]) == to_version:
        raise RegistryError(
            f"model {model_name!r} version {to_version} is already the champion",
            hint="to redeploy it, run `modelopsx registry repair` instead",
        )
    registry.get("models", model_name, to_version)  # raises, listing the versions, when unknown
    if serving_uri:
        check_serving_reachable(serving_uri, model_name)
    with tempfile.TemporaryDirectory(prefix="modelopsx-rollback-") as tmp:
        model_dir = materialize_model(registry, model_name, to_version, Path(tmp) / "model")
        saved_model_dir(model_dir)  # a model without a SavedModel cannot serve: refuse before recording
        return promote_model(
            registry,
            model_name,
            to_version,
            reason,
            action="rollback",
            serving_uri=serving_uri,
            model_dir=model_dir,
        )
