"""Detection metrics of one set of detections against a canonical ground truth (names, directions and
meanings in modelopsx/metric_spec.py).

Every metric is computed from per-detection match outcomes (see matching.py) and per-image counts, with
optional image weights so that the bootstrap can re-weigh images without matching again.
A metric that cannot be computed (no pedestrians, no detections) is None with a reason in `.undefined`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import Dataset
from modelopsx.evaluation.coco_ap import ap_from_precision, interpolated_precision, match_coco
from modelopsx.evaluation.inputs import (
    DetectionArrays,
    GroundTruthArrays,
    load_detection_arrays,
    load_ground_truth_arrays,
)
from modelopsx.evaluation.matching import FP, IGNORED, TP, MatchResult, match_detections
from modelopsx.evaluation.miss_rate import SETUPS, log_average_miss_rate, match_setup, miss_rate_curve
from modelopsx.metric_spec import METRIC_NAMES

PR_IOU = 0.5
DEFAULT_SCORE_THRESHOLD = 0.5  # used when no threshold can be chosen (no pedestrians or no true positive)


@dataclass
class EvaluationResult:
    metrics: dict[str, float | None]
    undefined: dict[str, str]  # metric -> why it is None
    confusion: dict[str, int]  # image level: tp, fp, fn, tn
    counts: dict[str, int]
    curves: dict[str, Any] = field(default_factory=dict)
    score_threshold_source: str = "given"  # "given", "max_f1" (chosen on these detections) or "default"

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "undefined": dict(self.undefined),
            "confusion": dict(self.confusion),
            "counts": dict(self.counts),
            "score_threshold_source": self.score_threshold_source,
        }


@dataclass(frozen=True)
class PreparedEvaluation:
    """Everything the metrics need, matched once: COCO (10 IoUs), PR at IoU 0.5, one match per MR setup."""

    gt: GroundTruthArrays
    dets: DetectionArrays
    coco: MatchResult
    pr: MatchResult
    setups: dict[str, MatchResult]


def prepare(
    gt: Dataset | Path | str, detections: list[dict[str, Any]] | Path | str, drop_unknown_images: bool = False
) -> PreparedEvaluation:
    """Load, validate and match once; all metrics (and every bootstrap resample) reuse the result."""
    gt_arrays = load_ground_truth_arrays(gt)
    dets = load_detection_arrays(detections, gt_arrays, drop_unknown_images)
    return PreparedEvaluation(
        gt=gt_arrays,
        dets=dets,
        coco=match_coco(gt_arrays, dets),
        pr=match_detections(gt_arrays, dets, [PR_IOU]),
        setups={name: match_setup(gt_arrays, dets, setup) for name, setup in SETUPS.items()},
    )


def best_f1_threshold(pr: MatchResult) -> float | None:
    """Score maximizing F1 = 2TP / (TP + FP + P) over all distinct scores; None if no true positive."""
    positives = int(pr.positives.sum())
    if positives == 0 or pr.scores.size == 0:
        return None
    states = pr.states[0]
    tp = np.cumsum(states == TP)
    fp = np.cumsum(states == FP)
    # A threshold keeps every detection of equal score: evaluate at the last one of each score run.
    run_end = np.flatnonzero(np.r_[pr.scores[1:] != pr.scores[:-1], True])
    f1 = 2.0 * tp[run_end] / (tp[run_end] + fp[run_end] + positives)
    best = int(np.argmax(f1))  # first maximum: the highest threshold among equals
    if f1[best] <= 0:
        return None
    return float(pr.scores[run_end[best]])


def choose_score_threshold(gt: Dataset | Path, detections: list[dict[str, Any]] | Path) -> float:
    """The score threshold with maximum F1 at IoU 0.5 (candidates: every distinct detection score).

    Falls back to DEFAULT_SCORE_THRESHOLD, with a warning, when F1 is zero or undefined everywhere.
    """
    gt_arrays = load_ground_truth_arrays(gt)
    dets = load_detection_arrays(detections, gt_arrays)
    best = best_f1_threshold(match_detections(gt_arrays, dets, [PR_IOU]))
    if best is None:
        warnings.warn(
            f"no detection matches a pedestrian; using the default score threshold {DEFAULT_SCORE_THRESHOLD}",
            UserWarning,
            stacklevel=2,
        )
        return DEFAULT_SCORE_THRESHOLD
    return best


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def per_image_counts(prep: PreparedEvaluation, threshold: float) -> dict[str, np.ndarray]:
    """Per-image counts at `threshold` (IoU 0.5): tp, fp, positives, and image-level predicted/actual."""
    n = prep.gt.n_images
    pr = prep.pr
    above = pr.scores >= threshold
    states = pr.states[0]
    return {
        "tp": np.bincount(pr.det_image[above & (states == TP)], minlength=n).astype(np.float64),
        "fp": np.bincount(pr.det_image[above & (states == FP)], minlength=n).astype(np.float64),
        "positives": pr.positives.astype(np.float64),
        "predicted": (np.bincount(pr.det_image[above], minlength=n) > 0).astype(np.float64),
        "actual": (pr.positives > 0).astype(np.float64),
    }


def compute_metrics(
    prep: PreparedEvaluation,
    threshold: float,
    weights: np.ndarray | None = None,
    metrics: tuple[str, ...] = METRIC_NAMES,
) -> dict[str, np.ndarray]:
    """Each requested metric as an array [B] over image-weight rows [B, N] (None: every image once).

    NaN marks an undefined value. `score_threshold` is not a computed metric and is left out.
    """
    w = np.ones((1, prep.gt.n_images)) if weights is None else np.asarray(weights, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    wanted = set(metrics)
    if wanted & {"precision", "recall", "f1", "accuracy"}:
        per_image = per_image_counts(prep, threshold)
        c = {key: w @ value for key, value in per_image.items()}
        precision = _ratio(c["tp"], c["tp"] + c["fp"])
        recall = _ratio(c["tp"], c["positives"])
        f1 = _ratio(2 * precision * recall, precision + recall)
        f1[(precision + recall == 0)] = 0.0
        n_images = w.sum(axis=1)
        correct = w @ (per_image["predicted"] == per_image["actual"]).astype(np.float64)
        out.update(precision=precision, recall=recall, f1=f1, accuracy=_ratio(correct, n_images))
    if wanted & {"ap", "ap50"}:
        # weights None keeps pycocotools' own accumulation path for the point estimate.
        ap, ap50 = ap_from_precision(*interpolated_precision(prep.coco, weights))
        out.update(ap=ap, ap50=ap50)
    for name, match in prep.setups.items():
        key = f"mr2_{name}"
        if key in wanted:
            out[key] = log_average_miss_rate(match, weights)
    return {key: value for key, value in out.items() if key in wanted}


def _undefined_reasons(
    prep: PreparedEvaluation, threshold: float, values: dict[str, float | None]
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    no_pedestrians = "the ground truth has no (non-ignored) pedestrians"
    if prep.gt.n_images == 0:
        return {name: "the ground truth has no images" for name, v in values.items() if v is None}
    if values.get("precision") is None:
        reasons["precision"] = (
            "there are no detections"
            if prep.dets.size == 0
            else f"no detection scores at or above the threshold {threshold:g}"
        )
    if values.get("recall") is None:
        reasons["recall"] = no_pedestrians
    if values.get("f1") is None:
        why = reasons.get("precision") or reasons.get("recall")
        reasons["f1"] = f"precision or recall is undefined ({why})"
    for name in ("ap", "ap50"):
        if values.get(name) is None:
            reasons[name] = no_pedestrians
    for name, setup in SETUPS.items():
        if values.get(f"mr2_{name}") is None:
            reasons[f"mr2_{name}"] = f"no pedestrians in the '{name}' setup ({setup.description})"
    return reasons


def _curves(prep: PreparedEvaluation, threshold: float) -> dict[str, Any]:
    pr = prep.pr
    counted = pr.states[0] != IGNORED
    tp = np.cumsum(pr.states[0][counted] == TP)
    fp = np.cumsum(pr.states[0][counted] == FP)
    positives = int(pr.positives.sum())
    curves: dict[str, Any] = {
        "pr": {
            "recall": tp / positives if positives else np.zeros(0),
            "precision": tp / np.maximum(tp + fp, 1),
            "score": pr.scores[counted],
        },
        "mr_fppi": {},
        "threshold": threshold,
    }
    for name, match in prep.setups.items():
        fppi, miss, pos = miss_rate_curve(match)
        if pos[0] > 0:
            curves["mr_fppi"][name] = {"fppi": fppi[0], "miss_rate": miss[0]}
    return curves


def evaluate_prepared(prep: PreparedEvaluation, score_threshold: float | None = None) -> EvaluationResult:
    """Metrics of already matched detections; `score_threshold` None: the max-F1 threshold of these ones."""
    source = "given"
    if score_threshold is None:
        chosen = best_f1_threshold(prep.pr)
        source = "max_f1" if chosen is not None else "default"
        score_threshold = DEFAULT_SCORE_THRESHOLD if chosen is None else chosen
    threshold = float(score_threshold)
    arrays = compute_metrics(prep, threshold)
    values: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        if name == "score_threshold":
            values[name] = threshold
            continue
        value = float(arrays[name][0])
        values[name] = None if np.isnan(value) else value
    counts = per_image_counts(prep, threshold)
    pred, actual = counts["predicted"] > 0, counts["actual"] > 0
    confusion = {
        "tp": int(np.sum(pred & actual)),
        "fp": int(np.sum(pred & ~actual)),
        "fn": int(np.sum(~pred & actual)),
        "tn": int(np.sum(~pred & ~actual)),
    }
    tp, fp = int(counts["tp"].sum()), int(counts["fp"].sum())
    positives = int(prep.pr.positives.sum())
    summary = {
        "images": prep.gt.n_images,
        "pedestrians": positives,
        "ignored_boxes": int(prep.gt.ignored.sum()),
        "detections": prep.dets.size,
        "detections_other_category": prep.dets.dropped_other_category,
        "detections_unknown_image": prep.dets.dropped_unknown_image,
        "detections_at_threshold": int(np.sum(prep.pr.scores >= threshold)),
        "tp": tp,
        "fp": fp,
        "fn": positives - tp,
    }
    return EvaluationResult(
        metrics=values,
        undefined=_undefined_reasons(prep, threshold, values),
        confusion=confusion,
        counts=summary,
        curves=_curves(prep, threshold),
        score_threshold_source=source,
    )


def evaluate_detections(
    gt: Dataset | Path,
    detections: list[dict[str, Any]] | Path,
    score_threshold: float | None = None,
    drop_unknown_images: bool = False,
) -> EvaluationResult:
    """All metrics of `detections` (COCO results, list or JSON file) on `gt` (Dataset, dir or JSON file).

    `score_threshold` should be the one chosen on the validation split and stored with the model; None
    chooses the max-F1 threshold on these very detections (optimistic; recorded in score_threshold_source).
    Detections on images missing from `gt` are an error unless `drop_unknown_images` (then counted).
    """
    return evaluate_prepared(prepare(gt, detections, drop_unknown_images), score_threshold)


def defined_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that have a value, as floats (KFP metrics are numbers); undefined ones (None) are left out
    (their reason is in the evaluation)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
