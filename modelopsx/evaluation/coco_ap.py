"""COCO average precision, equal to pycocotools' bbox `stats[0]` (AP) and `stats[1]` (AP50).

Setting: one category, area range "all", 100 detections per image, IoU thresholds .50:.05:.95, 101-point
interpolated precision. Ground truth flagged `iscrowd` *or* `ignore` is what pycocotools calls a crowd
region: matched by intersection over detection area, any number of times, never a miss nor a false
positive. (pycocotools itself reads only `iscrowd`; to compare, give it `iscrowd=1` for ignore regions.)

The accumulation repeats pycocotools' arithmetic on the same arrays (cumulative TP/FP in its order,
precision `tp / (fp + tp + eps)` made monotone, `searchsorted(..., side="left")` at the recall thresholds)
so results agree to the last bit, not just to 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelopsx.data.format import Dataset
from modelopsx.evaluation.inputs import (
    load_detection_arrays,
    load_ground_truth_arrays,
)
from modelopsx.evaluation.matching import FP, TP, MatchResult, match_detections

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 100
_EPS = np.spacing(1)


@dataclass(frozen=True)
class CocoApResult:
    ap: float | None  # None: no non-ignored ground truth
    ap50: float | None
    precision: np.ndarray  # float64 [T, R], interpolated precision at each IoU and recall threshold


def match_coco(gt: Any, dets: Any) -> MatchResult:
    """COCO matching (`gt`: GroundTruthArrays, `dets`: DetectionArrays) at the ten IoU thresholds."""
    return match_detections(gt, dets, IOU_THRESHOLDS, max_dets=MAX_DETS)


def interpolated_precision(
    match: MatchResult, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision [B, T, R] and positives [B] for image weights [B, N] (None: each image once).

    A weight w repeats an image w times (bootstrap resampling). With weights None this is pycocotools'
    accumulate step for step; weighted rows take the equivalent shortcut of `_weighted_precision`.
    """
    if weights is not None:
        return _weighted_precision(match, np.asarray(weights, dtype=np.float64))
    n_thr, n_dets = match.states.shape
    positives = np.array([float(match.positives.sum())])
    tp = np.cumsum(match.states == TP, axis=1).astype(np.float64)  # [T, K]
    fp = np.cumsum(match.states == FP, axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / positives[0]
    precision = tp / (fp + tp + _EPS)
    # Monotone from the right: pycocotools' backward `pr[i-1] = max(pr[i-1], pr[i])` loop.
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros((1, n_thr, RECALL_THRESHOLDS.size))
    for t in range(n_thr):
        idx = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")
        inside = idx < n_dets
        out[0, t, inside] = precision[t, idx[inside]]
    return out, positives


def _weighted_precision(match: MatchResult, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same table for many weight rows, touching only true-positive positions of the ranking.

    Exact shortcut: the position searchsorted picks for a recall threshold > 0 is always one where recall
    rises (a true positive), and the right-to-left maximum of precision over a suffix is attained at a
    true positive (false positives only lower precision). So precision is needed at true positives only,
    with the false-positive count before each taken from a cumulative sum over false positives.
    """
    n_rows = weights.shape[0]
    positives = weights @ match.positives.astype(np.float64)  # [B]
    det_w = weights[:, match.det_image]  # [B, K]
    out = np.zeros((n_rows, match.states.shape[0], RECALL_THRESHOLDS.size))
    for t, states in enumerate(match.states):
        tp_pos = np.flatnonzero(states == TP)
        if tp_pos.size == 0:
            continue
        fp_pos = np.flatnonzero(states == FP)
        tp = np.cumsum(det_w[:, tp_pos], axis=1)  # [B, m]
        fp_cum = np.zeros((n_rows, fp_pos.size + 1))
        np.cumsum(det_w[:, fp_pos], axis=1, out=fp_cum[:, 1:])
        fp = fp_cum[:, np.searchsorted(fp_pos, tp_pos)]  # false positives ranked before each true positive
        precision = tp / (fp + tp + _EPS)
        precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = tp / positives[:, None]
        for b in range(n_rows):
            idx = np.searchsorted(recall[b], RECALL_THRESHOLDS, side="left")
            inside = idx < tp_pos.size
            out[b, t, inside] = precision[b, idx[inside]]
    return out, positives


def ap_from_precision(precision: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ap [B], ap50 [B]) from interpolated precision [B, T, R]; NaN where there are no positives."""
    flat = precision.reshape(precision.shape[0], -1)
    ap = np.array([row.mean() for row in flat])  # row-wise np.mean keeps pycocotools' summation order
    ap50 = np.array([row.mean() for row in precision[:, 0, :]])
    undefined = positives <= 0
    ap[undefined] = np.nan
    ap50[undefined] = np.nan
    return ap, ap50


def coco_ap(gt: Dataset | Any, detections: list[dict[str, Any]] | Any) -> CocoApResult:
    """AP (IoU .50:.95) and AP50 of `detections` on `gt` (Dataset, dataset dir or annotations file)."""
    gt_arrays = load_ground_truth_arrays(gt)
    dets = load_detection_arrays(detections, gt_arrays)
    precision, positives = interpolated_precision(match_coco(gt_arrays, dets))
    ap, ap50 = ap_from_precision(precision, positives)
    return CocoApResult(
        ap=None if np.isnan(ap[0]) else float(ap[0]),
        ap50=None if np.isnan(ap50[0]) else float(ap50[0]),
        precision=precision[0],
    )
