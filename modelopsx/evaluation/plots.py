"""Report figures: precision-recall curve, miss rate vs FPPI (log-log), and a grid of sample detections.

matplotlib is used through `Figure` objects (Agg canvas, no pyplot state), cv2 for drawing on images; both
are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelopsx.data.format import Dataset

if TYPE_CHECKING:
    from modelopsx.evaluation.metrics import EvaluationResult

_MAX_CURVE_POINTS = 4000
SETUP_NAMES = ("reasonable", "all", "heavy", "small")
GT_COLOR = (0, 170, 0)  # BGR green
DET_COLOR = (0, 0, 220)  # BGR red
IGNORE_COLOR = (150, 150, 150)


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep at most _MAX_CURVE_POINTS evenly spaced points (always the last one): plots stay light."""
    n = arrays[0].size
    if n <= _MAX_CURVE_POINTS:
        return arrays
    idx = np.unique(np.r_[np.linspace(0, n - 1, _MAX_CURVE_POINTS).astype(np.int64), n - 1])
    return tuple(a[idx] for a in arrays)


def _figure(width: float = 6.0, height: float = 4.5) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_pr_curve(result: EvaluationResult, path: Path, baseline: EvaluationResult | None = None) -> Path:
    """Precision vs recall at IoU 0.5, with the operating point at the score threshold marked."""
    fig = _figure()
    ax = fig.add_subplot()
    for label, res, style, color in (("model", result, "-", "C0"), ("baseline", baseline, "--", "C1")):
        if res is None:
            continue
        pr = res.curves.get("pr", {})
        recall, precision = np.asarray(pr.get("recall", [])), np.asarray(pr.get("precision", []))
        if recall.size:
            recall, precision = _thin(recall, precision)
            ap50 = _fmt(res.metrics.get("ap50"))
            ax.plot(recall, precision, style, color=color, label=f"{label} (AP50 {ap50})")
        p, r = res.metrics.get("precision"), res.metrics.get("recall")
        if p is not None and r is not None:
            ax.plot([r], [p], "o", color=color, label=f"{label} @ score {res.metrics['score_threshold']:.3g}")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall (IoU 0.5)")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "undefined: no pedestrians in the ground truth", ha="center", va="center")
    fig.savefig(path)
    return path


def plot_miss_rate(result: EvaluationResult, path: Path, baseline: EvaluationResult | None = None) -> Path:
    """Miss rate vs false positives per image, log-log, one line per evaluation setup."""
    fig = _figure()
    ax = fig.add_subplot()
    for label, res, style in (("", result, "-"), ("baseline ", baseline, "--")):
        if res is None:
            continue
        for setup, curve in res.curves.get("mr_fppi", {}).items():
            color = f"C{list(SETUP_NAMES).index(setup) if setup in SETUP_NAMES else 9}"
            fppi, miss = np.asarray(curve["fppi"]), np.asarray(curve["miss_rate"])
            keep = fppi > 0  # log axis: the zero-FPPI start of the curve cannot be drawn
            if not keep.any():
                continue
            fppi, miss = _thin(fppi[keep], np.maximum(miss[keep], 1e-4))
            value = res.metrics.get(f"mr2_{setup}")
            ax.step(
                fppi,
                miss,
                style,
                where="post",
                color=color,
                label=f"{label}{setup} (MR-2 {_fmt(value, pct=True)})",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-3, 1e1)
    ax.set_ylim(0.01, 1.0)
    ax.axvspan(1e-2, 1.0, color="0.9", zorder=0)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("miss rate")
    ax.set_title("Miss rate vs FPPI (shaded: MR-2 range)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower left", fontsize=8)
    fig.savefig(path)
    return path


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if pct else f"{value:.3f}"


def _dashed_rect(
    img: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: tuple[int, int, int], dash: int = 6
) -> None:
    import cv2

    (x1, y1), (x2, y2) = p1, p2
    for a, b, fixed, horizontal in (
        (x1, x2, y1, True),
        (x1, x2, y2, True),
        (y1, y2, x1, False),
        (y1, y2, x2, False),
    ):
        for start in range(min(a, b), max(a, b), 2 * dash):
            end = min(start + dash, max(a, b))
            s, e = ((start, fixed), (end, fixed)) if horizontal else ((fixed, start), (fixed, end))
            cv2.line(img, s, e, color, 1, cv2.LINE_AA)


def _tile(
    gt: Dataset,
    image_index: int,
    boxes: list[Any],
    dets: list[dict[str, Any]],
    threshold: float,
    size: tuple[int, int],
) -> np.ndarray:
    import cv2

    record = gt.images[image_index]
    tile_w, tile_h = size
    canvas = np.full((tile_h, tile_w, 3), 255, dtype=np.uint8)
    img = cv2.imread(str(gt.image_path(record)), cv2.IMREAD_COLOR)
    if img is None:
        img = np.full((max(record.height, 1), max(record.width, 1), 3), 220, dtype=np.uint8)
        cv2.putText(img, "image missing", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    scale = min(tile_w / img.shape[1], (tile_h - 18) / img.shape[0])
    img = cv2.resize(
        img,
        (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )

    def corners(b: list[float]) -> tuple[tuple[int, int], tuple[int, int]]:
        x, y, w, h = (v * scale for v in b)
        return (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))

    for box in boxes:
        p1, p2 = corners(box.bbox)
        if box.ignore or box.iscrowd:
            _dashed_rect(img, p1, p2, IGNORE_COLOR)
        else:
            cv2.rectangle(img, p1, p2, GT_COLOR, 2)
    for det in dets:
        if det["score"] < threshold:
            continue
        p1, p2 = corners(det["bbox"])
        cv2.rectangle(img, p1, p2, DET_COLOR, 1)
        cv2.putText(
            img,
            f"{det['score']:.2f}",
            (p1[0], max(p1[1] - 2, 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            DET_COLOR,
            1,
            cv2.LINE_AA,
        )
    canvas[18 : 18 + img.shape[0], : img.shape[1]] = img
    cv2.putText(
        canvas, record.file_name[:40], (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
    )
    return canvas


def draw_samples(
    gt: Dataset,
    detections: list[dict[str, Any]],
    threshold: float,
    path: Path,
    n_samples: int = 6,
    columns: int = 3,
    tile_size: tuple[int, int] = (320, 240),
) -> Path:
    """Grid of sample images: ground truth green, ignore regions dashed grey, detections >= threshold red.

    Samples are the images with the most pedestrians plus person-free ones, picked deterministically.
    """
    import cv2

    boxes_by_image = gt.boxes_by_image()
    dets_by_image: dict[int, list[dict[str, Any]]] = {}
    for det in detections:
        dets_by_image.setdefault(int(det["image_id"]), []).append(det)
    ranked = sorted(
        range(len(gt.images)), key=lambda i: (-len(boxes_by_image.get(gt.images[i].id, [])), gt.images[i].id)
    )
    empty = [i for i in ranked if not boxes_by_image.get(gt.images[i].id)]
    chosen = [i for i in ranked if boxes_by_image.get(gt.images[i].id)][: max(n_samples - 1, 1)]
    chosen = (chosen + empty[: n_samples - len(chosen)])[:n_samples]
    tiles = [
        _tile(
            gt,
            i,
            boxes_by_image.get(gt.images[i].id, []),
            dets_by_image.get(gt.images[i].id, []),
            threshold,
            tile_size,
        )
        for i in chosen
    ]
    if not tiles:
        tiles = [np.full((tile_size[1], tile_size[0], 3), 255, dtype=np.uint8)]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * tile_size[1], columns * tile_size[0], 3), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        grid[r * tile_size[1] : (r + 1) * tile_size[1], c * tile_size[0] : (c + 1) * tile_size[0]] = tile
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"could not write {path}")
    return path
