"""The arrays every metric works on, and the ground truth flattened into them (no per-box objects).

Images are indexed by their position in `GroundTruthArrays.image_ids` (sorted ascending, as pycocotools does).
Both readers of annotation files, the general one (inputs) and the fast one (json_arrays), build these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import (
    PEDESTRIAN_ID,
    Dataset,
    dataset_from_json,
    load_dataset,
    read_annotations,
)
from modelopsx.errors import DatasetError, UserError


class DetectionsError(UserError):
    """A detections file or list is unreadable or holds invalid entries."""


@dataclass(frozen=True)
class GroundTruthArrays:
    """Pedestrian ground truth of a dataset, one row per box, boxes in the order of the annotations file."""

    image_ids: np.ndarray  # int64 [N], sorted ascending
    box_image: np.ndarray  # int64 [M], index into image_ids
    boxes: np.ndarray  # float64 [M, 4], x, y, w, h
    ignored: np.ndarray  # bool [M], iscrowd or ignore: neither a miss nor a false positive
    visibility: np.ndarray  # float64 [M]
    height: np.ndarray  # float64 [M], pixels (full-body height where the dataset knows it)

    @property
    def n_images(self) -> int:
        return int(self.image_ids.size)

    def positives_per_image(self, ignored: np.ndarray | None = None) -> np.ndarray:
        """Count of non-ignored boxes per image (int64 [N])."""
        mask = ~(self.ignored if ignored is None else ignored)
        return np.bincount(self.box_image[mask], minlength=self.n_images).astype(np.int64)


@dataclass(frozen=True)
class DetectionArrays:
    """Pedestrian detections, one row per detection, in the order they were given."""

    image: np.ndarray  # int64 [K], index into GroundTruthArrays.image_ids
    boxes: np.ndarray  # float64 [K, 4], x, y, w, h
    scores: np.ndarray  # float64 [K]
    dropped_other_category: int = 0
    dropped_unknown_image: int = 0

    @property
    def size(self) -> int:
        return int(self.scores.size)


def load_ground_truth(gt: Dataset | Path | str) -> Dataset:
    """Accept a Dataset, a canonical dataset directory, or an annotations JSON file."""
    if isinstance(gt, Dataset):
        return gt
    path = Path(gt)
    if path.is_dir():
        return load_dataset(path)
    return dataset_from_json(read_annotations(path), path.parent, path)


def ground_truth_arrays(dataset: Dataset) -> GroundTruthArrays:
    """Flatten the pedestrian boxes of `dataset`; boxes of other categories are left out."""
    image_ids = np.array([img.id for img in dataset.images], dtype=np.int64)
    image_ids.sort()
    boxes = [b for b in dataset.annotations if b.category_id == PEDESTRIAN_ID]
    box_ids = np.array([b.image_id for b in boxes], dtype=np.int64)
    xywh = np.array([b.bbox for b in boxes], dtype=np.float64).reshape(-1, 4)
    box_image = check_ground_truth(image_ids, box_ids, xywh, lambda i: (boxes[i].id, boxes[i].bbox))
    return GroundTruthArrays(
        image_ids=image_ids,
        box_image=box_image,
        boxes=xywh,
        ignored=np.array([bool(b.iscrowd or b.ignore) for b in boxes], dtype=bool),
        visibility=np.array([b.visibility for b in boxes], dtype=np.float64),
        height=np.array([b.height for b in boxes], dtype=np.float64),
    )


def check_ground_truth(
    image_ids: np.ndarray, box_ids: np.ndarray, xywh: np.ndarray, describe: Callable[[int], tuple[Any, Any]]
) -> np.ndarray:
    """Each box's index into the sorted `image_ids`, after checking ids and boxes; `describe(i)` gives
    (annotation id, bbox) of box i for the message."""
    if image_ids.size > 1 and (image_ids[1:] == image_ids[:-1]).any():
        values, counts = np.unique(image_ids, return_counts=True)
        raise DatasetError(
            f"ground truth: duplicate image ids {values[counts > 1][:5].tolist()}",
            hint="every image needs a unique id",
        )
    box_image = np.searchsorted(image_ids, box_ids)
    if image_ids.size:
        found = image_ids[np.minimum(box_image, image_ids.size - 1)]
        unknown = (box_image >= image_ids.size) | (found != box_ids)
    else:
        unknown = np.ones(box_ids.size, dtype=bool)
    if unknown.any():
        raise DatasetError(
            f"ground truth: {int(unknown.sum())} annotation(s) name unknown image ids, e.g. "
            f"{sorted(set(box_ids[unknown].tolist()))[:5]}",
            hint="every annotation's image_id must be listed in 'images'",
        )
    bad = ~np.isfinite(xywh).all(axis=1) | (xywh[:, 2] < 0) | (xywh[:, 3] < 0)
    if bad.any():
        box_id, bbox = describe(int(np.flatnonzero(bad)[0]))
        raise DatasetError(
            f"ground truth: annotation id {box_id} has an invalid bbox {bbox}",
            hint="bbox is [x, y, w, h] with finite numbers and w, h >= 0",
        )
    return box_image.astype(np.int64)
