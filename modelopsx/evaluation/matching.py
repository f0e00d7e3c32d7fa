"""Greedy detection-to-ground-truth matching, vectorized across images.

The rule is COCO's (pycocotools `evaluateImg`), which the CityPersons miss-rate code shares:
detections are visited per image in descending score (stable, so ties keep their input order), at most
`max_dets` of them; each takes the unmatched non-ignored box with the highest overlap >= the threshold (ties:
the later box in annotation order, as pycocotools' `<` comparison does). Only when no such box exists may it
fall on an ignored box (crowd or ignore region, overlap = intersection over the *detection's* area), which
makes it neither a true nor a false positive; ignored boxes absorb any number of detections.

Instead of pycocotools' triple Python loop per image, all images of a chunk advance together: step k
matches the k-th best detection of every image at every IoU threshold with a handful of numpy operations on
[images, thresholds, boxes] arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelopsx.evaluation.inputs import DetectionArrays, GroundTruthArrays

TP, FP, IGNORED = 1, 0, -1
_CHUNK_ELEMENTS = 1 << 21  # ious per chunk: detections x images x boxes; bounds memory at ~16 MiB per array


@dataclass(frozen=True)
class MatchResult:
    """Per-detection outcome at each threshold, detections in the global evaluation order.

    The global order is pycocotools' accumulate order: descending score, ties broken by image (ascending id)
    and then by input order.
    """

    thresholds: np.ndarray  # float64 [T]
    det_index: np.ndarray  # int64 [K], rows of the DetectionArrays that were evaluated
    det_image: np.ndarray  # int64 [K], image index of each evaluated detection
    scores: np.ndarray  # float64 [K]
    states: np.ndarray  # int8 [T, K]: TP, FP or IGNORED
    positives: np.ndarray  # int64 [N], non-ignored ground truth per image
    n_images: int


def _overlaps(det: tuple[np.ndarray, ...], gt: tuple[np.ndarray, ...], crowd: np.ndarray) -> np.ndarray:
    """Overlap for broadcastable coordinate arrays, following pycocotools' `bbIou` operation by operation
    (so results are bit-identical): IoU, or intersection over the detection's area where `crowd` is set."""
    dx, dy, dw, dh = det
    gx, gy, gw, gh = gt
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    det_area = dw * dh
    union = np.where(crowd, det_area, det_area + gw * gh - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = inter / union
    out[(w <= 0) | (h <= 0)] = 0.0
    return out


def box_overlaps(dets: np.ndarray, gts: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """Overlap of every detection [D, 4] with every box [G, 4] (x, y, w, h) -> [D, G]; crowd columns use
    intersection over detection area."""
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 4)
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
    return _overlaps(
        tuple(dets[:, None, i] for i in range(4)),
        tuple(gts[None, :, i] for i in range(4)),
        np.asarray(gt_crowd, dtype=bool)[None, :],
    )


def _greedy_chunk(
    ious: np.ndarray,
    det_valid: np.ndarray,
    gt_normal: np.ndarray,
    gt_ignored: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Match one chunk. ious [D, n, G] with boxes stored last-first (so argmax's first hit is pycocotools'
    last tie); det_valid [D, n]; gt_normal / gt_ignored [n, G]. Returns states int8 [D, n, T]."""
    n_dets, n_images, n_boxes = ious.shape
    n_thr = thresholds.size
    states = np.zeros((n_dets, n_images, n_thr), dtype=np.int8)
    if n_boxes == 0:
        return states
    ignored_best = np.where(gt_ignored[None], ious, -1.0).max(axis=2)  # [D, n]
    candidates = np.where(gt_normal[None], ious, -1.0)  # [D, n, G]
    matched = np.zeros((n_images, n_thr, n_boxes), dtype=bool)
    rows = np.arange(n_images)[:, None]
    cols = np.arange(n_thr)[None, :]
    hit = np.zeros((n_images, n_thr), dtype=bool)
    for k in range(n_dets):
        values = np.where(matched, -1.0, candidates[k][:, None, :])  # [n, T, G]
        best = values.argmax(axis=2)  # [n, T]
        np.greater_equal(values[rows, cols, best], thresholds, out=hit)
        hit &= det_valid[k][:, None]
        matched[rows, cols, best] |= hit
        states[k] = np.where(hit, TP, np.where(ignored_best[k][:, None] >= thresholds, IGNORED, FP))
    return states


def _chunks(gt_counts: np.ndarray, det_counts: np.ndarray) -> list[np.ndarray]:
    """Group images of similar box counts so that padding stays small and each chunk fits the budget."""
    order = np.lexsort((det_counts, gt_counts))
    chunks: list[np.ndarray] = []
    start = 0
    while start < order.size:
        g_min = int(gt_counts[order[start]])
        d_max = 1
        end = start
        while end < order.size:
            g = int(gt_counts[order[end]])  # ascending: the chunk's largest so far
            d = max(d_max, int(det_counts[order[end]]))
            if end > start and (g > 2 * g_min + 4 or (end - start + 1) * d * max(g, 1) > _CHUNK_ELEMENTS):
                break
            d_max = d
            end += 1
        chunks.append(order[start:end])
        start = end
    return chunks


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Position of each row inside its run of equal, already sorted, group values."""
    if groups.size == 0:
        return groups.astype(np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    run_lengths = np.diff(np.r_[starts, groups.size])
    return np.arange(groups.size) - np.repeat(starts, run_lengths)


def _split_by(labels: np.ndarray, n_labels: int) -> list[np.ndarray]:
    """Row indices grouped by label 0..n_labels-1, each group in ascending row order."""
    rows = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[rows], np.arange(n_labels + 1))
    return [rows[bounds[i] : bounds[i + 1]] for i in range(n_labels)]


def match_detections(
    gt: GroundTruthArrays,
    dets: DetectionArrays,
    thresholds: np.ndarray | list[float],
    *,
    gt_ignored: np.ndarray | None = None,
    max_dets: int | None = None,
    det_keep: np.ndarray | None = None,
) -> MatchResult:
    """Match `dets` to `gt` at every threshold.

    gt_ignored: which boxes are ignored (default: crowd or ignore flag); ignored boxes are compared by
    intersection over detection area and absorb detections. max_dets: per image, keep the best-scoring ones
    (applied before det_keep, as the CityPersons code truncates before its height filter). det_keep: a mask
    over detections to evaluate at all (e.g. the miss-rate height range); the others are dropped.
    """
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    ignored = gt.ignored if gt_ignored is None else gt_ignored
    n_images = gt.n_images

    # Per image, descending score, ties in input order; then truncate and filter.
    order = np.lexsort((np.arange(dets.size), -dets.scores, dets.image))
    if max_dets is not None:
        order = order[_rank_within(dets.image[order]) < max_dets]
    if det_keep is not None:
        order = order[det_keep[order]]
    det_img = dets.image[order]
    det_rank = _rank_within(det_img)
    det_counts = np.bincount(det_img, minlength=n_images)

    gt_order = np.argsort(gt.box_image, kind="stable")
    gt_img = gt.box_image[gt_order]
    gt_rank = _rank_within(gt_img)
    gt_counts = np.bincount(gt_img, minlength=n_images)

    chunks = _chunks(gt_counts, det_counts)
    chunk_of = np.zeros(n_images, dtype=np.int64)  # which chunk each image is in, and its slot there
    slot = np.zeros(n_images, dtype=np.int64)
    for c, chunk in enumerate(chunks):
        chunk_of[chunk] = c
        slot[chunk] = np.arange(chunk.size)
    det_rows_by_chunk = _split_by(chunk_of[det_img], len(chunks))
    gt_rows_by_chunk = _split_by(chunk_of[gt_img], len(chunks))

    states_sorted = np.zeros((thr.size, order.size), dtype=np.int8)
    for chunk, d_rows, g_rows in zip(chunks, det_rows_by_chunk, gt_rows_by_chunk, strict=True):
        d_max = int(det_counts[chunk].max(initial=0))
        g_max = int(gt_counts[chunk].max(initial=0))
        if d_max == 0:
            continue
        n = chunk.size
        d_slot, d_pos = slot[det_img[d_rows]], det_rank[d_rows]
        det_boxes = np.zeros((d_max, n, 4))
        det_boxes[d_pos, d_slot] = dets.boxes[order[d_rows]]
        det_valid = np.zeros((d_max, n), dtype=bool)
        det_valid[d_pos, d_slot] = True

        g_slot = slot[gt_img[g_rows]]
        # Last-first storage: box r of an image with c boxes goes to column g_max - 1 - r.
        g_pos = g_max - 1 - gt_rank[g_rows]
        gt_boxes = np.zeros((n, g_max, 4))
        gt_boxes[g_slot, g_pos] = gt.boxes[gt_order[g_rows]]
        gt_ign = np.zeros((n, g_max), dtype=bool)
        gt_ign[g_slot, g_pos] = ignored[gt_order[g_rows]]
        gt_normal = np.zeros((n, g_max), dtype=bool)
        gt_normal[g_slot, g_pos] = ~ignored[gt_order[g_rows]]

        ious = _overlaps(
            tuple(det_boxes[:, :, None, i] for i in range(4)),
            tuple(gt_boxes[None, :, :, i] for i in range(4)),
            gt_ign[None],
        )  # [D, n, G]
        chunk_states = _greedy_chunk(ious, det_valid, gt_normal, gt_ign, thr)  # [D, n, T]
        states_sorted[:, d_rows] = chunk_states[d_pos, d_slot].T

    # Global order: descending score, then image, then input order (a stable sort of the per-image lists).
    sorted_scores = dets.scores[order]
    global_order = np.lexsort((order, det_img, -sorted_scores))
    return MatchResult(
        thresholds=thr,
        det_index=order[global_order],
        det_image=det_img[global_order],
        scores=sorted_scores[global_order],
        states=states_sorted[:, global_order],
        positives=np.bincount(gt.box_image[~ignored], minlength=n_images).astype(np.int64),
        n_images=n_images,
    )
