"""Fair champion/challenger comparison: both models scored on the same test split, then the gate decides.

The reference is the current champion, or, before there is one, the HOG baseline (policy `baseline: hog`).
Each model is scored at its own operating threshold, chosen on validation: the candidate's comes from its
training, the champion's from its model record (chosen again on the validation split if the record has
none), HOG's from the validation split. The champion is fetched from its DVC remote and run with the model
area's `predict_dataset` on the current test split, so its metrics, the differences and the paired-bootstrap
intervals all come from the same detections; that evaluation is recorded once per split.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelopsx.gate.decide import decide
from modelopsx.gate.decision import Decision
from modelopsx.gate.evidence import EvidenceError, check_evidence
from modelopsx.gate.policy import CONFIDENCE, DEFAULT_SIGNIFICANCE_METRIC, GatePolicy, SignificancePolicy
from modelopsx.metric_spec import worst_value
from modelopsx.registry.baseline import DetectFn
from modelopsx.registry.champion import champion
from modelopsx.registry.log import Registry
from modelopsx.registry.models import evaluation_on_split, materialize_model, register_evaluation
from modelopsx.registry.records import Lineage

if TYPE_CHECKING:
    from modelopsx.evaluation.bootstrap import PairedBootstrapResult

PredictFn = Callable[[Path, Path], list[dict[str, Any]]]  # (model_dir, dataset_dir) -> COCO detections


def predict_with_model(model_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
    from modelopsx.model.predict import predict_dataset

    return predict_dataset(model_dir, dataset_dir, quiet=True)


def load_detections(detections: list[dict[str, Any]] | Path, who: str) -> list[dict[str, Any]]:
    """Detections as COCO results, read as evaluation reads them; an unreadable or malformed file is an
    EvidenceError (the gate keeps the champion), never "none"."""
    from modelopsx.evaluation.inputs import DetectionsError
    from modelopsx.evaluation.inputs import load_detections as read_detections

    hint = "re-run the evaluate step that writes detections.json"
    try:
        data = read_detections(detections)
    except DetectionsError as exc:
        raise EvidenceError(f"{who} detections: {exc.message}", hint=hint) from None
    if not all(isinstance(d, dict) for d in data):
        raise EvidenceError(f"{who} detections {detections} are not a list of COCO results", hint=hint)
    return data


def operating_threshold(value: Any, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvidenceError(
            f"{who} has no usable operating score threshold ({value!r})",
            hint="each model is scored at the threshold chosen on its validation split; choosing one on the "
            "test split would favour it. Re-run training (it stores the threshold in model.json)",
        )
    return float(value)


def gate_bootstrap(
    policy: GatePolicy,
    test: Path,
    reference: list[dict[str, Any]],
    reference_threshold: float,
    candidate: list[dict[str, Any]],
    candidate_threshold: float,
) -> dict[str, PairedBootstrapResult]:
    """The paired bootstrap the gate reads: every metric the policy compares, candidate - reference, each
    model at its own threshold, undefined values at their worst, resamples and seed from the policy."""
    from modelopsx.evaluation.bootstrap import paired_bootstrap_metrics

    significance = policy.significance or SignificancePolicy(DEFAULT_SIGNIFICANCE_METRIC)
    return paired_bootstrap_metrics(
        test,
        reference,
        candidate,
        policy.compared_metrics(),
        threshold_a=reference_threshold,
        threshold_b=candidate_threshold,
        n_resamples=significance.n_resamples,
        seed=significance.seed,
        confidence=CONFIDENCE,
        undefined_as={m: worst_value(m) for m in policy.compared_metrics()},
    )


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
    val_dir: Path | None = None,
    work_dir: Path | None = None,
    predict: PredictFn | None = None,
    baseline_detect: DetectFn | None = None,
) -> Decision:
    """Gate the candidate against the champion of `model_name` (or the baseline) on the split in `test_dir`.

    `predict` runs a registered model (default: the model area's predict_dataset); `baseline_detect` runs
    HOG on one image. Without `candidate_detections` no interval can be computed, so a policy that requires
    significance keeps the champion. `val_dir` is needed for the HOG baseline and for a champion without a
    stored threshold.
    """
    policy = policy or GatePolicy.default()
    required = policy.compared_metrics()
    candidate_metrics = check_evidence(candidate_metrics, "candidate metrics", required)
    detections, candidate_threshold = None, 0.0
    if candidate_detections is not None:
        detections = load_detections(candidate_detections, "candidate")
        candidate_threshold = operating_threshold(candidate_score_threshold, "the candidate")
    champ = champion(registry, model_name)
    if champ is None and policy.baseline == "none":
        return decide(candidate_metrics, None, policy, candidate_info=candidate_info)

    with tempfile.TemporaryDirectory(prefix="modelopsx-compare-", dir=work_dir) as tmp:
        if champ is None:
            from modelopsx.registry.baseline import hog_detect, score_baseline

            if val_dir is None:
                raise EvidenceError("the HOG baseline needs the validation split to choose its threshold")
            reference, threshold, info = score_baseline(
                registry.store, Path(val_dir), Path(test_dir), baseline_detect or hog_detect
            )
            scored = _score(Path(test_dir), reference, threshold)
        else:
            reference, threshold, info, scored = _score_champion(
                registry, champ, model_name, Path(test_dir), test_split_hash, val_dir, Path(tmp),
                predict or predict_with_model,
            )  # fmt: skip
    bootstrap = None
    if detections is not None:
        bootstrap = gate_bootstrap(
            policy, Path(test_dir), reference, threshold, detections, candidate_threshold
        )
    return decide(
        candidate_metrics,
        dict(scored.metrics),
        policy,
        bootstrap,
        candidate_info=candidate_info,
        champion_info=info,
        champion_undefined=scored.undefined,
        confidence=CONFIDENCE,
    )


def _score(test_dir: Path, detections: list[dict[str, Any]], threshold: float) -> Any:
    from modelopsx.evaluation.metrics import evaluate_detections

    return evaluate_detections(test_dir, detections, score_threshold=threshold)


def _score_champion(
    registry: Registry,
    champ: dict[str, Any],
    model_name: str,
    test_dir: Path,
    test_split_hash: str | None,
    val_dir: Path | None,
    tmp: Path,
    predict: PredictFn,
) -> tuple[list[dict[str, Any]], float, dict[str, Any], Any]:
    """Run the champion on this test split at its own threshold; record that evaluation once per split."""
    version = int(champ["seq"])
    info: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version,
        "promotion_seq": champ["promotion"]["seq"],
        "test_split_hash": test_split_hash,
        "champion_evaluated_on": champ.get("test_split_hash"),
    }
    model_dir = materialize_model(registry, model_name, version, tmp / "champion")
    threshold_value = champ.get("score_threshold")
    if threshold_value is None and val_dir is not None:
        from modelopsx.evaluation.metrics import choose_score_threshold

        threshold_value = choose_score_threshold(val_dir, predict(model_dir, val_dir))
        info["threshold_from"] = "max F1 on this validation split (the model record has none)"
    threshold = operating_threshold(threshold_value, f"champion {model_name} v{version}")
    info["score_threshold"] = threshold
    detections = predict(model_dir, test_dir)
    scored = _score(test_dir, detections, threshold)
    stored = evaluation_on_split(registry, model_name, version, test_split_hash) if test_split_hash else None
    if stored is None:
        stored = register_evaluation(
            registry,
            model_name,
            version,
            dict(scored.metrics),
            test_split_hash,
            undefined=dict(scored.undefined),
            score_threshold=threshold,
            lineage=Lineage(split_hashes={"test": test_split_hash or ""}),
        )
        info["reevaluated"] = True
    info["metrics_source"] = f"scored on this test split (evaluation record {stored['seq']})"
    return detections, threshold, info, scored
