"""S3-compatible stores through boto3: generic S3 (MinIO, moto, AWS) and the base of the Basin store.

Path-style addressing, standard-mode retries, bounded timeouts, and flexible checksums only when an operation
requires them (Basin's adapter and older S3 servers reject aws-chunked trailers). Every put sends the BLAKE3
CID as user metadata `cid` and checks the digest the server reports (a CID ETag on Basin, the MD5 ETag of a
single-part S3 put); every full get verifies the bytes against the `cid` the server returns.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

from modelopsx.errors import IntegrityError, KeyExistsError, NotFoundError, ReadOnlyStoreError, StorageError
from modelopsx.settings import variable
from modelopsx.storage.base import Listing, ObjectInfo, ObjectStore, check_key
from modelopsx.storage.cid import cid_of_bytes, verify_cid
from modelopsx.storage.retry import (
    EndpointUnreachableError,
    RetryCounter,
    RetryPolicy,
    TransientStorageError,
    call_with_retry,
)

ACCESS_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken"}
TRANSIENT_CODES = {"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"}
_READ_POLICY = RetryPolicy(attempts=4, base_s=0.05, cap_s=1.0)
_HTTP: Any = None
_LIST_TIMEOUT: Any = None


def _http() -> Any:
    """One urllib3 pool for presigned listing requests (thread-safe)."""
    global _HTTP, _LIST_TIMEOUT
    if _HTTP is None:
        import urllib3

        _LIST_TIMEOUT = urllib3.Timeout(connect=5, read=60)
        _HTTP = urllib3.PoolManager(maxsize=32)
    return _HTTP


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def make_s3_client(
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str = "us-east-1",
    max_pool: int = 32,
    unsigned: bool = False,
) -> Any:
    """A boto3 S3 client, shared per settings: clients are thread-safe and take ~0.3 s to build."""
    ambient = tuple(os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"))
    cache_key = (endpoint, access_key, secret_key, region, max_pool, unsigned, ambient)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is None:
            client = _CLIENTS[cache_key] = _new_s3_client(
                endpoint, access_key, secret_key, region, max_pool, unsigned
            )
        return client


def _new_s3_client(
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str,
    max_pool: int,
    unsigned: bool,
) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=max_pool,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        signature_version=UNSIGNED if unsigned else "s3v4",  # v4 presigned URLs for the fast listing
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        config=config,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def looks_like_cid(value: str | None) -> bool:
    return bool(value) and value.startswith("bafk")  # type: ignore[union-attr]


class S3Store(ObjectStore):
    """A bucket (and optional key prefix) on an S3-compatible server."""

    scheme = "s3"
    immutable = False
    list_cap: int | None = None  # None: the server paginates

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        access_key: str | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint or client.meta.endpoint_url
        self.access_key = access_key
        self.url = f"{self.scheme}://{bucket}/{self.prefix}"
        self.retries = RetryCounter()  # retries done by botocore and by this store, for sync summaries

    # -- plumbing --------------------------------------------------------------------------------------
    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, op: str, key: str | None = None, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            response = getattr(self.client, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            self.retries.add(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            raise self._map_error(exc, op, key) from exc
        except Exception as exc:
            mapped = self._map_transport_error(exc, op, key)
            if mapped is None:
                raise
            raise mapped from exc
        self.retries.add(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response

    def credentials_hint(self) -> str:
        return "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or MODELOPSX_S3_ACCESS_KEY / _SECRET_KEY)"

    def read_only_hint(self) -> str:
        return "this endpoint accepts no writes; write to a writable endpoint or bucket"

    def missing_store_hint(self) -> str:
        return f"create the bucket first, or check the bucket name in {self.url}"

    def endpoint_hint(self) -> str:
        return "is the server running? the endpoint comes from MODELOPSX_S3_ENDPOINT or AWS_ENDPOINT_URL"

    def _map_error(self, exc: Any, op: str, key: str | None) -> StorageError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        what = f"{key!r} in {self.url}" if key else self.url
        if code in ACCESS_DENIED or status == 403:
            who = self.access_key or "(anonymous)"
            return StorageError(
                f"access denied by {self.endpoint} for access key {who} ({code or status})",
                hint=self.credentials_hint(),
            )
        if code == "NoSuchBucket":
            return NotFoundError(
                f"store {self.bucket!r} does not exist at {self.endpoint}", hint=self.missing_store_hint()
            )
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            if op in ("list_objects_v2", "head_bucket"):
                return NotFoundError(
                    f"store {self.bucket!r} does not exist at {self.endpoint}", hint=self.missing_store_hint()
                )
            return NotFoundError(f"no object {what}")
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "KeyExists", "KeyAlreadyExists") or (
            op == "put_object" and status in (409, 412)
        ):
            return KeyExistsError(
                f"key {what} already exists", hint="stored objects are immutable; write a new key"
            )
        if code in ("EntityTooLarge", "413") or status == 413:
            return StorageError(
                f"object {what} is too large for {self.endpoint} ({error.get('Message', code)})",
                hint="Basin stores objects up to 1 GiB; split the file into parts",
            )
        if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
            return IntegrityError(
                f"{self.endpoint} rejected {what}: content does not match its digest ({code})"
            )
        if code == "NotImplemented" or status == 501:
            return ReadOnlyStoreError(
                f"{self.endpoint} refused {op} on {what}: the store is read-only ({code})",
                hint=self.read_only_hint(),
            )
        if code == "InsufficientStorage" or status == 507:  # a full disk: retrying cannot help
            return StorageError(
                f"{self.endpoint} has no room for {what} ({code or status})",
                hint="free space on the store's disk (nothing was stored), then run the command again",
            )
        if code in TRANSIENT_CODES or status >= 500:
            return TransientStorageError(f"{op} {what} failed at {self.endpoint}: {code} (HTTP {status})")
        message = error.get("Message", "")
        return StorageError(f"{op} {what} failed at {self.endpoint}: {code} {message}".strip())

    def _map_transport_error(self, exc: Exception, op: str, key: str | None) -> StorageError | None:
        from botocore import exceptions as bx

        what = f"{key!r} in {self.url}" if key else self.url
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
            return EndpointUnreachableError(
                f"cannot reach the object store at {self.endpoint} ({op} {what})", hint=self.endpoint_hint()
            )
        if isinstance(exc, bx.NoCredentialsError):
            return StorageError(
                f"no credentials to sign requests to {self.endpoint}", hint=self.credentials_hint()
            )
        if isinstance(
            exc,
            bx.ConnectionError
            | bx.HTTPClientError
            | bx.IncompleteReadError
            | bx.ResponseStreamingError
            | ConnectionError
            | TimeoutError,
        ):
            return TransientStorageError(f"{op} {what} at {self.endpoint} failed in transit: {exc}")
        try:
            from urllib3.exceptions import HTTPError as Urllib3Error
        except ImportError:  # pragma: no cover - urllib3 ships with botocore
            return None
        if isinstance(exc, Urllib3Error):
            return TransientStorageError(f"{op} {what} at {self.endpoint} failed in transit: {exc}")
        return None

    # -- writes ----------------------------------------------------------------------------------------
    def _put(self, key: str, data: bytes, metadata: dict[str, str] | None, if_absent: bool) -> ObjectInfo:
        cid = cid_of_bytes(data)
        meta = {**(metadata or {}), "cid": cid}
        etag = self._fast_put(key, data, meta, if_absent)
        if etag is None:  # any trouble: the regular call, with its retries and typed errors
            extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
            response = self._call("put_object", key, Key=self._full(key), Body=data, Metadata=meta, **extra)
            etag = str(response.get("ETag", "")).strip('"')
        self._check_put_digest(key, data, cid, etag)
        return ObjectInfo(key=key, size=len(data), cid=cid, etag=etag, metadata=meta)

    def _fast_put(self, key: str, data: bytes, meta: dict[str, str], if_absent: bool) -> str | None:
        """One PutObject signed by botocore's own SigV4 signer and sent through a shared urllib3 pool.

        boto3's put_object spends most of its ~1 ms of CPU per call on request building, event hooks,
        user-agent strings and response parsing; with small files at real network latency that CPU, not
        the network, bounds a parallel sync. This path builds the signer once per store and costs about a
        third. Returns the ETag; raises the typed error of a final refusal (a conflict, access denied,
        read-only); returns None on anything else (5xx, a dropped connection, an unreadable answer) so that
        the caller repeats the request through boto3 for its retries and error mapping. A repeat of a put
        that did land is a conflict the callers already recognise by content (sync) or record id
        (registry).
        """
        signer = self._put_signer()
        if signer is None:
            return None
        from urllib.parse import quote

        from botocore.awsrequest import AWSRequest

        url = f"{self.endpoint.rstrip('/')}/{self.bucket}/{quote(self._full(key), safe='/~')}"
        headers = {f"x-amz-meta-{k}": v for k, v in meta.items()}
        if if_absent:
            headers["If-None-Match"] = "*"
        http = _http()
        try:
            request = AWSRequest(method="PUT", url=url, data=data, headers=headers)
            signer.add_auth(request)
            signed = dict(request.headers.items())
            response = http.request(
                "PUT", url, body=data, headers=signed, retries=False, timeout=_LIST_TIMEOUT
            )
        except Exception:
            return None
        if response.status == 200:
            return str(response.headers.get("ETag", "")).strip('"')
        refusal = self._final_refusal(response, key)
        if refusal is not None:
            raise refusal  # asking boto3 again would only repeat the request (and the server's work)
        return None

    def _final_refusal(self, response: Any, key: str) -> StorageError | None:
        """The typed error of an answer that a retry cannot change (a conflict, access denied, read-only),
        mapped exactly as boto3's ClientError would be; None for transient or unreadable answers."""
        import xml.etree.ElementTree as ET

        from botocore.exceptions import ClientError

        if response.status in (429, 500, 502, 503, 504):
            return None
        try:
            root = ET.fromstring(response.data)
        except ET.ParseError:
            return None
        code = root.findtext("Code") or root.findtext("{*}Code")
        if not code or code in TRANSIENT_CODES:
            return None
        message = root.findtext("Message") or root.findtext("{*}Message") or ""
        answer = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": response.status},
        }
        error = ClientError(answer, "PutObject")  # type: ignore[arg-type]
        return self._map_error(error, "put_object", key)

    def _put_signer(self) -> Any:
        """botocore's S3 SigV4 signer for this client's credentials, built once; None for anonymous or
        non-SigV4 clients (they use the regular call)."""
        signer = getattr(self, "_signer", False)
        if signer is not False:
            return signer
        signer = None
        try:
            from botocore.auth import S3SigV4Auth

            request_signer = self.client._request_signer
            credentials = request_signer._credentials
            if credentials is not None and request_signer.signature_version == "s3v4" and self.endpoint:
                signer = S3SigV4Auth(credentials, "s3", self.client.meta.region_name)
        except Exception:
            signer = None
        self._signer = signer
        return signer

    def _check_put_digest(self, key: str, data: bytes, cid: str, etag: str) -> None:
        """The server's digest of what it stored must match what was sent (transfer verification)."""
        if looks_like_cid(etag):
            ok = etag == cid
        elif len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
            ok = etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        else:  # multipart or encrypted ETag: fall back to the recorded metadata
            info = self.head(key)
            ok = info is not None and info.size == len(data) and info.cid in (None, cid)
        if not ok:
            raise IntegrityError(
                f"{self.endpoint} stored {key!r} with digest {etag}, which does not match "
                f"the {len(data)} bytes sent (cid {cid})"
            )

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._put(key, data, metadata, if_absent=self.immutable)

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self._put(key, data, metadata, if_absent=True)

    def delete(self, key: str) -> None:
        if self.head(key) is None:
            raise NotFoundError(f"no object {key!r} in {self.url}")
        self._call("delete_object", key, Key=self._full(key))

    # -- reads -----------------------------------------------------------------------------------------
    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        return call_with_retry(
            lambda: self._get_once(key, byte_range),
            _READ_POLICY,
            self.retries,
            retry_if=lambda exc: isinstance(exc, TransientStorageError),
        )

    def _get_once(self, key: str, byte_range: tuple[int, int] | None) -> bytes:
        extra: dict[str, Any] = {}
        if byte_range is not None:
            extra["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        response = self._call("get_object", key, Key=self._full(key), **extra)
        try:
            data: bytes = response["Body"].read()
        except Exception as exc:
            mapped = self._map_transport_error(exc, "get_object", key)
            if mapped is None:
                raise
            raise mapped from exc
        expected = response.get("ContentLength")
        if expected is not None and len(data) != int(expected):
            raise TransientStorageError(
                f"truncated body for {key!r} from {self.endpoint}: {len(data)} of {expected} bytes"
            )
        cid = response.get("Metadata", {}).get("cid")
        if byte_range is None and cid:
            verify_cid(data, cid)
        return data

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call("head_object", key, Key=self._full(key))
        except NotFoundError:
            return None
        etag = str(response.get("ETag", "")).strip('"')
        metadata = dict(response.get("Metadata", {}))
        cid = metadata.get("cid") or (etag if looks_like_cid(etag) else None)
        return ObjectInfo(
            key=key, size=int(response.get("ContentLength", 0)), cid=cid, etag=etag, metadata=metadata
        )

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        full_prefix = self.prefix + prefix
        kwargs: dict[str, Any] = {"Prefix": full_prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        for page in self._pages(kwargs):
            for item in page.get("Contents", []) or []:
                etag = str(item.get("ETag", "")).strip('"')
                objects.append(
                    ObjectInfo(
                        key=item["Key"][len(self.prefix) :],
                        size=int(item.get("Size", 0)),
                        cid=etag if looks_like_cid(etag) else None,
                        etag=etag,
                    )
                )
            prefixes.extend(p["Prefix"][len(self.prefix) :] for p in page.get("CommonPrefixes", []) or [])
        return Listing(objects=objects, prefixes=prefixes)

    def _pages(self, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._fast_list_page({**kwargs, **extra})
            if page is None:  # any trouble: the regular call, with its retries and typed errors
                page = self._call("list_objects_v2", None, **kwargs, **extra)
            yield page
            token = page.get("NextContinuationToken")
            if self.list_cap is not None or not page.get("IsTruncated") or not token:
                return

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        yield from sorted(self.list(prefix).objects, key=lambda info: info.key)

    def _fast_list_page(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """One ListObjectsV2 page through a presigned URL, parsed with ElementTree.

        botocore's response parser spends ~0.1 ms per listed key (0.15 s for 1,000, ten times the server's
        time), which dominates no-op syncs and sharded Basin listings. Returns None on any non-200 answer or
        unexpected body so that the caller repeats the request through boto3 for retries and error mapping.
        """
        import xml.etree.ElementTree as ET

        try:
            url = self.client.generate_presigned_url(
                "list_objects_v2", Params={"Bucket": self.bucket, **params}, ExpiresIn=300
            )
            response = _http().request("GET", url, retries=False, timeout=_LIST_TIMEOUT)
            if response.status != 200:
                return None
            root = ET.fromstring(response.data)
        except Exception:
            return None
        # boto3 asks for url-encoded keys (EncodingType=url) and decodes them after its own calls
        decode = unquote_plus if (root.findtext("{*}EncodingType") or "") == "url" else str
        contents = [
            {
                "Key": decode(c.findtext("{*}Key") or ""),
                "Size": int(c.findtext("{*}Size") or 0),
                "ETag": c.findtext("{*}ETag") or "",
            }
            for c in root.iterfind("{*}Contents")
        ]
        prefixes = [
            {"Prefix": decode(p.findtext("{*}Prefix") or "")} for p in root.iterfind("{*}CommonPrefixes")
        ]
        if any(not c["Key"] for c in contents):
            return None
        return {
            "Contents": contents,
            "CommonPrefixes": prefixes,
            "IsTruncated": (root.findtext("{*}IsTruncated") or "").lower() == "true",
            "NextContinuationToken": root.findtext("{*}NextContinuationToken"),
        }

    # -- stores ----------------------------------------------------------------------------------------
    def bucket_exists(self) -> bool:
        try:
            self._call("head_bucket")
        except NotFoundError:
            return False
        return True

    def create_bucket(self) -> None:
        try:
            self._call("create_bucket")
        except StorageError as exc:
            cause = exc.__cause__
            code = getattr(cause, "response", {}).get("Error", {}).get("Code", "")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def s3_from_env(bucket: str, prefix: str, env: Callable[[str], str | None] = variable) -> S3Store:
    """s3://bucket/prefix: endpoint from MODELOPSX_S3_ENDPOINT or AWS_ENDPOINT_URL(_S3), keys from the
    MODELOPSX_S3_* variables or boto3's usual chain (AWS_ACCESS_KEY_ID, profiles)."""
    endpoint = env("MODELOPSX_S3_ENDPOINT") or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL")
    access_key = env("MODELOPSX_S3_ACCESS_KEY") or None
    secret_key = env("MODELOPSX_S3_SECRET_KEY") or None
    region = env("MODELOPSX_S3_REGION") or env("AWS_DEFAULT_REGION") or env("AWS_REGION") or "us-east-1"
    client = make_s3_client(endpoint, access_key, secret_key, region)
    shown_key = access_key or env("AWS_ACCESS_KEY_ID")
    return S3Store(
        client, bucket, prefix, endpoint=endpoint or client.meta.endpoint_url, access_key=shown_key
    )
