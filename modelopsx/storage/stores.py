"""`open_store(url)` and `ensure_store(url)`: one entry point for every kind of object store.

- a local path or file:///abs/path -> LocalStore
- s3://bucket/prefix             -> S3Store (endpoint: MODELOPSX_S3_ENDPOINT or AWS_ENDPOINT_URL)
- gs://bucket/prefix             -> GCSStore (STORAGE_EMULATOR_HOST honoured)
- basin://<store>/<prefix>       -> BasinStore (endpoint and keys: MODELOPSX_BASIN_*; an empty store
                                    name, basin:///prefix, means MODELOPSX_BASIN_STORE)
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelopsx.errors import StorageError
from modelopsx.storage.base import ObjectStore

SCHEMES = ("file", "s3", "gs", "basin")


def _split(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, unquote(parts.path).strip("/")


def open_store(url: str | Path | ObjectStore) -> ObjectStore:
    if isinstance(url, ObjectStore):
        return url
    text = str(url)
    if "://" not in text:
        from modelopsx.storage.local import LocalStore

        return LocalStore(Path(text).expanduser())
    scheme, netloc, path = _split(text)
    if scheme == "file":
        from modelopsx.storage.local import LocalStore

        return LocalStore(Path("/" + path if not netloc else f"/{netloc}/{path}"))
    if scheme == "s3":
        from modelopsx.storage.s3 import s3_from_env

        _require_bucket(text, netloc)
        return s3_from_env(netloc, path)
    if scheme == "gs":
        from modelopsx.storage.gcs import GCSStore, make_gcs_client

        _require_bucket(text, netloc)
        return GCSStore(make_gcs_client(), netloc, path)
    if scheme == "basin":
        from modelopsx.storage.basin_store import BasinStore

        return BasinStore.from_settings(netloc or None, path)
    raise StorageError(
        f"unknown store URL {text!r}",
        hint="use a local path, file://, s3://bucket/prefix, gs://bucket/prefix or basin://store/prefix",
    )


def _require_bucket(url: str, bucket: str) -> None:
    if not bucket:
        raise StorageError(
            f"store URL {url!r} names no bucket", hint="write it as scheme://bucket/optional/prefix"
        )


def ensure_store(url: str | Path | ObjectStore) -> ObjectStore:
    """Open a store, creating its bucket / Basin store / folder if it does not exist yet."""
    store = open_store(url)
    from modelopsx.storage.gcs import GCSStore
    from modelopsx.storage.local import LocalStore
    from modelopsx.storage.s3 import S3Store

    if isinstance(store, LocalStore):
        store.root.mkdir(parents=True, exist_ok=True)
    elif isinstance(store, S3Store | GCSStore) and not store.bucket_exists():
        store.create_bucket()
    return store
