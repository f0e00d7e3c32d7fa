"""Split a canonical dataset into train / val / test by a stable hash of each image's group.

u = sha256(salt + group) read as a number in [0, 1): u < test -> test, u < test + val -> val, else train.
An image's split depends only on its own group (and the salt and fractions), so adding images never moves an
existing image, and all frames of a group land together. Images are hardlinked into the split folders when the
filesystem allows, else copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelopsx.data.format import IMAGES_DIR, Dataset, load_dataset
from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.importers.common import check_output_dir
from modelopsx.errors import DatasetError

SPLITS = ("train", "val", "test")
SPLIT_FILE = "split.json"


def group_unit(group: str, salt: str = "") -> float:
    """The group's stable position in [0, 1): the first 8 bytes of sha256(salt + group) over 2**64."""
    digest = hashlib.sha256((salt + group).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(group: str, val: float, test: float, salt: str = "") -> str:
    u = group_unit(group, salt)
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def check_fractions(val: float, test: float) -> None:
    for name, value in (("--val", val), ("--test", test)):
        if not 0.0 <= value < 1.0:
            raise DatasetError(f"{name} {value:g} is outside [0, 1)", hint="fractions are like 0.15")
    if val + test >= 1.0:
        raise DatasetError(
            f"--val {val:g} + --test {test:g} = {val + test:g}: nothing is left for train",
            hint="the fractions must sum to less than 1 (e.g. --val 0.15 --test 0.15)",
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: a copy is always correct
        shutil.copy2(src, dst)


def _write_split(source: Dataset, out: Path, name: str, image_ids: set[int], info: dict[str, Any]) -> Dataset:
    part = Dataset(root=out / name, info={**info, "split": name})
    part.images = [img for img in source.images if img.id in image_ids]
    part.annotations = [box for box in source.annotations if box.image_id in image_ids]
    (part.root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for img in part.images:
        src = source.image_path(img)
        if not src.is_file():
            raise DatasetError(
                f"{src}: image file missing (images[id={img.id}])",
                hint=f"run `modelopsx dataset validate {source.root} --quarantine` first",
            )
        _link_or_copy(src, part.image_path(img))
    part.save()
    return part


def _check_unique(dataset: Dataset) -> None:
    """Duplicate ids or files would leak or drop images across splits; validation explains them in detail."""
    for what, values in (
        ("image id", [img.id for img in dataset.images]),
        ("file name", [img.file_name for img in dataset.images]),
    ):
        seen: set[object] = set()
        for value in values:
            if value in seen:
                raise DatasetError(
                    f"{dataset.root}: duplicate {what} {value!r}; cannot split",
                    hint=f"run `modelopsx dataset validate {dataset.root} --quarantine` first",
                )
            seen.add(value)


def split_dataset(
    src: Path, out: Path, val: float = 0.15, test: float = 0.15, salt: str = ""
) -> dict[str, Any]:
    """Write out/train, out/val, out/test and out/split.json; returns the split.json content.

    split.json: {"source", "source_hash", "fractions", "salt", "counts": {split: {"images", "boxes",
    "pedestrians", "groups"}}, "hashes": {split: content hash}}.
    """
    check_fractions(val, test)
    src, out = Path(src), Path(out)
    check_output_dir(out)
    source = load_dataset(src)
    _check_unique(source)
    source_hash = dataset_version_hash(src)
    members: dict[str, set[int]] = {name: set() for name in SPLITS}
    for img in source.images:
        members[assign_split(img.group or Path(img.file_name).stem, val, test, salt)].add(img.id)

    info = {
        "source": str(src.resolve()),
        "source_hash": source_hash,
        "salt": salt,
        "fractions": {"val": val, "test": test},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.splitting-", dir=out.parent))
    try:
        counts: dict[str, dict[str, int]] = {}
        hashes: dict[str, str] = {}
        for name in SPLITS:
            part = _write_split(source, stage, name, members[name], info)
            counts[name] = {
                "images": len(part.images),
                "boxes": len(part.annotations),
                "pedestrians": sum(1 for b in part.annotations if not (b.ignore or b.iscrowd)),
                "groups": len({img.group for img in part.images}),
            }
            hashes[name] = dataset_version_hash(part.root)
        summary = {**info, "counts": counts, "hashes": hashes}
        (stage / SPLIT_FILE).write_text(json.dumps(summary, indent=1))
        check_output_dir(out)
        if out.is_dir():
            out.rmdir()
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return summary
