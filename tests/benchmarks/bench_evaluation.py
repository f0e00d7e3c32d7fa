"""COCO AP speed: ours vs pycocotools vs faster-coco-eval on the same data, with identical `ap`.

Default: 5,000 images, ~10 pedestrians each (5% crowds, 5% ignore regions), 100 detections each.
`python -m tests.benchmarks bench_evaluation` (or BENCH_EVAL_IMAGES=500 for a quick look).
Each library is timed end to end from in-memory ground truth and results: index/array building,
matching and accumulation (pycocotools' `summarize` included since that is where its AP comes from).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import Box, Dataset, ImageRecord


def make_case(
    n_images: int, boxes_per_image: int = 10, dets_per_image: int = 100, seed: int = 0
) -> tuple[Dataset, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    images, boxes, dets = [], [], []
    for image_id in range(1, n_images + 1):
        images.append(ImageRecord(id=image_id, file_name=f"{image_id}.jpg", width=640, height=480))
        k = int(rng.poisson(boxes_per_image))
        w = np.round(rng.uniform(8, 80, k), 2)
        xywh = np.stack(
            [
                np.round(rng.uniform(0, 560, k), 2),
                np.round(rng.uniform(0, 300, k), 2),
                w,
                np.round(w * rng.uniform(1.5, 3.0, k), 2),
            ],
            axis=1,
        )
        kind = rng.random(k)
        first = len(boxes)
        for j in range(k):
            boxes.append(
                Box(
                    id=len(boxes) + 1,
                    image_id=image_id,
                    bbox=xywh[j].tolist(),
                    iscrowd=int(kind[j] < 0.05),
                    ignore=int(0.05 <= kind[j] < 0.10),
                    visibility=float(rng.uniform(0.1, 1.0)),
                )
            )
        near = rng.random(dets_per_image) < (0.5 if k else 0.0)
        src = rng.integers(0, max(k, 1), dets_per_image)
        jitter = rng.normal(0, 0.15, (dets_per_image, 4))
        rw = rng.uniform(8, 80, dets_per_image)
        scores = rng.random(dets_per_image)
        for j in range(dets_per_image):
            if near[j]:
                x, y, bw, bh = boxes[first + int(src[j])].bbox
                bbox = [
                    x + jitter[j, 0] * bw,
                    y + jitter[j, 1] * bh,
                    bw * np.exp(jitter[j, 2]),
                    bh * np.exp(jitter[j, 3]),
                ]
            else:
                bbox = [rng.uniform(0, 560), rng.uniform(0, 300), rw[j], rw[j] * 2.2]
            dets.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [float(v) for v in bbox],
                    "score": float(scores[j]),
                }
            )
    return Dataset(root=Path("."), images=images, annotations=boxes), dets


def coco_json(ds: Dataset) -> dict[str, Any]:
    """What a COCO tool sees: ignore regions given as crowd regions (see modelopsx.evaluation.coco_ap)."""
    data = ds.to_json()
    for ann in data["annotations"]:
        ann["iscrowd"] = int(ann["iscrowd"] or ann["ignore"])
    return data


def run_reference(module: str, gt: dict[str, Any], dets: list[dict[str, Any]]) -> tuple[float, float, float]:
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)  # both tools annotate the dicts in place
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1]), time.perf_counter() - started


def main() -> None:
    from modelopsx.evaluation.bootstrap import bootstrap_intervals
    from modelopsx.evaluation.coco_ap import coco_ap
    from modelopsx.evaluation.metrics import evaluate_detections

    n_images = int(os.environ.get("BENCH_EVAL_IMAGES", "5000"))
    ds, dets = make_case(n_images)
    print(f"{n_images} images, {len(ds.annotations)} boxes, {len(dets)} detections", flush=True)
    gt = coco_json(ds)

    started = time.perf_counter()
    ours = coco_ap(ds, dets)
    t_ours = time.perf_counter() - started
    assert ours.ap is not None and ours.ap50 is not None
    print(f"modelopsx        ap={ours.ap:.12f} ap50={ours.ap50:.12f} {t_ours:8.2f}s", flush=True)
    fast_ap, fast_ap50, t_fast = run_reference("faster_coco_eval", gt, dets)
    print(f"faster-coco-eval ap={fast_ap:.12f} ap50={fast_ap50:.12f} {t_fast:8.2f}s", flush=True)
    ref_ap, ref_ap50, t_ref = run_reference("pycocotools", gt, dets)
    print(f"pycocotools      ap={ref_ap:.12f} ap50={ref_ap50:.12f} {t_ref:8.2f}s", flush=True)

    same = abs(ours.ap - ref_ap) <= 1e-6 and abs(ours.ap50 - ref_ap50) <= 1e-6
    print(
        f"ap identical to pycocotools (1e-6): {same}; |diff| ap={abs(ours.ap - ref_ap):.1e} "
        f"ap50={abs(ours.ap50 - ref_ap50):.1e}"
    )
    print(
        f"speed-up vs pycocotools: {t_ref / t_ours:.1f}x; time ratio ours / faster-coco-eval: "
        f"{t_ours / t_fast:.2f} (goal <= 2)"
    )

    started = time.perf_counter()
    evaluate_detections(ds, dets, score_threshold=0.5)
    print(f"all metrics (AP, P/R/F1, accuracy, four miss rates): {time.perf_counter() - started:.2f}s")
    subset = Dataset(
        root=ds.root, images=ds.images[:500], annotations=[b for b in ds.annotations if b.image_id <= 500]
    )
    sub_dets = [d for d in dets if d["image_id"] <= 500]
    started = time.perf_counter()
    bootstrap_intervals(subset, sub_dets, n_resamples=1000, score_threshold=0.5)
    print(
        f"bootstrap, 1000 resamples of 500 images x 100 detections, every metric: "
        f"{time.perf_counter() - started:.2f}s"
    )
    if not same:
        raise AssertionError("ap differs from pycocotools")


if __name__ == "__main__":
    main()
