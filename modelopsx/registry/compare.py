"""Fair champion/challenger comparison: both models measured on the same test split, then the gate decides.

The champion's metrics are reused only when they were measured on the current test split (same split hash),
either in its model record or in a later evaluation record. Otherwise the champion is fetched from its DVC
remote, re-run with the model area's `predict_dataset` on the current test split, evaluated with
`evaluate_detections` at its own operating threshold, and that evaluation is recorded so the next run
reuses it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelopsx.gate import Decision, GatePolicy, decide
from modelopsx.registry.champion import champion, materialize_model
from modelopsx.registry.log import Registry
from modelopsx.registry.models import evaluation_on_split, register_evaluation
from modelopsx.registry.records import Lineage

PredictFn = Callable[[Path, Path], list[dict[str, Any]]]  # (model_dir, dataset_dir) -> COCO detections


def predict_with_model(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
    from modelopsx.model.predict import predict_dataset

    return predict_dataset(model_dir, dataset_dir, quiet=True)


def _load_detections(detections: list[dict[str, Any]] | Path) -> list[dict[str, Any]]:
    if isinstance(detections, list):
        return detections
    import json

    data = json.loads(Path(detections).read_text(encoding="utf-8"))
    return list(data)


def compare_with_champion(
    registry: Registry,
    model_name: str,
    candidate_metrics: dict[str, float | None],
    test_dir: Path,
    test_split_hash: str | None,
    policy: GatePolicy | None = None,
    *,
    candidate_detections: list[dict[str, Any]] | Path | None = None,
    candidate_score_threshold: float | None = None,
    candidate_info: dict[str, Any] | None = None,
    work_dir: Path | None = None,
    predict: PredictFn | None = None,
) -> Decision:
    """Gate the candidate against the current champion of `model_name` on the test split in `test_dir`.

    `predict` defaults to modelopsx.model.predict.predict_dataset; it is a parameter so the re-evaluation path
    can also score detectors that are not Keras models. `candidate_detections` (and the candidate's operating
    `candidate_score_threshold`) are needed only when the policy asks for paired-bootstrap significance.
    """
    policy = policy or GatePolicy.default()
    predict = predict or predict_with_model
    champ = champion(registry, model_name)
    if champ is None:
        return decide(candidate_metrics, None, policy, candidate_info=candidate_info)

    version = int(champ["seq"])
    info: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version,
        "promotion_seq": champ["promotion"]["seq"],
        "test_split_hash": test_split_hash,
    }
    champion_metrics: dict[str, float | None] | None = None
    champion_detections: list[dict[str, Any]] | None = None
    if test_split_hash and champ.get("test_split_hash") == test_split_hash:
        champion_metrics, info["metrics_source"] = dict(champ.get("metrics") or {}), "model record"
    elif test_split_hash and (stored := evaluation_on_split(registry, model_name, version, test_split_hash)):
        champion_metrics = dict(stored["metrics"])
        info["metrics_source"] = f"evaluation record {stored['seq']}"
    info["champion_evaluated_on"] = champ.get("test_split_hash")

    with tempfile.TemporaryDirectory(prefix="modelopsx-compare-", dir=work_dir) as tmp:
        need_detections = champion_metrics is None or policy.significance is not None
        if need_detections:
            model_dir = materialize_model(registry, model_name, version, Path(tmp) / "champion")
            champion_detections = predict(model_dir, Path(test_dir))
        if champion_metrics is None:
            from modelopsx.evaluation.metrics import evaluate_detections

            assert champion_detections is not None
            result = evaluate_detections(
                Path(test_dir), champion_detections, score_threshold=champ.get("score_threshold")
            )
            champion_metrics = dict(result.metrics)
            stored = register_evaluation(
                registry,
                model_name,
                version,
                champion_metrics,
                test_split_hash,
                undefined=dict(result.undefined),
                score_threshold=champ.get("score_threshold"),
                lineage=Lineage(split_hashes={"test": test_split_hash or ""}),
            )
            info["metrics_source"] = (
                f"re-evaluated on the current test split (evaluation record {stored['seq']})"
            )
            info["reevaluated"] = True

    significance = None
    if (
        policy.significance is not None
        and candidate_detections is not None
        and champion_detections is not None
    ):
        from modelopsx.evaluation.bootstrap import paired_bootstrap

        significance = paired_bootstrap(
            Path(test_dir),
            champion_detections,
            _load_detections(candidate_detections),
            policy.significance.metric,
            n_resamples=policy.significance.n_resamples,
            seed=policy.significance.seed,
            threshold_a=champ.get("score_threshold"),
            threshold_b=candidate_score_threshold,
        )
    return decide(
        candidate_metrics,
        champion_metrics,
        policy,
        significance,
        candidate_info=candidate_info,
        champion_info=info,
    )
