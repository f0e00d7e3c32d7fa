"""gs://bucket/prefix through google-cloud-storage; STORAGE_EMULATOR_HOST selects a local emulator.

Put-if-absent is `if_generation_match=0`. gcp-storage-emulator ignores preconditions, so with the emulator a
HEAD before the write keeps the sequential semantics (the atomic guarantee needs real GCS).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any

from modelopsx.errors import IntegrityError, KeyExistsError, NotFoundError, StorageError
from modelopsx.storage.base import Listing, ObjectInfo, ObjectStore, check_key
from modelopsx.storage.cid import cid_of_bytes, verify_cid
from modelopsx.storage.retry import EndpointUnreachableError, TransientStorageError


def make_gcs_client() -> Any:
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "modelopsx-local")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client()


class GCSStore(ObjectStore):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"gs://{bucket}/{self.prefix}"
        self.endpoint = os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"
        self.emulated = bool(os.environ.get("STORAGE_EMULATOR_HOST"))

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _mapped(self, exc: Exception, op: str, key: str | None) -> Exception:
        from google.api_core import exceptions as gx

        what = f"{key!r} in {self.url}" if key else self.url
        if isinstance(exc, gx.PreconditionFailed):
            return KeyExistsError(
                f"key {what} already exists", hint="stored objects are immutable; write a new key"
            )
        if isinstance(exc, gx.NotFound):
            if key is None or "bucket" in str(exc).lower():
                return NotFoundError(
                    f"bucket {self.bucket_name!r} does not exist at {self.endpoint}",
                    hint="create it first or check the bucket name",
                )
            return NotFoundError(f"no object {what}")
        if isinstance(exc, gx.Forbidden | gx.Unauthorized):
            return StorageError(
                f"access denied by {self.endpoint} for {what}", hint="check GOOGLE_APPLICATION_CREDENTIALS"
            )
        if isinstance(exc, gx.ServerError | gx.TooManyRequests):
            return TransientStorageError(f"{op} {what} failed at {self.endpoint}: {exc}")
        if isinstance(exc, gx.GoogleAPICallError):
            return StorageError(f"{op} {what} failed at {self.endpoint}: {exc}")
        import requests

        if isinstance(exc, requests.ConnectionError):
            return EndpointUnreachableError(
                f"cannot reach {self.endpoint} ({op} {what})",
                hint="is the server running? check STORAGE_EMULATOR_HOST",
            )
        if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
            return TransientStorageError(f"{op} {what} at {self.endpoint} failed in transit: {exc}")
        return exc

    def _put(self, key: str, data: bytes, metadata: dict[str, str] | None, if_absent: bool) -> ObjectInfo:
        name = self._full(key)
        cid = cid_of_bytes(data)
        if if_absent and self.emulated and self.head(key) is not None:
            raise KeyExistsError(
                f"key {key!r} in {self.url} already exists",
                hint="stored objects are immutable; write a new key",
            )
        blob = self.bucket.blob(name)
        blob.metadata = {**(metadata or {}), "cid": cid}
        try:
            blob.upload_from_string(data, if_generation_match=0 if if_absent else None)
        except Exception as exc:
            raise self._mapped(exc, "upload", key) from exc
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        if blob.md5_hash and blob.md5_hash != md5:
            raise IntegrityError(
                f"{self.endpoint} stored {key!r} with md5 {blob.md5_hash}, "
                f"which does not match the {len(data)} bytes sent"
            )
        return ObjectInfo(
            key=key, size=len(data), cid=cid, etag=blob.etag, metadata=dict(blob.metadata or {})
        )

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._put(key, data, metadata, if_absent=False)

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._put(key, data, metadata, if_absent=True)

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        name = self._full(key)
        try:
            blob = self.bucket.get_blob(name)
            if blob is None:
                raise NotFoundError(f"no object {key!r} in {self.url}")
            if byte_range is not None:
                return bytes(blob.download_as_bytes(start=byte_range[0], end=byte_range[1]))
            data = bytes(blob.download_as_bytes(if_generation_match=blob.generation))
        except NotFoundError:
            raise
        except Exception as exc:
            raise self._mapped(exc, "download", key) from exc
        cid = (blob.metadata or {}).get("cid")
        if cid:
            verify_cid(data, cid)
        return data

    def head(self, key: str) -> ObjectInfo | None:
        try:
            blob = self.bucket.get_blob(self._full(key))
        except Exception as exc:
            raise self._mapped(exc, "head", key) from exc
        if blob is None:
            return None
        metadata = dict(blob.metadata or {})
        return ObjectInfo(
            key=key, size=int(blob.size or 0), cid=metadata.get("cid"), etag=blob.etag, metadata=metadata
        )

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        try:
            pages = self.client.list_blobs(self.bucket_name, prefix=self.prefix + prefix, delimiter=delimiter)
            objects = [
                ObjectInfo(
                    key=b.name[len(self.prefix) :],
                    size=int(b.size or 0),
                    cid=(b.metadata or {}).get("cid"),
                    etag=b.etag,
                )
                for b in pages
            ]
            prefixes = sorted(p[len(self.prefix) :] for p in pages.prefixes)
        except Exception as exc:
            raise self._mapped(exc, "list", None) from exc
        return Listing(objects=objects, prefixes=prefixes)

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from sorted(self.list(prefix).objects, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        try:
            self.bucket.blob(self._full(key)).delete()
        except Exception as exc:
            raise self._mapped(exc, "delete", key) from exc

    def bucket_exists(self) -> bool:
        try:
            return self.bucket.exists()
        except Exception as exc:
            raise self._mapped(exc, "head bucket", None) from exc

    def create_bucket(self) -> None:
        from google.api_core import exceptions as gx

        try:
            self.client.create_bucket(self.bucket_name)
        except gx.Conflict:
            pass
        except Exception as exc:
            raise self._mapped(exc, "create bucket", None) from exc
