"""The champion is the model named by the latest promotion record; promotion and rollback append one.

Order matters for crash safety: the promotion record is appended first, then the model is copied to serving.
A crash in between leaves serving behind the registry, which `deploy.repair_serving` detects and repairs.

A rollback or a deploy decides against the champion it read, so its record is a compare-and-swap on the
promotion sequence: it is stored as exactly the next promotion after the one it read, or not at all. Of two
concurrent rollbacks one wins; the other fails, saying which promotion came first, and records nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelopsx.data.paths import check_links_inside
from modelopsx.errors import KeyExistsError, ModelError, StorageError
from modelopsx.registry.deploy import deploy_model
from modelopsx.registry.log import Registry, RegistryError, record_key
from modelopsx.registry.models import materialize_model
from modelopsx.registry.records import Lineage, PromotionRecord, now, promoted_version


class PromotionConflictError(RegistryError):
    """Another promotion was recorded after the one this change was decided against."""


def champion(registry: Registry, model_name: str) -> dict[str, Any] | None:
    """The model record of the latest promotion (with its "promotion" record attached), or None."""
    promotion = registry.latest("promotions", model_name)
    if promotion is None:
        return None
    model = dict(registry.get("models", model_name, promoted_version(promotion)))
    model["promotion"] = promotion
    return model


def _append_after(registry: Registry, model_name: str, record: dict[str, Any], after_seq: int) -> int:
    """Store `record` as promotion `after_seq + 1` or not at all (the log's put-if-absent, without retrying
    at a later sequence number); PromotionConflictError when another promotion took that place."""
    seq = after_seq + 1
    body = {
        **record,
        "created_at": record.get("created_at") or now(),
        "record_id": uuid.uuid4().hex,
        "kind": "promotions",
        "name": model_name,
        "seq": seq,
    }
    data = (json.dumps(body, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    try:
        registry.store.put_if_absent(
            record_key("promotions", model_name, seq), data, metadata={"content-type": "application/json"}
        )
    except KeyExistsError:
        winner = registry.get("promotions", model_name, seq)
        if winner.get("record_id") == body["record_id"]:  # our own put landed; only its reply was lost
            return seq
        raise PromotionConflictError(
            f"another promotion of {model_name!r} was recorded first (promotion {seq}: "
            f"{winner.get('action')} to model version {winner.get('model_version')}: "
            f"{winner.get('reason')!r}); this {record.get('action')} to version "
            f"{record.get('model_version')} was decided against the champion before it and was not recorded",
            hint=f"check the champion now (`modelopsx registry champion {model_name}`), then rerun if the "
            "change is still wanted",
        ) from None
    return seq


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
    after_seq: int | None = None,
) -> dict[str, Any]:
    """Append a promotion record naming models/<model_name>/<model_version>, then deploy it if serving_uri.

    The serving version is the promotion's seq, so every promotion (rollbacks included) gets a new, higher
    version. `model_dir` avoids a download when the caller has the model locally. `after_record` runs between
    the record and the copy (tests use it to crash exactly there). `after_seq` is the promotion seq the
    caller decided against (0: none): the record is then stored right after it or not at all (see the module
    doc); without it, the record is appended after whatever is latest. Returns the promotion record.
    """
    model = registry.get("models", model_name, model_version)  # raises, listing versions, when unknown
    if after_seq is None:
        previous = registry.latest("promotions", model_name)
    else:
        previous = registry.get("promotions", model_name, after_seq) if after_seq else None
    record = PromotionRecord(
        model_name=model_name,
        model_version=model_version,
        action=action,
        reason=reason,
        model_dvc_hash=model.get("dvc_hash"),
        dvc_remote=model.get("dvc_remote"),
        previous_model_version=_previous_version(previous),
        serving_uri=serving_uri,
        decision=decision,
        lineage=lineage or Lineage.from_dict(model.get("lineage")),
    ).to_dict()
    if after_seq is None:
        seq = registry.append("promotions", model_name, record)
    else:
        seq = _append_after(registry, model_name, record, after_seq)
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
    if _previous_version(current) == to_version:  # a damaged current record names no version: go ahead
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
        check_links_inside(model_dir, f"model {model_name} version {to_version}", ModelError)
        return promote_model(
            registry,
            model_name,
            to_version,
            reason,
            action="rollback",
            serving_uri=serving_uri,
            model_dir=model_dir,
            after_seq=int(current["seq"]),
        )


def _previous_version(promotion: dict[str, Any] | None) -> int | None:
    """The version a (possibly damaged) earlier promotion names, for the record: None when it names none."""
    if promotion is None:
        return None
    try:
        return promoted_version(promotion)
    except StorageError:
        return None
