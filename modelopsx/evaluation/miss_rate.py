"""Log-average miss rate (MR^-2) with the CityPersons evaluation setups.

Semantics follow CityPersons' `eval_MR_multisetup.py` (itself a port of Dollar's Caltech toolbox):
- Per setup, a box is ignored when flagged (iscrowd/ignore) or outside the setup's height range or
  visibility range, bounds inclusive (`height < lo or height > hi` -> ignore).
- Ignored boxes are matched by intersection over the detection's area (IoA), non-ignored by IoU; both at
  0.5, greedily by descending score, at most 1000 detections per image.
- Detections whose height lies outside [lo / 1.25, hi * 1.25) are dropped before matching (the reference's
  `expFilter`), so a detection of a smaller person neither helps nor hurts.
- Detections matched to ignored boxes are dropped; the rest form the miss-rate-vs-FPPI curve, FPPI being
  false positives divided by the number of images (all images of the ground truth).
- At each of the nine reference points FPPI = 10^-2, 10^-1.75, ..., 10^0 (np.logspace(-2, 0, 9)) the miss
  rate is taken at the last curve point with FPPI <= the reference; when there is none (the very first
  detection is already a false positive beyond that FPPI) it is 1.0, as in the Caltech toolbox (its curve
  starts at recall 0). The CityPersons Python port reads the array's last element in that case; we keep the
  toolbox's value, which only differs on sets of fewer than 100 images.
- MR^-2 = exp(mean(log(max(1e-10, miss_rate)))) over the nine points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelopsx.evaluation.inputs import DetectionArrays, GroundTruthArrays
from modelopsx.evaluation.matching import FP, IGNORED, TP, MatchResult, match_detections

INF = float("inf")
FPPI_POINTS = np.logspace(-2.0, 0.0, 9)
IOU_THRESHOLD = 0.5
HEIGHT_EXPANSION = 1.25
MAX_DETS = 1000


@dataclass(frozen=True)
class MissRateSetup:
    """A CityPersons evaluation setup: boxes outside both ranges (inclusive) are ignored."""

    height: tuple[float, float]
    visibility: tuple[float, float]
    description: str


SETUPS: dict[str, MissRateSetup] = {
    "reasonable": MissRateSetup((50.0, INF), (0.65, INF), "height >= 50 px, visibility >= 0.65"),
    "all": MissRateSetup((20.0, INF), (0.2, INF), "height >= 20 px, visibility >= 0.2"),
    "heavy": MissRateSetup((50.0, INF), (0.2, 0.65), "height >= 50 px, visibility 0.2..0.65"),
    "small": MissRateSetup((50.0, 75.0), (0.65, INF), "height 50..75 px, visibility >= 0.65"),
}


def setup_ignored(gt: GroundTruthArrays, setup: MissRateSetup) -> np.ndarray:
    """Boxes ignored under `setup`: flagged ones, and those outside its height or visibility range."""
    (h_lo, h_hi), (v_lo, v_hi) = setup.height, setup.visibility
    return (
        gt.ignored | (gt.height < h_lo) | (gt.height > h_hi) | (gt.visibility < v_lo) | (gt.visibility > v_hi)
    )


def match_setup(gt: GroundTruthArrays, dets: DetectionArrays, setup: MissRateSetup) -> MatchResult:
    """Match at IoU 0.5 under `setup` (detections outside the expanded height range are dropped)."""
    h_lo, h_hi = setup.height
    det_height = dets.boxes[:, 3]
    keep = (det_height >= h_lo / HEIGHT_EXPANSION) & (det_height < h_hi * HEIGHT_EXPANSION)
    return match_detections(
        gt, dets, [IOU_THRESHOLD], gt_ignored=setup_ignored(gt, setup), max_dets=MAX_DETS, det_keep=keep
    )


def miss_rate_curve(
    match: MatchResult, weights: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(fppi per row, miss rate per row, positives [B]) of the curve, one row per image-weight vector."""
    if weights is None:
        weights = np.ones((1, match.n_images))
    weights = np.asarray(weights, dtype=np.float64)
    counted = match.states[0] != IGNORED
    states = match.states[0][counted]
    det_w = weights[:, match.det_image[counted]]  # [B, K]
    tp = np.cumsum(det_w * (states == TP), axis=1)
    fp = np.cumsum(det_w * (states == FP), axis=1)
    positives = weights @ match.positives.astype(np.float64)
    n_images = weights.sum(axis=1)
    fppi = [fp[b] / n_images[b] for b in range(weights.shape[0])]
    with np.errstate(divide="ignore", invalid="ignore"):
        miss = [1.0 - tp[b] / positives[b] for b in range(weights.shape[0])]
    return fppi, miss, positives


def log_average_miss_rate(match: MatchResult, weights: np.ndarray | None = None) -> np.ndarray:
    """MR^-2 per weight row [B]; NaN where the setup has no non-ignored box.

    Only the nine reference points are needed, and the last curve point with FPPI <= a reference lies just
    before the first false positive that pushes FPPI past it; so recall there is the (weighted) count of
    true positives ranked before that false positive. This touches true and false positives separately
    instead of building the whole curve per resample.
    """
    w = np.ones((1, match.n_images)) if weights is None else np.asarray(weights, dtype=np.float64)
    states = match.states[0]
    tp_pos, fp_pos = np.flatnonzero(states == TP), np.flatnonzero(states == FP)
    positives = w @ match.positives.astype(np.float64)
    n_images = w.sum(axis=1)
    det_w = w[:, match.det_image]
    tp_cum = np.zeros((w.shape[0], tp_pos.size + 1))
    np.cumsum(det_w[:, tp_pos], axis=1, out=tp_cum[:, 1:])
    fp_cum = np.cumsum(det_w[:, fp_pos], axis=1)
    # True positives ranked before each false positive, and before the end of the list.
    tp_before_fp = np.r_[np.searchsorted(tp_pos, fp_pos), tp_pos.size]
    out = np.full(w.shape[0], np.nan)
    for b in range(w.shape[0]):
        if positives[b] <= 0:
            continue
        fppi = fp_cum[b] / n_images[b]
        first_beyond = np.searchsorted(fppi, FPPI_POINTS, side="right")  # index into fp_pos, or fp_pos.size
        recall = tp_cum[b, tp_before_fp[first_beyond]] / positives[b]
        out[b] = np.exp(np.mean(np.log(np.maximum(1e-10, 1.0 - recall))))
    return out
