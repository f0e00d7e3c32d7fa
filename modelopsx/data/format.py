"""The canonical dataset: a directory with `images/` and a COCO-style `annotations.json`.

One category, `{"id": 1, "name": "pedestrian"}`. Boxes are `[x, y, w, h]` in 0-based pixels. Each box carries
`iscrowd`, `ignore` (a region that neither counts as a miss nor as a false positive), `visibility` (0..1, 1 =
fully visible) and `height` (pixels). Each image carries `width`, `height` and `group` (scene or sequence id:
frames that share a group always land in the same split).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.data.schema import annotation_entry_problems, image_entry_problems
from modelopsx.errors import DatasetError
from modelopsx.jsonfile import parse_json

ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
PEDESTRIAN = {"id": 1, "name": "pedestrian", "supercategory": "person"}
PEDESTRIAN_ID = 1


@dataclass
class Box:
    """One annotated pedestrian (or ignore region) in an image."""

    id: int
    image_id: int
    bbox: list[float]  # [x, y, w, h], 0-based pixels
    iscrowd: int = 0
    ignore: int = 0
    visibility: float = 1.0
    height: float = 0.0  # pixels; filled from bbox when 0
    truncation: float | None = None
    category_id: int = PEDESTRIAN_ID
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bbox = [float(v) for v in self.bbox]
        if not self.height:
            self.height = self.bbox[3]

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        x, y, w, h = self.bbox
        return x, y, x + w, y + h

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "image_id": self.image_id,
            "category_id": self.category_id,
            "bbox": [round(v, 3) for v in self.bbox],
            "area": round(self.area, 3),
            "iscrowd": int(self.iscrowd),
            "ignore": int(self.ignore),
            "visibility": round(float(self.visibility), 4),
            "height": round(float(self.height), 3),
        }
        if self.truncation is not None:
            out["truncation"] = round(float(self.truncation), 4)
        out.update(self.extra)
        return out


@dataclass
class ImageRecord:
    """One image of the dataset; `file_name` is relative to `images/`."""

    id: int
    file_name: str
    width: int
    height: int
    group: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.group:
            self.group = Path(self.file_name).stem

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "file_name": self.file_name,
            "width": int(self.width),
            "height": int(self.height),
            "group": self.group,
        }
        out.update(self.extra)
        return out


@dataclass
class Dataset:
    """In-memory canonical dataset. `root` is the directory holding `images/` and `annotations.json`."""

    root: Path
    images: list[ImageRecord] = field(default_factory=list)
    annotations: list[Box] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES_DIR

    def image_path(self, image: ImageRecord) -> Path:
        return self.images_dir / image.file_name

    def boxes_by_image(self) -> dict[int, list[Box]]:
        out: dict[int, list[Box]] = {img.id: [] for img in self.images}
        for box in self.annotations:
            out.setdefault(box.image_id, []).append(box)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "categories": [PEDESTRIAN],
            "images": [img.to_json() for img in self.images],
            "annotations": [box.to_json() for box in self.annotations],
        }

    def save(self) -> Path:
        """Write `annotations.json` atomically (temp file + rename), so a crash never leaves half a file."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ANNOTATIONS_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(tmp, path)
        return path


_IMAGE_KEYS = {"id", "file_name", "width", "height", "group"}
_BOX_KEYS = {
    "id",
    "image_id",
    "bbox",
    "iscrowd",
    "ignore",
    "visibility",
    "height",
    "truncation",
    "category_id",
    "area",
}


def image_from_json(entry: dict[str, Any]) -> ImageRecord:
    return ImageRecord(
        id=int(entry["id"]),
        file_name=str(entry["file_name"]),
        width=int(entry["width"]),
        height=int(entry["height"]),
        group=str(entry.get("group") or ""),
        extra={k: v for k, v in entry.items() if k not in _IMAGE_KEYS},
    )


def box_from_json(entry: dict[str, Any]) -> Box:
    trunc = entry.get("truncation")
    return Box(
        id=int(entry["id"]),
        image_id=int(entry["image_id"]),
        bbox=list(entry["bbox"]),
        iscrowd=int(entry.get("iscrowd", 0)),
        ignore=int(entry.get("ignore", 0)),
        visibility=float(entry.get("visibility", 1.0)),
        height=float(entry.get("height") or 0.0),
        truncation=None if trunc is None else float(trunc),
        category_id=int(entry.get("category_id", PEDESTRIAN_ID)),
        extra={k: v for k, v in entry.items() if k not in _BOX_KEYS},
    )


def read_annotations(path: Path, expected: str | None = None) -> dict[str, Any]:
    """Parse an annotations file, turning I/O and JSON problems into a DatasetError that names the file.

    `expected` names the format in hints for files that are not a canonical dataset's (e.g. COCO instances).
    """
    kind = expected or "COCO-style JSON"
    if not path.is_file():
        raise DatasetError(
            f"{path}: annotations file not found",
            hint=f"pass the path of the {expected} file"
            if expected
            else f"a canonical dataset is a folder with {IMAGES_DIR}/ and {ANNOTATIONS_FILE}",
        )
    hint = (
        f"expected {expected}"
        if expected
        else "expected COCO-style JSON with images, annotations and categories"
    )
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text file ({exc.reason})", hint=f"expected {kind}") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", hint=hint
        ) from None
    except ValueError as exc:  # JSONContentError: a duplicate key, too deep, too long a number
        raise DatasetError(f"{path}: cannot be read as annotations: {exc}", hint=hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path}: missing the 'images' list", hint=f"expected {kind}")
    if not isinstance(data.get("annotations", []), list):
        raise DatasetError(f"{path}: 'annotations' must be a list", hint=f"expected {kind}")
    return data


def load_dataset(root: str | Path) -> Dataset:
    """Load a canonical dataset directory. Structural problems raise DatasetError naming the entry."""
    root = Path(root)
    return dataset_from_json(read_annotations(root / ANNOTATIONS_FILE), root, root / ANNOTATIONS_FILE)


def dataset_from_json(data: dict[str, Any], root: Path, source: Path) -> Dataset:
    """Build a Dataset from parsed annotations; `source` names the file in error messages."""
    images: list[ImageRecord] = []
    for index, entry in enumerate(data["images"]):
        problems = image_entry_problems(entry)
        if problems:
            raise DatasetError(
                f"{source}: images[{index}] is malformed: {'; '.join(problems)}",
                hint="each image needs integer id, width and height and a relative file_name; "
                "`modelopsx dataset validate --quarantine` moves broken entries out",
            )
        images.append(image_from_json(entry))
    boxes: list[Box] = []
    for index, entry in enumerate(data.get("annotations", [])):
        problems = annotation_entry_problems(entry)
        if problems:
            raise DatasetError(
                f"{source}: annotations[{index}] is malformed: {'; '.join(problems)}",
                hint="each annotation needs integer id and image_id and a bbox of four "
                "finite numbers; `modelopsx dataset validate --quarantine` moves broken "
                "entries out",
            )
        boxes.append(box_from_json(entry))
    return Dataset(root=root, images=images, annotations=boxes, info=dict(data.get("info") or {}))
