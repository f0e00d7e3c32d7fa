"""Deploy a gate decision: the last step of the release path, which re-checks everything before writing.

Like TFX's Pusher re-checking the blessing, `deploy_decision` does not trust that it was called for a reason:
it reads the decision itself and refuses, before anything is written, unless it is a `promote` made for
exactly this model name, version and content, against the champion that is still current (a decision taken
against an older champion is stale). Nor does it trust the file's verdict: the verdict must follow from the
decision's own checks (every one passed), and the decision must be one that compare recorded in the registry
(its digest in an evaluation record of this model version), so a hand-edited file deploys nothing. A retried
step that finds its own promotion record only finishes the copy to serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelopsx.errors import ReleaseError
from modelopsx.gate.decision import Decision, decision_digest, read_decision_json
from modelopsx.registry.champion import champion, promote_model
from modelopsx.registry.deploy import check_serving_reachable, deploy_model, saved_model_dir
from modelopsx.registry.log import Registry

_DECISION_HINT = "deploy only runs on the decision.json that the compare step wrote for this model"
_EDITED_HINT = (
    "deploy only the decision.json that the compare step wrote; to change a verdict, change the gate "
    "policy and run compare again"
)


def read_decision(path: Path) -> tuple[dict[str, Any], Decision]:
    """The decision.json as written (its digest is what compare recorded) and as a checked Decision; missing,
    unreadable or malformed is a ReleaseError (never "no decision, go ahead")."""
    data = read_decision_json(path, ReleaseError, _DECISION_HINT)
    return data, Decision.from_json(data, ReleaseError, _DECISION_HINT, str(path))


def check_promote_decision(
    decision: Decision, model_name: str, model_version: int, model_dvc_hash: str | None
) -> None:
    """Deploy re-checks the blessing itself: a `promote` decision made for exactly this model name, version
    and content (DVC hash of MODEL_DIR)."""
    if not decision.promote:
        raise ReleaseError(
            f"the gate decision is {decision.decision!r}, not 'promote': "
            f"{decision.reason or 'no reason given'}",
            hint="the champion stays; only a promote decision can be deployed",
        )
    candidate = decision.candidate
    made_for = (candidate.get("model_name"), candidate.get("model_version"))
    if made_for != (model_name, model_version):
        raise ReleaseError(
            f"the promote decision was made for {made_for[0]!r} version {made_for[1]!r}, "
            f"not {model_name!r} version {model_version}",
            hint="deploy the model the decision names, or gate this one first",
        )
    decided_hash = candidate.get("model_dvc_hash")
    if not decided_hash or not model_dvc_hash or decided_hash != model_dvc_hash:
        raise ReleaseError(
            f"the promote decision's model content ({decided_hash or 'unrecorded'}) does not match "
            f"{model_name} version {model_version} ({model_dvc_hash or 'unrecorded'})",
            hint="the model changed after it was gated; gate it again",
        )


def _check_still_current(registry: Registry, decision: Decision, model_name: str) -> int:
    """Refuse a stale decision; return the promotion seq of the champion it was made against (0: none)."""
    against = decision.reference  # the champion, or the baseline (no champion then), or nothing
    expected = against.version if against.kind == "champion" else None
    current = champion(registry, model_name)
    now = None if current is None else int(current["seq"])
    if now != expected:
        then = "no champion" if expected is None else f"champion v{expected}"
        raise ReleaseError(
            f"the decision was made against {then}, but the champion is now "
            f"{'none' if now is None else f'v{now}'}: the decision is stale",
            hint="run the compare step again so the candidate is gated against the current champion",
        )
    return 0 if current is None else int(current["promotion"]["seq"])


def check_verdict_follows_checks(decision: Decision) -> None:
    """A promote must follow from its checks (Decision.from_json has made sure each has a true/false
    `passed`): every one passed."""
    failed = [c for c in decision.checks if not c.passed]
    if failed:
        shown = "; ".join(f"{c.kind} {c.metric}: {c.reason}" for c in failed[:3])
        raise ReleaseError(
            f"the decision says 'promote' but {len(failed)} of its checks failed ({shown}): the verdict does "
            "not follow from the checks, so the file was edited after the gate; nothing deployed",
            hint=_EDITED_HINT,
        )


def check_recorded_by_compare(
    registry: Registry, decision: dict[str, Any], model_name: str, model_version: int
) -> None:
    """The decision must be one compare recorded: its digest in an evaluation record of this version."""
    try:
        digest = decision_digest(decision)
    except ValueError as exc:  # NaN or infinity: compare never writes them
        raise ReleaseError(f"the decision is not strict JSON ({exc})", hint=_EDITED_HINT) from None
    for record in reversed(registry.records("evaluations", model_name)):
        if record.get("model_version") == model_version and record.get("decision_sha256") == digest:
            return
    raise ReleaseError(
        f"no compare step recorded this decision for {model_name} version {model_version} (its digest "
        f"{digest[:16]} is in no evaluation record): it was edited or made elsewhere; nothing deployed",
        hint=_EDITED_HINT,
    )


def deploy_decision(
    registry: Registry, model_dir: Path, decision_file: Path, model_name: str, model_version: int,
    serving_uri: str,
) -> dict[str, Any]:  # fmt: skip
    """Check the decision, then append the promotion and copy the SavedModel to serving; returns the
    promotion record. Raises ReleaseError (nothing written) when the decision does not authorise it."""
    from modelopsx.storage.dvc_remote import directory_hash

    data, decision = read_decision(Path(decision_file))
    record = registry.get("models", model_name, model_version)
    check_promote_decision(decision, model_name, model_version, record.get("dvc_hash"))
    check_verdict_follows_checks(decision)
    local_hash = directory_hash(Path(model_dir))
    if local_hash != record.get("dvc_hash"):
        raise ReleaseError(
            f"the model files handed to deploy ({local_hash}) are not {model_name} version {model_version} "
            f"({record.get('dvc_hash')})",
            hint="deploy the MODEL_DIR that was registered and gated",
        )
    saved_model_dir(Path(model_dir))
    latest = registry.latest("promotions", model_name)
    if latest is not None and latest.get("model_version") == model_version and latest.get("decision") == data:
        # An earlier attempt of this very step recorded the promotion, then failed while copying.
        deploy_model(Path(model_dir), serving_uri, model_name, int(latest["seq"]))
        return latest
    against = _check_still_current(registry, decision, model_name)
    check_recorded_by_compare(registry, data, model_name, model_version)
    check_serving_reachable(serving_uri, model_name)
    return promote_model(
        registry,
        model_name,
        model_version,
        decision.reason or "gate",
        decision=data,
        serving_uri=serving_uri,
        model_dir=Path(model_dir),
        after_seq=against,
    )
