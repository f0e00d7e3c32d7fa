"""Content hash of a canonical dataset: the version identity used in split.json, records and lineage.

sha256 over (a) the annotations JSON without its descriptive `info` block, re-serialized canonically (sorted
keys, no whitespace), so formatting does not change the hash, and (b) for every referenced image in sorted
file-name order, its name and the sha256 of its bytes (streamed). Files in images/ that annotations do not
reference are not part of the dataset and do not change it.

`info` says where a dataset came from (split and augment record their source folder there, which is a fresh
temporary directory in every pipeline run), not what it holds: leaving it out makes this one hash
location-independent, so split, augment, training lineage and the gate's "same test split" all agree.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelopsx.data.format import ANNOTATIONS_FILE, IMAGES_DIR, read_annotations
from modelopsx.errors import DatasetError

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Streaming sha256 of a file (hashlib releases the GIL, so threads hash files in parallel)."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: image file missing", hint="run `modelopsx dataset validate` on the dataset"
        ) from None


def canonical_annotations(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dataset_version_hash(root: Path, annotations: Mapping[str, Any] | None = None) -> str:
    """Stable sha256 hex digest of a dataset directory's content (annotations + referenced image bytes).

    `annotations`: root's annotations.json already parsed, when the caller has it."""
    root = Path(root)
    if annotations is None:
        annotations = read_annotations(root / ANNOTATIONS_FILE)
    data = {k: v for k, v in annotations.items() if k != "info"}
    names = sorted({str(entry.get("file_name")) for entry in data["images"] if isinstance(entry, dict)})
    images_dir = root / IMAGES_DIR
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        digests = list(pool.map(lambda name: file_sha256(images_dir / name), names))
    outer = hashlib.sha256()
    outer.update(b"modelopsx-dataset-v1\n")
    outer.update(hashlib.sha256(canonical_annotations(data)).digest())
    for name, digest in zip(names, digests, strict=True):
        outer.update(f"{name}\0{digest}\n".encode())
    return outer.hexdigest()
