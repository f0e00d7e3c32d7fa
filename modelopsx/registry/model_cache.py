"""Registered model versions as local folders: `NAME@vN` or the champion, fetched once into the cache.

A version's folder is keyed by its DVC hash (`$MODELOPSX_CACHE_DIR/models/<name>/v<N>-<hash>/`), so a
store whose version N holds other files is never answered from a stale copy. A fetch lands in a temporary
folder first and is renamed into place whole: an interrupted fetch leaves no half model behind.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from modelopsx.errors import ModelError
from modelopsx.model.layout import MODEL_KERAS, is_model_dir
from modelopsx.registry.champion import champion
from modelopsx.registry.log import Registry
from modelopsx.registry.models import materialize_model
from modelopsx.settings import cache_dir

_REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*)@v?(?P<version>\d+)$")


@dataclass(frozen=True)
class CachedModel:
    name: str
    version: int
    path: Path
    fetched: bool  # False when the cache already held it
    is_champion: bool


def parse_reference(text: str) -> tuple[str, int] | None:
    """`pedestrian-detector@v3` (or `@3`) -> (name, 3); anything else -> None."""
    match = _REFERENCE.match(text.strip())
    return (match.group("name"), int(match.group("version"))) if match else None


def models_cache() -> Path:
    return cache_dir() / "models"


def cached_version(registry: Registry, name: str, version: int, is_champion: bool = False) -> CachedModel:
    """The folder of a registered model version, fetched (and verified) from its DVC remote if not cached."""
    record = registry.get("models", name, version)  # an unknown version names the existing ones
    dvc_hash = str(record.get("dvc_hash") or "")
    target = models_cache() / name / f"v{version}-{dvc_hash.removesuffix('.dir')[:12]}"
    if is_model_dir(target):
        return CachedModel(name, version, target, False, is_champion)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        materialize_model(registry, name, version, partial)
        try:
            os.replace(partial, target)
        except OSError:
            if not (target / MODEL_KERAS).is_file():  # not a concurrent fetch that won the rename
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return CachedModel(name, version, target, True, is_champion)


def cached_champion(registry: Registry, name: str) -> CachedModel:
    """The champion of `name` as a local folder; a clear error when there is none yet."""
    record = champion(registry, name)
    if record is None:
        raise ModelError(
            f"model {name!r} has no champion yet (no model has been promoted)",
            hint="run `make run` again until a model beats the HOG baseline, or pass --model NAME@vN "
            f"(`modelopsx registry list models {name}` lists the versions), a MODEL_DIR, or hog",
        )
    return cached_version(registry, name, int(record["seq"]), is_champion=True)
