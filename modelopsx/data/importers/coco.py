"""COCO instances JSON + an images folder. Only the person category is kept (-> pedestrian, id 1).

`iscrowd` is kept, and a crowd box is also an ignore region. Images without any person are kept as
person-free images (they teach the model what is not a pedestrian). COCO boxes are already 0-based
[x, y, w, h].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelopsx.data.format import Dataset, read_annotations
from modelopsx.data.importers.common import DatasetWriter, progress
from modelopsx.data.paths import resolve_inside
from modelopsx.data.schema import is_finite_number, is_integer
from modelopsx.errors import DatasetError

PERSON_NAMES = ("person", "pedestrian")


def find_annotation_file(folder: Path, split: str | None) -> Path:
    """The instances JSON inside `folder`: `annotations/instances_<split>.json`, or the only JSON there is."""
    candidates = sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))
    instances = [p for p in candidates if p.name.startswith("instances_")] or candidates
    if split:
        chosen = [p for p in instances if p.stem in (split, f"instances_{split}")]
        if not chosen:
            raise DatasetError(
                f"{folder}: no instances JSON for split {split!r}",
                hint=f"found: {', '.join(p.name for p in instances) or 'none'}",
            )
        return chosen[0]
    if len(instances) == 1:
        return instances[0]
    if not instances:
        raise DatasetError(
            f"{folder}: no COCO annotation JSON found",
            hint="pass the instances_*.json file, or a folder/archive that holds it",
        )
    raise DatasetError(
        f"{folder}: several annotation files: {', '.join(p.name for p in instances)}",
        hint="choose one with --split (e.g. --split val2017) or pass the JSON file itself",
    )


def _images_dir(folder: Path, ann_path: Path, images_dir: Path | None, first_file: str | None) -> Path:
    if images_dir is not None:
        chosen = images_dir if images_dir.is_absolute() else folder / images_dir
        if not chosen.is_dir():
            raise DatasetError(f"{chosen}: --images-dir is not a folder")
        return chosen
    split_name = ann_path.stem.removeprefix("instances_")
    here, above = ann_path.parent, ann_path.parent.parent
    candidates = [
        above / split_name,
        here / split_name,
        here / "images",
        above / "images",
        folder / split_name,
        folder / "images",
        here,
    ]
    for cand in candidates:
        if cand.is_dir() and (first_file is None or (cand / first_file).is_file()):
            return cand
    raise DatasetError(
        f"{ann_path}: cannot find the images folder next to it",
        hint="pass --images-dir (e.g. --images-dir val2017)",
    )


def import_coco(
    folder: Path,
    writer: DatasetWriter,
    *,
    annotation_file: Path | None = None,
    images_dir: Path | None = None,
    split: str | None = None,
    quiet: bool = True,
) -> Dataset:
    ann_path = annotation_file or find_annotation_file(folder, split)
    data = read_annotations(ann_path, expected="COCO instances JSON")
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise DatasetError(
            f'{ann_path}: \'categories\' must be a list of {{"id", "name"}} objects, '
            f"got {type(categories).__name__} {categories!r:.40}",
            hint="check that this is a COCO instances file",
        )
    person_ids = {
        c["id"]
        for c in categories
        if isinstance(c, dict) and is_integer(c.get("id")) and str(c.get("name", "")).lower() in PERSON_NAMES
    }
    if not person_ids:
        names = ", ".join(str(c.get("name")) for c in categories if isinstance(c, dict)) or "none"
        raise DatasetError(
            f"{ann_path}: no 'person' category (categories: {names})",
            hint="this importer keeps people only; check that this is a COCO instances file",
        )
    images = data["images"]
    first = images[0].get("file_name") if images and isinstance(images[0], dict) else None
    img_dir = _images_dir(folder, ann_path, images_dir, first)

    boxes_by_image: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for index, ann in enumerate(data.get("annotations") or []):
        where = f"{ann_path}: annotations[{index}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where} is not an object", hint="fix this entry")
        for field in ("category_id", "image_id"):
            if not is_integer(ann.get(field)):
                raise DatasetError(
                    f"{where}: '{field}' must be an integer, got {ann.get(field)!r}",
                    hint="fix this entry (COCO ids are JSON integers)",
                )
        if ann["category_id"] in person_ids:
            boxes_by_image.setdefault(ann["image_id"], []).append((index, ann))

    seen: set[int] = set()
    for index, entry in enumerate(progress(images, len(images), "COCO", quiet)):
        if not (
            isinstance(entry, dict)
            and is_integer(entry.get("id"))
            and isinstance(entry.get("file_name"), str)
        ):
            raise DatasetError(
                f"{ann_path}: images[{index}] needs an integer 'id' and a 'file_name' string",
                hint="fix this entry",
            )
        source_id, file_name = entry["id"], entry["file_name"]
        if source_id in seen:
            raise DatasetError(
                f"{ann_path}: images[{index}] repeats image id {source_id}", hint="image ids must be unique"
            )
        seen.add(source_id)
        width, height = entry.get("width"), entry.get("height")
        src = resolve_inside(img_dir, file_name, f"{ann_path}: images[{index}]")
        size = (int(width), int(height)) if isinstance(width, int) and isinstance(height, int) else None
        image = writer.add_image_file(src, declared_size=size, extra={"source_id": source_id})
        for ann_index, ann in boxes_by_image.pop(source_id, []):
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_finite_number, bbox))):
                raise DatasetError(
                    f"{ann_path}: annotations[{ann_index}]: bbox must be four finite numbers "
                    f"[x, y, w, h], got {bbox!r}",
                    hint="fix this entry",
                )
            x, y, w, h = (float(v) for v in bbox)
            writer.add_box(
                image,
                x,
                y,
                w,
                h,
                iscrowd=int(bool(ann.get("iscrowd", 0))),
                where=f"{ann_path.name}: annotations[{ann_index}]",
            )
    for image_id, orphans in boxes_by_image.items():
        writer.warnings.append(
            f"{ann_path.name}: {len(orphans)} person annotation(s) name unknown image id {image_id}; skipped"
        )
    return writer.commit()
