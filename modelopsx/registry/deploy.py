"""Publish a SavedModel in TF Serving layout: `<serving_uri>/<model>/<version>/`, `saved_model.pb` last.

TF Serving (and the model puller in manifests/serving) treats a version directory as loadable once
`saved_model.pb` is present, so every other file is written first. A crash mid-copy therefore leaves a
directory without `saved_model.pb`: incomplete, never loaded, and finished by `repair_serving`, which also
catches serving up with the registry's champion when a process died between the promotion record and the copy.
Writes are put-if-absent: an existing file is kept when it holds the same bytes, and a different one is an
error, never overwritten.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelopsx.data.paths import check_links_inside
from modelopsx.errors import KeyExistsError, ModelError, NotFoundError, ReleaseError, StorageError, UserError
from modelopsx.model.layout import SAVED_MODEL_DIR
from modelopsx.storage.base import ObjectStore

if TYPE_CHECKING:
    from modelopsx.registry.log import Registry

SAVED_MODEL_PB = "saved_model.pb"


def saved_model_dir(model_dir: Path) -> Path:
    """MODEL_DIR/saved_model, or model_dir itself when it already is a SavedModel directory."""
    model_dir = Path(model_dir)
    for candidate in (model_dir / SAVED_MODEL_DIR, model_dir):
        if (candidate / SAVED_MODEL_PB).is_file():
            return candidate
    raise ModelError(
        f"{model_dir} holds no SavedModel ({SAVED_MODEL_PB} not found in it or in saved_model/)",
        hint="pass a MODEL_DIR exported by `modelopsx train` (it contains saved_model/)",
    )


def open_serving_store(serving_uri: str) -> ObjectStore:
    from modelopsx.storage.stores import open_store

    return open_store(serving_uri)


def _put_once(store: ObjectStore, key: str, data: bytes) -> bool:
    """Write key unless it already holds exactly these bytes; return True if written."""
    try:
        store.put_if_absent(key, data)
        return True
    except KeyExistsError:
        info = store.head(key)
        if info is not None and info.size == len(data) and store.get(key) == data:
            return False  # finished by an earlier, interrupted deploy
        raise StorageError(
            f"serving store already holds a different {key!r}",
            hint="a serving version is immutable; deploy under a new version (a new promotion)",
        ) from None


def deploy_model(
    model_dir: Path, serving_uri: str, model_name: str, version: int, store: ObjectStore | None = None
) -> str:
    """Copy MODEL_DIR/saved_model to <serving_uri>/<model_name>/<version>/ and return that URI.

    Idempotent: re-running it finishes an interrupted copy of the same model.
    """
    from modelopsx.registry.log import check_name

    check_name(model_name)
    if version < 1:
        raise ModelError(f"serving version must be a positive integer, got {version}")
    src = saved_model_dir(model_dir)
    # serving gets the folder's own files only (saved_model/ itself may not be a link out of it either)
    check_links_inside(Path(model_dir), f"model folder {model_dir}", ModelError)
    store = store or open_serving_store(serving_uri)
    prefix = f"{model_name}/{version}/"
    files = sorted(p for p in src.rglob("*") if p.is_file())
    rest = [p for p in files if p.relative_to(src).as_posix() != SAVED_MODEL_PB]
    for path in [*rest, src / SAVED_MODEL_PB]:  # saved_model.pb last: its presence marks a complete version
        _put_once(store, prefix + path.relative_to(src).as_posix(), path.read_bytes())
    return f"{serving_uri.rstrip('/')}/{model_name}/{version}"


def serving_versions(store: ObjectStore, model_name: str) -> dict[int, bool]:
    """Version directories under <model_name>/ -> complete (saved_model.pb present)."""
    prefix = f"{model_name}/"
    versions: dict[int, bool] = {}
    for info in store.iter_all(prefix):
        head, _, rest = info.key[len(prefix) :].partition("/")
        if not head.isdigit() or not rest:
            continue
        version = int(head)
        versions[version] = versions.get(version, False) or rest == SAVED_MODEL_PB
    return dict(sorted(versions.items()))


def highest_complete_version(serving_uri: str, model_name: str) -> int | None:
    complete = [v for v, ok in serving_versions(open_serving_store(serving_uri), model_name).items() if ok]
    return max(complete) if complete else None


def _promotion_or_none(registry: Registry, model_name: str, seq: int) -> dict[str, Any] | None:
    """Promotion `seq`, or None where the log has a gap (a serving version no promotion names)."""
    try:
        return registry.get("promotions", model_name, seq)
    except NotFoundError:
        return None


def repair_serving(registry: Registry, serving_uri: str, model_name: str) -> int | None:
    """Make serving match the registry: finish incomplete versions and deploy the champion if it is missing.

    Returns the version that was (re)deployed last, or None when serving was already up to date or there is
    no promotion yet. Afterwards serving's highest complete version is the latest promotion's seq.
    """
    from modelopsx.registry.models import materialize_model
    from modelopsx.registry.records import promoted_version

    # Only the newest promotion and those serving holds incomplete are read: never the whole log.
    latest = next(registry.iter_newest("promotions", model_name), None)
    if latest is None:
        return None
    store = open_serving_store(serving_uri)
    versions = serving_versions(store, model_name)
    todo = [
        promotion
        for seq in sorted(versions)
        if not versions[seq]
        and seq < latest["seq"]
        and (promotion := _promotion_or_none(registry, model_name, seq)) is not None
    ]
    if not versions.get(latest["seq"]):
        todo.append(latest)
    if not todo:
        return None
    with tempfile.TemporaryDirectory(prefix="modelopsx-repair-") as tmp:
        pulled: dict[int, Path] = {}
        for promo in todo:
            model_version = promoted_version(promo)
            if model_version not in pulled:
                pulled[model_version] = materialize_model(
                    registry, model_name, model_version, Path(tmp) / str(model_version)
                )
            deploy_model(pulled[model_version], serving_uri, model_name, int(promo["seq"]), store=store)
    return int(todo[-1]["seq"])


# ----------------------------------------------------------------------------------- release-path check


def check_serving_reachable(serving_uri: str, model_name: str) -> ObjectStore:
    """Open the serving store and prove it answers (and, for a folder, can be written) before any record."""
    import os

    from modelopsx.storage.local import LocalStore

    try:
        store = open_serving_store(serving_uri)
        if isinstance(store, LocalStore):
            existing = store.root
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir() or not os.access(existing, os.W_OK):
                raise StorageError(f"serving folder {store.root} cannot be created or written")
        else:
            store.list(f"{model_name}/")
    except UserError as exc:
        raise ReleaseError(
            f"serving store {serving_uri!r} is not usable: {exc.message}",
            hint=exc.hint or "pass a reachable --serving-uri (a folder, s3://, gs:// or basin://)",
        ) from None
    except Exception as exc:  # a client library's own connection error: say what, keep the champion
        raise ReleaseError(
            f"serving store {serving_uri!r} is unreachable ({type(exc).__name__}: {exc})",
            hint="check the URL, the endpoint settings and the credentials",
        ) from None
    return store
