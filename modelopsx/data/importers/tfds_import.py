"""TFDS: `kitti`, `voc/<year>` and `coco/<year>` read through `tfds.load` from an already prepared data dir.

Nothing is downloaded (`download=False`); images come through `SkipDecoding`, so their original encoded bytes
are stored unchanged. TFDS boxes are normalized `(ymin, xmin, ymax, xmax)`:
- kitti: TFDS measures y from the *bottom* (`ymin = (H - bottom) / H`), so top = (1 - ymax) * H and
  bottom = (1 - ymin) * H. DontCare is dropped by TFDS; Person_sitting becomes an ignore box.
- voc: TFDS divides VOC's 1-based pixel corners by the size unchanged, so x = xmin*W - 1 and
  w = (xmax - xmin)*W + 1.
- coco: 0-based corners; the label is an index into the 80 COCO classes, where `person` is index 0 when the
  prepared metadata carries no class names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelopsx.data.format import Dataset, ImageRecord
from modelopsx.data.importers.common import DatasetWriter, progress
from modelopsx.data.importers.kitti import VISIBILITY_FROM_OCCLUDED
from modelopsx.errors import DatasetError

TFDS_FAMILIES = ("kitti", "voc", "coco")
COCO_PERSON_INDEX = 0


def family_of(name: str) -> str:
    family = name.split("/")[0].split(":")[0].strip().lower()
    if family not in TFDS_FAMILIES:
        raise DatasetError(
            f"TFDS dataset {name!r} is not supported",
            hint="use --name kitti, voc/2007 (or another voc year) or coco/2017",
        )
    return family


def _label_names(info: Any) -> list[str]:
    try:
        names = info.features["objects"]["type" if info.name == "kitti" else "label"].names
        return [str(n) for n in names]
    except (KeyError, AttributeError, TypeError):
        return []


def _to_str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _encoded_image(value: Any) -> bytes:
    """Encoded bytes as stored by TFDS; a decoded array (if a caller decoded anyway) is re-encoded as PNG."""
    if isinstance(value, bytes):
        return value
    import cv2

    array = np.asarray(value)
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise DatasetError("a TFDS example holds an image that cannot be encoded")
    return buf.tobytes()


def _load(name: str, split: str, data_dir: Path | None) -> tuple[Any, Any]:
    import tensorflow_datasets as tfds

    try:
        return tfds.load(
            name,
            split=split,
            data_dir=str(data_dir) if data_dir else None,
            download=False,
            with_info=True,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
    except Exception as exc:  # TFDS raises many types (AssertionError, DatasetNotFoundError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(
            f"TFDS could not load {name!r} split {split!r}: {first}",
            hint="prepare it first (e.g. `tfds build` on a machine with the data) and pass "
            "its --data-dir; nothing is downloaded at run time",
        ) from None


def _kitti_boxes(
    writer: DatasetWriter, image: ImageRecord, objects: dict[str, Any], names: list[str], where: str
) -> None:
    bboxes = np.asarray(objects.get("bbox", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
    for k, (ymin, xmin, ymax, xmax) in enumerate(bboxes):
        label = names[int(objects["type"][k])] if names else str(objects["type"][k])
        top, bottom = (1.0 - ymax) * image.height, (1.0 - ymin) * image.height  # TFDS KITTI y is flipped
        left, right = xmin * image.width, xmax * image.width
        if label == "Pedestrian":
            occluded = int(objects["occluded"][k]) if "occluded" in objects else 0
            truncated = float(objects["truncated"][k]) if "truncated" in objects else None
            writer.add_box(
                image,
                left,
                top,
                right - left,
                bottom - top,
                where=f"{where}[{k}]",
                visibility=VISIBILITY_FROM_OCCLUDED.get(occluded, 0.1),
                truncation=truncated,
            )
        elif label == "Person_sitting":
            writer.add_box(
                image,
                left,
                top,
                right - left,
                bottom - top,
                ignore=1,
                where=f"{where}[{k}]",
                extra={"source_type": label},
            )


def _voc_boxes(
    writer: DatasetWriter, image: ImageRecord, objects: dict[str, Any], names: list[str], where: str
) -> None:
    bboxes = np.asarray(objects.get("bbox", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
    for k, (ymin, xmin, ymax, xmax) in enumerate(bboxes):
        if not names or names[int(objects["label"][k])] != "person":
            continue
        difficult = bool(objects["is_difficult"][k]) if "is_difficult" in objects else False
        truncated = bool(objects["is_truncated"][k]) if "is_truncated" in objects else False
        x1, y1, x2, y2 = xmin * image.width, ymin * image.height, xmax * image.width, ymax * image.height
        writer.add_box(
            image,
            x1 - 1,
            y1 - 1,
            x2 - x1 + 1,
            y2 - y1 + 1,
            ignore=int(difficult),
            truncation=float(truncated),
            where=f"{where}[{k}]",
        )


def _coco_boxes(
    writer: DatasetWriter, image: ImageRecord, objects: dict[str, Any], names: list[str], where: str
) -> None:
    named = bool(names) and not names[0].isdigit()  # ClassLabel(num_classes=80) without metadata: "0".."79"
    bboxes = np.asarray(objects.get("bbox", np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
    for k, (ymin, xmin, ymax, xmax) in enumerate(bboxes):
        label_index = int(objects["label"][k])
        if not (names[label_index] == "person" if named else label_index == COCO_PERSON_INDEX):
            continue
        crowd = bool(objects["is_crowd"][k]) if "is_crowd" in objects else False
        x1, y1, x2, y2 = xmin * image.width, ymin * image.height, xmax * image.width, ymax * image.height
        writer.add_box(image, x1, y1, x2 - x1, y2 - y1, iscrowd=int(crowd), where=f"{where}[{k}]")


_BOXES = {"kitti": _kitti_boxes, "voc": _voc_boxes, "coco": _coco_boxes}


def import_tfds(
    name: str,
    writer: DatasetWriter,
    data_dir: Path | None = None,
    split: str | None = None,
    quiet: bool = True,
) -> Dataset:
    import tensorflow_datasets as tfds

    add_boxes = _BOXES[family_of(name)]
    split = split or "train"
    ds, info = _load(name, split, data_dir)
    names = _label_names(info)
    writer.dataset.info.update({"source": f"tfds:{name}", "tfds_split": split})
    try:
        total: int | None = int(info.splits[split].num_examples) or None
    except Exception:  # unknown split sizes (mocked or partial metadata) only lose the progress total
        total = None
    for index, ex in enumerate(progress(tfds.as_numpy(ds), total, f"TFDS {name}", quiet)):
        file_name = _to_str(ex.get("image/file_name", ex.get("image/filename", b""))) or f"{index:06d}.png"
        image = writer.add_image_bytes(
            _encoded_image(ex["image"]), Path(file_name).name, group=Path(file_name).stem
        )
        add_boxes(writer, image, dict(ex.get("objects", {})), names, f"{file_name}: objects")
    return writer.commit()
