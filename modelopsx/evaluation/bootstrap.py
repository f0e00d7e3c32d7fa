"""Bootstrap over test images: confidence intervals for every metric, and paired differences of two models.

A resample draws the test images with replacement; an image drawn w times weighs w in every count. The
detections are matched once (metrics.prepare) and each resample only re-weighs per-image data, so 1,000
resamples cost about as much as a handful of evaluations. The score threshold stays fixed across resamples.
Paired: both models are scored on the same resampled image sets, so the difference's spread reflects only
how the models differ, not which images happened to be drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import Dataset
from modelopsx.errors import UserError
from modelopsx.evaluation.inputs import load_ground_truth
from modelopsx.evaluation.metrics import (
    DEFAULT_SCORE_THRESHOLD,
    PreparedEvaluation,
    best_f1_threshold,
    compute_metrics,
    prepare,
)
from modelopsx.metric_spec import DEFAULT_CONFIDENCE, LOWER_IS_BETTER, QUALITY_METRICS

BOOTSTRAP_METRICS: tuple[str, ...] = QUALITY_METRICS
_ELEMENTS_PER_BATCH = 400_000  # resamples x detections per batch: small enough to stay in cache


@dataclass(frozen=True)
class PairedBootstrapResult:
    metric: str
    # delta, low, high are NaN (None in to_json) when the metric is undefined for either model, so that a
    # gate comparing them sees "not significant" rather than crashing; `reason` says why.
    delta: float  # b - a on the full test set
    low: float
    high: float
    p_value: float  # share of resamples where b is not better than a (1.0 when undefined)
    n_resamples: int
    confidence: float
    a: float | None
    b: float | None
    lower_is_better: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        def finite(value: float | None) -> float | None:
            return None if value is None or np.isnan(value) else float(value)

        return {
            "metric": self.metric,
            "delta": finite(self.delta),
            "low": finite(self.low),
            "high": finite(self.high),
            "p_value": self.p_value,
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "a": self.a,
            "b": self.b,
            "lower_is_better": self.lower_is_better,
            "reason": self.reason,
        }


def resample_weights(n_images: int, n_resamples: int, seed: int) -> np.ndarray:
    """[n_resamples, n_images] counts: how often each image is drawn in each resample."""
    if n_images == 0:
        return np.zeros((n_resamples, 0))
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n_resamples).astype(np.float64)


def _threshold(prep: PreparedEvaluation, given: float | None) -> float:
    if given is not None:
        return float(given)
    chosen = best_f1_threshold(prep.pr)
    return DEFAULT_SCORE_THRESHOLD if chosen is None else chosen


def resampled_metrics(
    prep: PreparedEvaluation,
    threshold: float,
    weights: np.ndarray,
    metrics: tuple[str, ...] = BOOTSTRAP_METRICS,
) -> dict[str, np.ndarray]:
    """Each metric over the weight rows, in batches that bound memory; NaN where undefined."""
    batch = max(1, _ELEMENTS_PER_BATCH // max(1, prep.dets.size))
    parts = [
        compute_metrics(prep, threshold, weights[i : i + batch], metrics)
        for i in range(0, weights.shape[0], batch)
    ]
    return {name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0) for name in metrics}


def _check_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise UserError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise UserError(f"confidence must be between 0 and 1, got {confidence}", hint="e.g. 0.95")


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def bootstrap_intervals(
    gt: Dataset | Path,
    detections: list[dict[str, Any]] | Path,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    score_threshold: float | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every metric over `n_resamples` image resamples.

    Metrics undefined on the full set are left out. `score_threshold` None uses the max-F1 threshold, as
    evaluate_detections does.
    """
    _check_args(n_resamples, confidence)
    prep = prepare(gt, detections)
    threshold = _threshold(prep, score_threshold)
    point = compute_metrics(prep, threshold)
    wanted = tuple(name for name in BOOTSTRAP_METRICS if not np.isnan(point[name][0]))
    values = resampled_metrics(prep, threshold, resample_weights(prep.gt.n_images, n_resamples, seed), wanted)
    out: dict[str, tuple[float, float]] = {}
    for name in wanted:
        interval = _interval(values[name], confidence)
        if interval is not None:
            out[name] = interval
    return out


def paired_bootstrap(
    gt: Dataset | Path,
    detections_a: list[dict[str, Any]] | Path,
    detections_b: list[dict[str, Any]] | Path,
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
) -> PairedBootstrapResult:
    """Difference b - a of `metric` with a paired percentile interval and a one-sided p-value.

    A threshold left None is the max-F1 threshold of those very detections (optimistic for that model: the
    gate always passes each model's validation threshold, see `paired_bootstrap_metrics`).
    """
    dataset = load_ground_truth(gt)
    prep_a, prep_b = prepare(dataset, detections_a), prepare(dataset, detections_b)
    return _paired(
        prep_a,
        prep_b,
        (metric,),
        _threshold(prep_a, threshold_a),
        _threshold(prep_b, threshold_b),
        n_resamples,
        seed,
        confidence,
        undefined_as=None,
    )[metric]


def paired_bootstrap_metrics(
    gt: Dataset | Path,
    detections_a: list[dict[str, Any]] | Path,
    detections_b: list[dict[str, Any]] | Path,
    metrics: tuple[str, ...],
    *,
    threshold_a: float,
    threshold_b: float,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    undefined_as: Mapping[str, float] | None = None,
) -> dict[str, PairedBootstrapResult]:
    """Paired differences b - a of several metrics on the same resamples, each model at its own threshold.

    The thresholds are required: choosing one on the test images themselves would favour that model.
    `undefined_as` gives the value an undefined metric (precision with no detection, f1 with it) is scored as,
    per metric (the gate passes each metric's worst), instead of leaving the difference undefined.
    """
    dataset = load_ground_truth(gt)
    return _paired(
        prepare(dataset, detections_a),
        prepare(dataset, detections_b),
        metrics,
        float(threshold_a),
        float(threshold_b),
        n_resamples,
        seed,
        confidence,
        undefined_as,
    )


def _paired(
    prep_a: PreparedEvaluation,
    prep_b: PreparedEvaluation,
    metrics: tuple[str, ...],
    thr_a: float,
    thr_b: float,
    n_resamples: int,
    seed: int,
    confidence: float,
    undefined_as: Mapping[str, float] | None,
) -> dict[str, PairedBootstrapResult]:
    """p_value is the share of resamples in which b is not better than a (delta <= 0, or >= 0 for miss
    rates). Identical detections give delta 0 exactly and p_value 1."""
    unknown = [m for m in metrics if m not in BOOTSTRAP_METRICS]
    if unknown:
        raise UserError(
            f"unknown metric {unknown[0]!r} for the paired bootstrap",
            hint=f"choose one of {', '.join(BOOTSTRAP_METRICS)}",
        )
    _check_args(n_resamples, confidence)

    def scored(values: np.ndarray, metric: str) -> np.ndarray:
        if undefined_as is None or metric not in undefined_as:
            return values
        return np.where(np.isnan(values), undefined_as[metric], values)

    point_a = compute_metrics(prep_a, thr_a, metrics=metrics)
    point_b = compute_metrics(prep_b, thr_b, metrics=metrics)
    weights = resample_weights(prep_a.gt.n_images, n_resamples, seed)
    values_a = resampled_metrics(prep_a, thr_a, weights, metrics)
    values_b = resampled_metrics(prep_b, thr_b, weights, metrics)
    out: dict[str, PairedBootstrapResult] = {}
    for metric in metrics:
        lower = metric in LOWER_IS_BETTER
        a = float(scored(point_a[metric], metric)[0])
        b = float(scored(point_b[metric], metric)[0])
        if np.isnan(a) or np.isnan(b):
            out[metric] = PairedBootstrapResult(
                metric,
                np.nan,
                np.nan,
                np.nan,
                1.0,
                n_resamples,
                confidence,
                None if np.isnan(a) else a,
                None if np.isnan(b) else b,
                lower,
                reason=f"{metric} is undefined for {'a' if np.isnan(a) else 'b'}",
            )
            continue
        deltas = scored(values_b[metric], metric) - scored(values_a[metric], metric)
        defined = deltas[~np.isnan(deltas)]
        interval = _interval(deltas, confidence)
        not_better = defined >= 0 if lower else defined <= 0
        out[metric] = PairedBootstrapResult(
            metric=metric,
            delta=b - a,
            low=interval[0] if interval else np.nan,
            high=interval[1] if interval else np.nan,
            p_value=float(not_better.mean()) if defined.size else 1.0,
            n_resamples=n_resamples,
            confidence=confidence,
            a=a,
            b=b,
            lower_is_better=lower,
        )
    return out
