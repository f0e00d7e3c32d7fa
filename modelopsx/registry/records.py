"""Typed builders for registry records; every record carries the lineage needed to reproduce it.

Records are plain JSON objects on the store; these dataclasses only fix their shape in one place. The log adds
"seq", "kind", "name", "record_id" and "created_at" when appending.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import modelopsx
from modelopsx import settings
from modelopsx.errors import StorageError


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The code's git commit: MODELOPSX_GIT_COMMIT (set in images), else `git rev-parse` in a checkout."""
    given = settings.git_commit()
    if given:
        return given
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(modelopsx.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def code_version() -> dict[str, str | None]:
    return {"modelopsx": modelopsx.__version__, "git_commit": git_commit()}


def default_image() -> str | None:
    """The container image this code runs in."""
    from modelopsx.settings import MODELOPSX_IMAGE

    return MODELOPSX_IMAGE


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Lineage:
    """Where a record came from: data version, splits, pipeline run, code and image."""

    dataset_name: str | None = None
    dataset_version: int | None = None
    dataset_dvc_hash: str | None = None
    dataset_content_hash: str | None = None
    split_hashes: dict[str, str] = field(default_factory=dict)
    pipeline_run_id: str | None = None
    initial_weights: str | None = None  # models: where training started (a model version, imagenet, scratch)
    code: dict[str, str | None] = field(default_factory=code_version)
    image: str | None = field(default_factory=default_image)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Lineage:
        data = dict(data or {})
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class DatasetRecord:
    dvc_hash: str
    content_hash: str
    counts: dict[str, int]
    source: str | None = None
    description: str | None = None
    code: dict[str, str | None] = field(default_factory=code_version)
    created_at: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelRecord:
    """A trained model: artifacts (DVC hash of MODEL_DIR on `dvc_remote`, file CIDs), params, metrics."""

    dvc_hash: str
    dvc_remote: str  # store URL holding the DVC objects; pull with dvc_remote.pull_directory
    cids: dict[str, str]  # relative path in MODEL_DIR -> CID
    parameters: dict[str, Any]
    metrics: dict[str, float | None]
    score_threshold: float | None = None
    test_split_hash: str | None = None  # the split the metrics were measured on
    lineage: Lineage = field(default_factory=Lineage)
    training: dict[str, Any] = field(default_factory=dict)  # epochs run, time limit hit, initial weights
    created_at: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationRecord:
    """Metrics of one model version on one test split (used to reuse or redo a champion's evaluation)."""

    model_name: str
    model_version: int | None
    test_split_hash: str | None
    metrics: dict[str, float | None]
    undefined: dict[str, str] = field(default_factory=dict)
    score_threshold: float | None = None
    lineage: Lineage = field(default_factory=Lineage)
    created_at: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PromotionRecord:
    """The champion changes to `model_version`; action is "promote" (gate) or "rollback" (manual)."""

    model_name: str
    model_version: int
    action: str
    reason: str
    model_dvc_hash: str | None = None
    dvc_remote: str | None = None
    previous_model_version: int | None = None
    serving_uri: str | None = None
    decision: dict[str, Any] | None = None
    lineage: Lineage = field(default_factory=Lineage)
    created_at: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promoted_version(promotion: dict[str, Any]) -> int:
    """The model version a promotion record names; a damaged record is an error, never a guess."""
    value = promotion.get("model_version")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        where = f"registry/promotions/{promotion.get('name', '?')}/{promotion.get('seq', '?')}"
        raise StorageError(
            f"promotion record {where} is damaged: model_version is "
            f"{'missing' if 'model_version' not in promotion else repr(value)}, not a version number",
            hint="records are never rewritten; make a valid version the champion again with "
            "`modelopsx registry rollback NAME --to VERSION --reason ...`",
        )
    return value
