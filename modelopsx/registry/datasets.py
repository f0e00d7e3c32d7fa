"""Dataset versions: publish a canonical dataset dir to the store (DVC layout) and record it; resolve; pull.

A version is the seq of the dataset's record in `registry/datasets/<name>/`. Publishing content identical to
the latest version appends nothing and returns that version, so re-running a publish step is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelopsx.errors import DatasetError, NotFoundError
from modelopsx.registry.log import Registry, check_name
from modelopsx.registry.records import DatasetRecord
from modelopsx.storage.base import ObjectStore


def dataset_counts(dataset_dir: Path, annotations: dict[str, Any] | None = None) -> dict[str, int]:
    """The record's counts; `annotations`: annotations.json already parsed, when the caller has it."""
    from modelopsx.data.format import ANNOTATIONS_FILE, dataset_from_json, load_dataset

    dataset_dir = Path(dataset_dir)
    if annotations is None:
        ds = load_dataset(dataset_dir)
    else:
        ds = dataset_from_json(annotations, dataset_dir, dataset_dir / ANNOTATIONS_FILE)
    ignored = sum(1 for b in ds.annotations if b.ignore or b.iscrowd)
    with_people = {b.image_id for b in ds.annotations if not (b.ignore or b.iscrowd)}
    return {
        "images": len(ds.images),
        "boxes": len(ds.annotations) - ignored,
        "ignore_boxes": ignored,
        "images_with_pedestrians": len(with_people),
        "groups": len({i.group for i in ds.images}),
    }


def _validate(dataset_dir: Path) -> tuple[list[str], dict[str, Any] | None]:
    """Raise DatasetError when the dataset fails validation; return its warnings and parsed annotations."""
    try:
        from modelopsx.data.validate import validate_and_read
    except ImportError:  # the data area's validator is optional for the registry
        return [], None
    annotations, report = validate_and_read(dataset_dir)
    if not report.ok:
        errors = [str(e) for e in report.errors]
        shown = "; ".join(errors[:5]) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        raise DatasetError(
            f"dataset {dataset_dir} failed validation: {shown}",
            hint=f"run `modelopsx dataset validate {dataset_dir}` for the full report and fix it",
        )
    return [str(w) for w in report.warnings], annotations


def publish_dataset(
    dataset_dir: Path, name: str, store: ObjectStore, quiet: bool = True, description: str | None = None
) -> dict[str, Any]:
    """Validate, push (DVC layout, through the sync engine) and record a dataset version; returns the record.

    The returned record has "version"; "unchanged": True when the content equals the latest version.
    """
    from modelopsx.data.hashing import dataset_version_hash
    from modelopsx.storage.dvc_remote import push_directory

    check_name(name)
    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / "annotations.json").is_file():
        raise DatasetError(
            f"{dataset_dir} is not a dataset directory (no annotations.json)",
            hint="publish a canonical dataset: images/ plus annotations.json",
        )
    warnings, annotations = _validate(dataset_dir)  # annotations.json parsed once, for all three
    registry = Registry(store)
    content_hash = dataset_version_hash(dataset_dir, annotations)
    latest = registry.latest("datasets", name)
    if latest is not None and latest.get("content_hash") == content_hash:
        return {**latest, "unchanged": True}
    dvc_hash = push_directory(dataset_dir, store, quiet=quiet)
    record = DatasetRecord(
        dvc_hash=dvc_hash,
        content_hash=content_hash,
        counts=dataset_counts(dataset_dir, annotations),
        source=str(dataset_dir.resolve()),
        description=description,
    ).to_dict()
    if warnings:
        record["validation_warnings"] = warnings[:20]
    seq = registry.append("datasets", name, record, seq_fields=("version",))
    return {**registry.get("datasets", name, seq), "unchanged": False}


def list_versions(registry: Registry, name: str) -> list[dict[str, Any]]:
    return registry.records("datasets", name)


def resolve_dataset(registry: Registry, name: str, version: str | int = "latest") -> dict[str, Any]:
    """The record of `name` at `version` ("latest" or a number); unknown -> NotFoundError listing versions."""
    check_name(name)
    records = registry.records("datasets", name)
    if not records:
        known = registry.names("datasets")
        raise NotFoundError(
            f"no dataset named {name!r} in the registry; known datasets: "
            f"{', '.join(known) if known else 'none'}",
            hint="publish one with `modelopsx dataset publish DIR --name NAME`",
        )
    text = str(version).strip().lower()
    if text in ("latest", ""):
        return records[-1]
    number = text[1:] if text.startswith("v") else text
    if not number.isdigit():
        raise DatasetError(
            f"dataset version must be 'latest' or a number, got {version!r}",
            hint=f"versions of {name!r}: {', '.join(str(r['seq']) for r in records)}",
        )
    for record in records:
        if record["seq"] == int(number):
            return record
    raise NotFoundError(
        f"dataset {name!r} has no version {number}; versions: {', '.join(str(r['seq']) for r in records)}",
        hint=f"use one of them or 'latest' (see `modelopsx dataset list {name}`)",
    )


def pull_dataset(
    store: ObjectStore, name: str, version: str | int, out_dir: Path, quiet: bool = True
) -> Path:
    """Check out a dataset version into out_dir (verified) and return the path."""
    from modelopsx.storage.dvc_remote import pull_directory

    record = resolve_dataset(Registry(store), name, version)
    return pull_directory(record["dvc_hash"], store, Path(out_dir), quiet=quiet)
