"""COCO AP speed: ours vs pycocotools vs faster-coco-eval on the same data, with identical `ap`.

Data: ~10 pedestrians per image (5% crowds, 5% ignore regions), 100 detections per image.
1. In process, at 5,000 images (BENCH_EVAL_IMAGES): each library timed from in-memory ground truth and
   results (pycocotools' `summarize` included since that is where its AP comes from).
2. Whole process, at 5,000 and 50,000 images (1,000,000 detections): each tool in a fresh interpreter reads
   the annotations and detections JSON files and prints AP; wall time and peak RSS (wait4) side by side.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
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


WHOLE_PROCESS = {
    "modelopsx": (
        "from modelopsx.evaluation.coco_ap import coco_ap\n"
        "r = coco_ap(sys.argv[1], sys.argv[2])\n"
        "print(repr(r.ap), repr(r.ap50))\n"
    ),
    "faster-coco-eval": (
        "from faster_coco_eval import COCO, COCOeval_faster as COCOeval\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    gt = COCO(sys.argv[1]); e = COCOeval(gt, gt.loadRes(sys.argv[2]), 'bbox')\n"
        "    e.evaluate(); e.accumulate(); e.summarize()\n"
        "print(repr(float(e.stats[0])), repr(float(e.stats[1])))\n"
    ),
    "pycocotools": (
        "from pycocotools.coco import COCO\nfrom pycocotools.cocoeval import COCOeval\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    gt = COCO(sys.argv[1]); e = COCOeval(gt, gt.loadRes(sys.argv[2]), 'bbox')\n"
        "    e.evaluate(); e.accumulate(); e.summarize()\n"
        "print(repr(float(e.stats[0])), repr(float(e.stats[1])))\n"
    ),
}


# The child's own high-water mark: VmHWM belongs to the process image that exec started, whereas
# getrusage's ru_maxrss carries over the (large) RSS of this benchmark process from the fork.
PEAK_RSS = (
    "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')))\n"
)


def run_whole_process(tool: str, gt_path: Path, dets_path: Path) -> tuple[float, float, float, float]:
    """(ap, ap50, wall seconds, peak RSS MiB) of one tool in a fresh interpreter."""
    script = "import contextlib, io, sys\n" + WHOLE_PROCESS[tool] + PEAK_RSS
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, str(gt_path), str(dets_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    ap, ap50, peak_kib = done.stdout.split()
    return float(ap), float(ap50), wall, int(peak_kib) / 1024


def whole_process(n_images: int, dets_per_image: int) -> None:
    ds, dets = make_case(n_images, dets_per_image=dets_per_image)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        gt_path, dets_path = Path(tmp) / "annotations.json", Path(tmp) / "detections.json"
        gt_path.write_text(json.dumps(coco_json(ds)))
        dets_path.write_text(json.dumps(dets))
        del ds, dets
        size = (gt_path.stat().st_size + dets_path.stat().st_size) / 1e6
        print(
            f"whole process, {n_images:,} images, {n_images * dets_per_image:,} detections "
            f"({size:.0f} MB of JSON):",
            flush=True,
        )
        results = {}
        for tool in WHOLE_PROCESS:
            results[tool] = run_whole_process(tool, gt_path, dets_path)
            ap, ap50, wall, rss = results[tool]
            line = f"  {tool:17s} ap={ap:.12f} ap50={ap50:.12f} {wall:7.2f}s  peak RSS {rss:6.0f} MiB"
            print(line, flush=True)
    ours, fast, ref = results["modelopsx"], results["faster-coco-eval"], results["pycocotools"]
    same = ours[0] == ref[0] and ours[1] == ref[1]
    print(
        f"  ap identical to pycocotools: {same}; speed-up vs pycocotools {ref[2] / ours[2]:.1f}x "
        f"(goal >= 20x at 50k), vs faster-coco-eval {fast[2] / ours[2]:.1f}x; peak RSS ours / pycocotools "
        f"{ours[3] / ref[3]:.2f}, ours / faster-coco-eval {ours[3] / fast[3]:.2f}",
        flush=True,
    )
    if abs(ours[0] - ref[0]) > 1e-12:
        raise AssertionError("ap differs from pycocotools")


def main() -> None:
    in_process()
    whole_process(5_000, dets_per_image=100)
    whole_process(50_000, dets_per_image=20)


def in_process() -> None:
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
