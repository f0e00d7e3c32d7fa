"""Initial weights from a file, a MODEL_DIR or a Basin key (ImageNet: when the backbone is built)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from modelopsx.errors import ModelError

log = logging.getLogger(__name__)

BASIN_SCHEME = "basin://"


def fetch_basin_weights(key_url: str, into: Path) -> Path:
    """Download basin://<store>/<key> to a local file (verified by the store client)."""
    from modelopsx.storage.stores import open_store

    rest = key_url[len(BASIN_SCHEME) :]
    store_name, _, key = rest.partition("/")
    if not store_name or not key:
        raise ModelError(
            f"weights {key_url!r} is not basin://<store>/<key>", hint="e.g. basin://my-store/w.weights.h5"
        )
    data = open_store(f"{BASIN_SCHEME}{store_name}").get(key)  # the client verifies the CID
    path = into / key.rpartition("/")[2]
    path.write_bytes(data)
    return path


def load_initial_weights(model: Any, backbone: Any, weights: str | None) -> bool:
    """Load a weights file into the detector or its backbone. Returns True when weights were loaded."""
    from modelopsx.model.detector import builtin_source

    if weights is None or weights == "" or builtin_source(weights) is not None:
        return False  # no file to load: built-in sources are loaded when the backbone is built
    if weights.startswith(BASIN_SCHEME):
        with tempfile.TemporaryDirectory() as tmp:
            return load_weights_file(model, backbone, fetch_basin_weights(weights, Path(tmp)), weights)
    return load_weights_file(model, backbone, Path(weights), weights)


def load_weights_file(model: Any, backbone: Any, path: Path, label: str) -> bool:
    import keras

    if path.is_dir():
        from modelopsx.model.layout import MODEL_KERAS

        path = path / MODEL_KERAS
    if not path.is_file():
        raise ModelError(
            f"weights {label!r}: file not found",
            hint="pass 'imagenet', a .weights.h5 / .keras file, a MODEL_DIR or basin://<store>/<key>",
        )
    errors: list[str] = []
    if path.name.endswith(".keras"):
        try:
            source = keras.models.load_model(path, compile=False)
            model.set_weights(source.get_weights())
            log.info("initialised the detector from %s", path)
            return True
        except Exception as exc:  # any mismatch or unreadable archive
            errors.append(_short(exc))
    else:
        for target, what in ((model, "detector"), (backbone, "backbone")):
            try:
                _strict_load(target, path)
                log.info("initialised the %s from %s", what, path)
                return True
            except Exception as exc:  # shape / layer-count mismatch or not an HDF5 file
                errors.append(f"{what}: {_short(exc)}")
    raise ModelError(
        f"weights {label!r} do not fit the {model.name} model ({'; '.join(errors)})",
        hint="use weights saved from the same --backbone/--alpha (backbone or whole detector), "
        "or --weights imagenet",
    )


def _strict_load(target: Any, path: Path) -> None:
    """load_weights, but a partial load (Keras warns and keeps fresh weights for what it skipped) fails."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target.load_weights(path)
    partial = [
        str(w.message)
        for w in caught
        if "skipping" in str(w.message).lower() or "freshly-initialized" in str(w.message)
    ]
    if partial:
        raise ValueError(f"only part of the file matches ({partial[0][:120]})")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
