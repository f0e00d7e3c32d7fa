"""A local Basin emulator: the S3 subset of Basin's `basin_s3` adapter, with Basin's semantics.

Path-style S3 over HTTP/1.1 (keep-alive) on a stdlib ThreadingHTTPServer. Semantics reproduced: buckets are
object stores named by t2 address or `0x<owner>.<alias>`; objects are immutable ("key exists" on re-put);
every object carries a BLAKE3 CID (returned as ETag and as `x-amz-meta-cid` on GET; HEAD has no user
metadata); listings take prefix and delimiter only, return at most `list_cap` entries, never paginate and come
in hash order; ranges; a size limit (413); deleting a missing key fails; read-only mode answers writes with
501 NotImplemented; SigV4 is checked when keys are set. Fault injection (500s, dropped connections,
truncated bodies, latency) serves reliability tests.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, unquote_to_bytes

import blake3

from modelopsx.basin import s3xml
from modelopsx.basin.faults import FAULT_KINDS, EmulatorStats, FaultInjector
from modelopsx.basin.numbers import decimal_or_none
from modelopsx.basin.payload import BLOCK, Checksums, iter_aws_chunked, iter_exact, iter_http_chunked
from modelopsx.basin.quarantine import Quarantine
from modelopsx.basin.s3xml import S3Error, parse_decimal
from modelopsx.basin.sigv4 import SigningContext, SigV4Verifier
from modelopsx.basin.store_fs import OWNER_ADDRESS, PLAIN_ALIAS, FsStore, ObjectMeta, key_exists
from modelopsx.storage.cid import cid_from_digest, is_cid

log = logging.getLogger(__name__)

REGION = "us-east-1"
# The owner of stores created by a plain alias; with the default alias this gives the default store.
DEFAULT_OWNER = "0x0000000000000000000000000000000000000001"
ABANDONED_UPLOAD_AGE = 24 * 3600.0  # seconds after which an unfinished multipart upload is removed at start
MAX_KEY_BYTES = 1024
# An unread body up to this size is drained to keep the connection alive; a bigger one closes it.
_DRAIN_LIMIT = 1 << 20
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")
_WRITE_METHODS = {"PUT", "POST", "DELETE"}
_STORED_HEADERS = ("content-type",)
# A write that fails for want of space is the operator's to fix: answered 507, which clients do not retry.
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def insufficient_storage(needed: int | None = None, free: int | None = None) -> S3Error:
    detail = f" ({_size_text(needed)} needed, {_size_text(free)} free)" if needed is not None and free else ""
    return S3Error(
        507,
        "InsufficientStorage",
        f"the disk that holds the Basin emulator's data is full{detail}; nothing was stored. Free space on "
        "it (or give the emulator a --root with room) and send the request again",
    )


def _write_all(fh: BinaryIO, block: bytes) -> None:
    """Write every byte: an unbuffered write may take only part of a block (a disk filling up)."""
    view = memoryview(block)
    while view:
        written = fh.write(view)
        if not written:  # a regular file that takes no byte has no room left
            raise OSError(errno.ENOSPC, "no space left on device")
        view = view[written:]


def _size_text(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


def decode_target(raw_path: str, raw_query: str) -> tuple[str, str, dict[str, list[str]]]:
    """(bucket, key, query) from the request target; 400 InvalidURI unless it is valid percent-encoded UTF-8.

    Decoding must be strict: with replacement characters, `bad%FFkey` and `bad%FEkey` would name one key.
    http.server decodes the request line as Latin-1, so encoding it back gives the bytes as sent."""
    try:
        path = unquote_to_bytes(raw_path.lstrip("/").encode("latin-1")).decode("utf-8")
        query = parse_qs(raw_query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeError:
        raise S3Error(
            400,
            "InvalidURI",
            "the request path or query is not valid percent-encoded UTF-8; "
            "encode keys as UTF-8 before percent-encoding them",
        ) from None
    bucket, _, key = path.partition("/")
    return bucket, key, query


def classify(method: str, bucket: str, key: str, query: dict[str, list[str]]) -> str:
    """The S3 operation a request names (used for routing, fault applicability and stats)."""
    # presigned-URL auth parameters and botocore's x-id marker do not name a subresource
    query = {k: v for k, v in query.items() if not k.lower().startswith("x-amz-") and k != "x-id"}
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if not key:
        if method == "PUT":
            return "CreateBucket" if not query else "Unsupported"
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            if "location" in query:
                return "GetBucketLocation"
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "uploads" in query:
                return "ListMultipartUploads"
            unsupported = set(query) - {
                "prefix",
                "delimiter",
                "encoding-type",
                "max-keys",
                "marker",
                "start-after",
                "continuation-token",
                "fetch-owner",
                "list-type",
            }
            return "Unsupported" if unsupported else "ListObjects"
        return "Unsupported"
    if method == "PUT":
        if "uploadId" in query and "partNumber" in query:
            return "UploadPart"
        return "PutObject" if not query else "Unsupported"
    if method == "GET":
        return "ListParts" if "uploadId" in query else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    return "Unsupported"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel sync workers connect in bursts; the default backlog of 5 drops SYNs

    def __init__(self, address: tuple[str, int], emulator: BasinEmulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small S3 responses must not wait for delayed ACKs
    timeout = 300  # seconds a socket may sit silent (idle keep-alive or stalled body) before it is closed
    server: _Server

    def version_string(self) -> str:
        return "BasinEmulator/0.1"

    # ---- plumbing --------------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def handle_expect_100(self) -> bool:
        # 100 Continue is sent only once the request passed every check, so a rejected upload is never sent.
        return True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ---- request lifecycle -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        emu = self.server.emulator
        self.request_id = secrets.token_hex(8).upper()
        self.body_state = "unread"  # unread | continued | consumed
        self.hdrs: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            self.hdrs.setdefault(name.lower(), []).append(value)
        raw_path, _, self.raw_query = self.path.partition("?")
        if raw_path.startswith(("http://", "https://")):  # absolute-form request target
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        self.raw_path = raw_path
        self.truncate = False
        self.response_started = False
        try:
            bucket, key, self.query = decode_target(raw_path, self.raw_query)
        except S3Error as err:
            emu.stats.count_request("Invalid")
            self._send_error(err)
            self._settle_body()
            return
        self.bucket, self.key = emu.resolve_store(bucket), key
        operation = classify(self.command, bucket, key, self.query)
        if operation == "UploadPart" and "x-amz-copy-source" in self.hdrs:
            operation = "UploadPartCopy"
        emu.stats.count_request(operation)
        if emu.latency_ms > 0:
            time.sleep(emu.latency_ms / 1000)
        fault = emu.faults.pick(truncatable=operation == "GetObject")
        if fault is not None:
            emu.stats.count_fault(fault)
        if fault == "drop":
            self._drop()
            return
        try:
            if fault == "500":
                raise S3Error(500, "InternalError", "injected fault: internal error, please retry")
            self.truncate = fault == "truncate"
            if len(key.encode("utf-8")) > MAX_KEY_BYTES:
                raise S3Error(400, "KeyTooLongError", f"object keys are limited to {MAX_KEY_BYTES} bytes")
            signing = (
                emu.verifier.verify(self.command, raw_path, self.raw_query, self.hdrs)
                if emu.verifier is not None
                else None
            )
            self.signing = signing
            if emu.read_only and self.command in _WRITE_METHODS:
                raise S3Error(
                    501,
                    "NotImplemented",
                    "this store is read-only (no private key configured); writes are not implemented",
                )
            getattr(self, "_op_" + operation)()
        except S3Error as err:
            self._send_error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                self._send_error(insufficient_storage())
            else:
                self._internal_error(exc)
        except Exception as exc:
            self._internal_error(exc)
        self._settle_body()

    def _internal_error(self, exc: Exception) -> None:
        """A bug must still answer in S3 form, or clients hang and retry blindly."""
        log.exception("unexpected error handling %s %s", self.command, self.path)
        self._send_error(S3Error(500, "InternalError", f"emulator error: {type(exc).__name__}"))

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _content_length(self) -> int | None:
        """The Content-Length as sent, or None when absent or not a plain decimal number."""
        return decimal_or_none(self._header("content-length"))

    def _header(self, name: str) -> str | None:
        """The first value of a header, None when it is absent."""
        values = self.hdrs.get(name)
        return values[0] if values else None

    def _has_body(self) -> bool:
        length = self._content_length()
        # an unparsable length is a body of unknown size: the connection cannot be reused after it
        return "transfer-encoding" in self.hdrs or length != 0 and "content-length" in self.hdrs

    def _settle_body(self) -> None:
        """Keep the connection usable: drain a small unread body, or close when we cannot know its end."""
        if self.body_state == "consumed" or not self._has_body():
            return
        if self.body_state == "continued":  # partly read: its end is unknown to us now
            self.close_connection = True
            return
        expects = "100-continue" in (self.hdrs.get("expect") or [""])[0].lower()
        length = self._content_length()
        if (
            (expects and self.body_state == "unread")
            or "transfer-encoding" in self.hdrs
            or length is None
            or length > _DRAIN_LIMIT
        ):
            self.close_connection = True
            return
        try:
            for _ in iter_exact(self.rfile, length):
                pass
        except (S3Error, OSError):
            self.close_connection = True

    def _continue(self) -> None:
        """Tell an `Expect: 100-continue` client to send its body now."""
        if self.body_state == "unread" and "100-continue" in (self.hdrs.get("expect") or [""])[0].lower():
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        self.body_state = "continued"

    def _body_blocks(self) -> tuple[Iterator[bytes], dict[str, str]]:
        """The decoded body (framing removed) and, filled as it is read, any aws-chunked trailers."""
        self._continue()
        trailers: dict[str, str] = {}
        if "chunked" in (self.hdrs.get("transfer-encoding") or [""])[0].lower():
            raw: Iterator[bytes] = iter_http_chunked(self.rfile)
        else:
            length = (self.hdrs.get("content-length") or ["0"])[0]
            raw = iter_exact(self.rfile, parse_decimal(length, "Content-Length", code="InvalidRequest"))
        payload_hash = (self.hdrs.get("x-amz-content-sha256") or [""])[0]
        encodings = (self.hdrs.get("content-encoding") or [""])[0].lower()
        if payload_hash.startswith("STREAMING-") or "aws-chunked" in encodings:
            signed = payload_hash.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
            return iter_aws_chunked(raw, trailers, self.signing, signed), trailers
        return raw, trailers

    def _read_small_body(self, limit: int = 8 << 20) -> bytes:
        blocks, _ = self._body_blocks()
        out = bytearray()
        for block in blocks:
            out += block
            if len(out) > limit:
                raise S3Error(400, "MaxMessageLengthExceeded", "request body too large for this operation")
        self.body_state = "consumed"
        return bytes(out)

    def _declared_size(self) -> int | None:
        """The object size the client announced (None when the body is HTTP-chunked without a hint)."""
        decoded = self._header("x-amz-decoded-content-length")
        if decoded is not None:
            return parse_decimal(decoded, "x-amz-decoded-content-length")
        payload_hash = (self.hdrs.get("x-amz-content-sha256") or [""])[0]
        encodings = (self.hdrs.get("content-encoding") or [""])[0].lower()
        if payload_hash.startswith("STREAMING-") or "aws-chunked" in encodings:
            raise S3Error(
                411, "MissingContentLength", "aws-chunked upload without x-amz-decoded-content-length"
            )
        if "transfer-encoding" in self.hdrs:
            return None
        length = self._header("content-length")
        if length is not None:
            return parse_decimal(length, "Content-Length", code="InvalidRequest")
        raise S3Error(411, "MissingContentLength", "a Content-Length header is required")

    def _check_size(self, size: int | None) -> None:
        limit = self.server.emulator.max_object_size
        if size is not None and size > limit:
            raise S3Error(
                413,
                "EntityTooLarge",
                f"object of {_size_text(size)} ({size} bytes) exceeds Basin's object size limit of "
                f"{_size_text(limit)}; split it into smaller objects",
                self.raw_path,
            )

    def _receive_body(self, max_size: int, part: bool = False) -> tuple[Path, int, str]:
        """Stream the body to a temp file -> (path, size, digest); checksums verified, no debris left.
        The digest is the CID, or for a multipart part the MD5 hex that S3 clients expect as its ETag."""
        emu = self.server.emulator
        declared_size = self._declared_size()
        if declared_size is not None:  # refused before the client sends a byte (Expect: 100-continue)
            free = shutil.disk_usage(emu.store.tmp).free
            if declared_size > free:
                raise insufficient_storage(declared_size, free)
        tmp = emu.store.new_temp()
        payload_hash = (self.hdrs.get("x-amz-content-sha256") or [""])[0]
        checks = Checksums(self.hdrs, payload_hash)
        digest: Any = hashlib.md5(usedforsecurity=False) if part else blake3.blake3()
        size = 0
        disk_full = False
        try:
            blocks, trailers = self._body_blocks()
            with tmp.open("wb", buffering=0) as fh:  # unbuffered: a full disk shows at the write that hit it
                for block in blocks:
                    size += len(block)
                    if size > max_size:
                        self.close_connection = True
                        self._check_size(size)
                    if disk_full:  # read the rest so the client gets the answer, not a reset connection
                        continue
                    try:
                        _write_all(fh, block)
                    except OSError as exc:
                        if exc.errno not in _DISK_FULL:
                            raise
                        disk_full = True
                        fh.truncate(0)  # give the space back to the other writers at once
                        continue
                    digest.update(block)
                    checks.update(block)
            self.body_state = "consumed"
            if disk_full:
                raise insufficient_storage()
            emu.stats.add_bytes(received=size)
            declared = self._declared_size()
            if declared is not None and declared != size:
                raise S3Error(
                    400, "IncompleteBody", f"received {size} bytes but the client announced {declared}"
                )
            checks.verify(trailers)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, size, digest.hexdigest() if part else cid_from_digest(digest.digest())

    def _user_metadata(self) -> dict[str, str]:
        return {
            name[len("x-amz-meta-") :]: values[0]
            for name, values in self.hdrs.items()
            if name.startswith("x-amz-meta-")
        }

    def _declared_cid(self) -> str | None:
        values = self.hdrs.get("x-amz-meta-cid")
        declared = values[0] if values else None
        if declared is not None and not is_cid(declared):
            raise S3Error(
                400,
                "InvalidArgument",
                f"x-amz-meta-cid {declared!r} is not a CIDv1 raw BLAKE3-256 CID (bafkr4i...)",
            )
        return declared

    # ---- responses -------------------------------------------------------------------------------------
    def _start(self, status: int, headers: Iterable[tuple[str, str]], length: int) -> None:
        self.response_started = True
        self.send_response(status)
        self.send_header("x-amz-request-id", self.request_id)
        self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.server.emulator.stats.count_status(status)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = "application/xml",
    ) -> None:
        hdrs = list(headers)
        if body and content_type:
            hdrs.append(("Content-Type", content_type))
        self._start(status, hdrs, len(body))
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self.server.emulator.stats.add_bytes(sent=len(body))

    def _send_error(self, err: S3Error) -> None:
        if self.response_started:  # mid-body: a second status line would corrupt the stream; cut it instead
            self._drop()
            return
        if self.body_state == "unread" and self._has_body():
            # the body was not read; decide now whether the connection survives (drain) or must close
            self._settle_body()
            self.body_state = "consumed"
        resource = err.resource or self.raw_path
        body = s3xml.error_xml(S3Error(err.status, err.code, err.message, resource), self.request_id)
        try:
            self._send(err.status, body if self.command != "HEAD" else b"")
        except OSError:
            self.close_connection = True

    @staticmethod
    def _etag(cid: str) -> str:
        return f'"{cid}"'

    def _object_headers(self, meta: ObjectMeta, with_metadata: bool) -> list[tuple[str, str]]:
        headers = [
            ("ETag", self._etag(meta.cid)),
            ("Last-Modified", s3xml.http_date(meta.last_modified)),
            ("Accept-Ranges", "bytes"),
            ("Content-Type", meta.content_type),
        ]
        if with_metadata:
            for name, value in meta.metadata.items():
                if name != "cid":
                    headers.append((f"x-amz-meta-{name}", value))
            headers.append(("x-amz-meta-cid", meta.cid))
        return headers

    # ---- operations: service and buckets ---------------------------------------------------------------
    def _op_Unsupported(self) -> None:
        raise S3Error(
            501,
            "NotImplemented",
            f"{self.command} {self.raw_path}?{self.raw_query} is not part of the Basin S3 subset",
        )

    def _op_ListBuckets(self) -> None:
        self._send(200, s3xml.list_buckets_xml(self.server.emulator.store.list_buckets()))

    def _op_CreateBucket(self) -> None:
        self._read_small_body()  # optional CreateBucketConfiguration; Basin has a single region
        self.server.emulator.store.create_bucket(self.bucket)
        self._send(200, headers=[("Location", f"/{self.bucket}")])

    def _op_ListMultipartUploads(self) -> None:
        prefix = (self.query.get("prefix") or [""])[0]
        uploads = self.server.emulator.store.list_uploads(self.bucket, prefix)
        self._send(200, s3xml.list_multipart_uploads_xml(self.bucket, prefix, uploads))

    def _op_HeadBucket(self) -> None:
        self.server.emulator.store.require_bucket(self.bucket)
        self._send(200, headers=[("x-amz-bucket-region", REGION)])

    def _op_GetBucketLocation(self) -> None:
        self.server.emulator.store.require_bucket(self.bucket)
        self._send(200, s3xml.location_xml(REGION))

    def _list(self, v2: bool) -> None:
        emu = self.server.emulator
        prefix = (self.query.get("prefix") or [""])[0]
        delimiter = (self.query.get("delimiter") or [""])[0]
        url_encode = (self.query.get("encoding-type") or [""])[0] == "url"
        objects, prefixes = emu.store.list(self.bucket, prefix, delimiter, emu.list_cap)
        body = s3xml.list_objects_xml(
            self.bucket,
            prefix,
            delimiter,
            objects,
            prefixes,
            v2,
            url_encode,
            start_after=(self.query.get("start-after") or [""])[0],
        )
        self._send(200, body)

    def _op_ListObjects(self) -> None:
        self._list(v2=False)

    def _op_ListObjectsV2(self) -> None:
        self._list(v2=True)

    # ---- operations: objects ---------------------------------------------------------------------------
    def _op_PutObject(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        if "x-amz-copy-source" in self.hdrs:
            raise S3Error(501, "NotImplemented", "CopyObject is not part of the Basin S3 subset")
        self._check_size(self._declared_size())
        if_none_match = (self.hdrs.get("if-none-match") or [""])[0].strip()
        if if_none_match not in ("", "*"):
            raise S3Error(501, "NotImplemented", "If-None-Match on PUT supports only '*'")
        if emu.store.exists(self.bucket, self.key):  # early answer; the commit below is the real guard
            raise self._taken()
        declared_cid = self._declared_cid()
        tmp, size, cid = self._receive_body(emu.max_object_size)
        try:
            if declared_cid is not None and declared_cid != cid:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"declared x-amz-meta-cid {declared_cid} does not match the content's CID {cid}",
                )
            content_type = (self.hdrs.get("content-type") or ["binary/octet-stream"])[0]
            self._commit(tmp, size, cid, content_type, self._user_metadata())
        finally:
            tmp.unlink(missing_ok=True)
        self._send(200, headers=[("ETag", self._etag(cid)), ("x-amz-meta-cid", cid)])

    def _op_HeadObject(self) -> None:
        meta = self.server.emulator.store.head(self.bucket, self.key)
        if self._not_modified(meta):
            self._start(304, [("ETag", self._etag(meta.cid))], 0)
            return
        self._start(200, self._object_headers(meta, with_metadata=False), meta.size)

    def _not_modified(self, meta: ObjectMeta) -> bool:
        """Conditional read headers, as S3 applies them: If-Match failing is 412; If-None-Match
        matching (the ETag, or * for any object) means the client's copy is current: 304."""
        if_match = (self.hdrs.get("if-match") or [""])[0]
        if if_match and if_match.strip() not in ("*", self._etag(meta.cid), meta.cid):
            raise S3Error(412, "PreconditionFailed", "If-Match does not match the object's ETag")
        if_none_match = (self.hdrs.get("if-none-match") or [""])[0].strip()
        return bool(if_none_match) and if_none_match in ("*", self._etag(meta.cid), meta.cid)

    def _parse_range(self, size: int) -> tuple[int, int] | None:
        header = (self.hdrs.get("range") or [""])[0].strip()
        if not header:
            return None
        m = _RANGE.fullmatch(header)
        if m is None or (not m.group(1) and not m.group(2)):
            return None  # S3 ignores a range it cannot parse (including multi-range) and sends everything
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if last and int(last) < start:
                return None
        else:
            start, end = max(size - int(last), 0), size - 1
            if int(last) == 0:
                start = size
        if start >= size or size == 0:
            raise S3Error(416, "InvalidRange", f"range {header!r} is not satisfiable for {size} bytes")
        return start, end

    def _op_GetObject(self) -> None:
        emu = self.server.emulator
        meta = emu.store.head(self.bucket, self.key)
        if self._not_modified(meta):
            self._start(304, [("ETag", self._etag(meta.cid))], 0)
            return
        try:
            byte_range = self._parse_range(meta.size)
        except S3Error as err:
            body = s3xml.error_xml(err, self.request_id)
            self._send(416, body, [("Content-Range", f"bytes */{meta.size}")])
            return
        try:
            fh = emu.store.data_path(self.bucket, meta).open("rb")
        except FileNotFoundError:  # deleted between reading the sidecar and opening the data
            raise S3Error(404, "NoSuchKey", f"no object with key {self.key!r}") from None
        with fh:
            headers = self._object_headers(meta, with_metadata=True)
            if byte_range is None:
                start, length, status = 0, meta.size, 200
            else:
                start, end = byte_range
                length, status = end - start + 1, 206
                headers.append(("Content-Range", f"bytes {start}-{end}/{meta.size}"))
            if self.truncate and length == 0:  # nothing to cut short: fail the way a dropped connection does
                self._drop()
                return
            send_limit = length // 2 if self.truncate else length
            if self.truncate:
                self.close_connection = True
            self._start(status, headers, length)
            fh.seek(start)
            remaining = send_limit
            while remaining > 0:
                block = fh.read(min(BLOCK, remaining))
                if not block:
                    break
                self.wfile.write(block)
                remaining -= len(block)
            emu.stats.add_bytes(sent=send_limit - remaining)
            if self.truncate:
                self.wfile.flush()
                self._drop()

    def _taken(self) -> S3Error:
        """The answer to a write on a stored key: 412 when the client made it conditional on absence
        (`If-None-Match: *`, as S3 answers), else Basin's 409 KeyExists."""
        if (self.hdrs.get("if-none-match") or [""])[0].strip() == "*":
            return S3Error(
                412,
                "PreconditionFailed",
                f"If-None-Match: * failed: {self.key!r} is already stored",
                f"/{self.bucket}/{self.key}",
            )
        return key_exists(self.bucket, self.key)

    def _commit(self, tmp: Path, size: int, cid: str, content_type: str, metadata: dict[str, str]) -> None:
        try:
            self.server.emulator.store.commit(self.bucket, self.key, tmp, size, cid, content_type, metadata)
        except S3Error as err:
            if err.code == "KeyExists":  # another writer committed the key first
                raise self._taken() from None
            raise

    def _op_DeleteObject(self) -> None:
        self.server.emulator.store.delete(self.bucket, self.key)
        self._send(204)

    # ---- operations: multipart upload (large files from boto3 upload_file / s3fs) -----------------------
    def _op_CreateMultipartUpload(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        self._read_small_body()
        if emu.store.exists(self.bucket, self.key):
            raise key_exists(self.bucket, self.key)
        metadata = self._user_metadata()
        self._declared_cid()
        content_type = (self.hdrs.get("content-type") or ["binary/octet-stream"])[0]
        upload_id = emu.store.create_upload(self.bucket, self.key, content_type, metadata)
        self._send(200, s3xml.initiate_multipart_xml(self.bucket, self.key, upload_id))

    def _op_UploadPart(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        number = decimal_or_none(self.query["partNumber"][0])
        if number is None or not 1 <= number <= 10_000:
            raise S3Error(400, "InvalidArgument", "partNumber must be an integer between 1 and 10000")
        emu.store.upload_info(self.bucket, self.key, upload_id)  # early answer, before the body is read
        self._check_size(self._declared_size())
        tmp, _, md5_hex = self._receive_body(emu.max_object_size, part=True)
        try:
            with emu.store.upload_lock(upload_id):  # the upload may have been completed or aborted meanwhile
                emu.store.upload_info(self.bucket, self.key, upload_id)
                emu.store.save_part(upload_id, number, tmp, md5_hex)
        finally:
            tmp.unlink(missing_ok=True)
        self._send(200, headers=[("ETag", f'"{md5_hex}"')])

    def _op_UploadPartCopy(self) -> None:
        raise S3Error(
            501,
            "NotImplemented",
            "UploadPartCopy is not part of the Basin S3 subset (nor is CopyObject): download the source and "
            "upload its bytes",
        )

    def _op_ListParts(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        upload_id = self.query["uploadId"][0]
        max_parts = parse_decimal((self.query.get("max-parts") or ["1000"])[0], "max-parts")
        marker = parse_decimal((self.query.get("part-number-marker") or ["0"])[0], "part-number-marker")
        parts = emu.store.list_parts(self.bucket, self.key, upload_id)
        body = s3xml.list_parts_xml(self.bucket, self.key, upload_id, parts, marker, min(max_parts, 1000))
        self._send(200, body)

    def _op_AbortMultipartUpload(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        with emu.store.upload_lock(upload_id):  # after a Complete that holds it, the upload is gone: 404
            emu.store.upload_info(self.bucket, self.key, upload_id)
            emu.store.remove_upload(upload_id)
        self._send(204)

    def _op_CompleteMultipartUpload(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        emu.store.upload_info(self.bucket, self.key, upload_id)  # early answer, before the body is read
        parts = s3xml.parse_complete_multipart(self._read_small_body())
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise S3Error(400, "InvalidPartOrder", "parts must be listed once each, in ascending order")
        # Held from the checks to the removal: a racing Complete, Abort or part sees the upload whole or gone.
        with emu.store.upload_lock(upload_id):
            info = emu.store.upload_info(self.bucket, self.key, upload_id)
            cid = self._assemble(upload_id, info, parts)
            emu.store.remove_upload(upload_id)
        location = f"{emu.endpoint}/{self.bucket}/{quote(self.key)}"
        self._send(
            200,
            s3xml.complete_multipart_xml(location, self.bucket, self.key, cid),
            headers=[("x-amz-meta-cid", cid)],
        )

    def _assemble(self, upload_id: str, info: dict, parts: list[tuple[int, str]]) -> str:
        """Concatenate the listed parts into the object and commit it; its CID."""
        store = self.server.emulator.store
        total = 0
        for number, etag in parts:
            if store.part_etag(upload_id, number) != etag:
                raise S3Error(400, "InvalidPart", f"part {number} was not uploaded or its ETag differs")
            total += store.part_path(upload_id, number).stat().st_size
        self._check_size(total)
        if store.exists(self.bucket, self.key):
            raise self._taken()
        free = shutil.disk_usage(store.tmp).free
        if total > free:
            raise insufficient_storage(total, free)
        tmp = store.new_temp()
        hasher = blake3.blake3()
        try:
            with tmp.open("wb") as out:
                for number, _ in parts:
                    with store.part_path(upload_id, number).open("rb") as part:
                        while block := part.read(BLOCK):
                            out.write(block)
                            hasher.update(block)
            cid = cid_from_digest(hasher.digest())
            declared = info["metadata"].get("cid")
            if declared is not None and declared != cid:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"declared x-amz-meta-cid {declared} does not match the content's CID {cid}",
                )
            self._commit(tmp, total, cid, info["content_type"], info["metadata"])
        finally:
            tmp.unlink(missing_ok=True)
        return cid


class BasinEmulator:
    """A Basin S3 endpoint on loopback, persisted under `root`. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str | None = None,
        secret_key: str | None = None,
        read_only: bool = False,
        fail_rate: float = 0.0,
        fail_seed: int = 0,
        latency_ms: int = 0,
        max_object_size: int = 1 << 30,
        list_cap: int = 10_000,
        fault_kinds: Iterable[str] | str = FAULT_KINDS,
        owner: str = DEFAULT_OWNER,
        abandoned_upload_age: float | None = ABANDONED_UPLOAD_AGE,
    ) -> None:
        # Auth is all or nothing: both keys (checked on every request) or neither (no auth at all).
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        if access_key == "" or secret_key == "":
            raise ValueError(
                "an empty access or secret key would turn authentication off; give both keys "
                "non-empty, or neither to run without auth"
            )
        if max_object_size < 1:
            raise ValueError(f"max_object_size must be at least 1 byte, got {max_object_size}")
        if list_cap < 1:
            raise ValueError(f"list_cap must be at least 1, got {list_cap}")
        if not OWNER_ADDRESS.fullmatch(owner):
            raise ValueError(f"owner {owner!r} is not an address of the form 0x<40 hex digits>")
        if abandoned_upload_age is not None and abandoned_upload_age < 0:
            raise ValueError(f"abandoned_upload_age must be >= 0 seconds, got {abandoned_upload_age}")
        self.root = Path(root)
        self.host = host
        self.port = port
        self.read_only = read_only
        self.latency_ms = latency_ms
        self.max_object_size = max_object_size
        self.list_cap = list_cap
        self.access_key = access_key
        self.owner = owner
        self.verifier = SigV4Verifier(access_key, secret_key) if access_key and secret_key else None
        self.faults = FaultInjector(fail_rate, fail_seed, fault_kinds)
        self.stats = EmulatorStats()
        self.store = FsStore(self.root)  # RootInUseError while another process serves this root
        self.abandoned_uploads_removed = (0, 0)  # (uploads, bytes) cleaned when the store opened
        if abandoned_upload_age is not None:
            try:
                self.abandoned_uploads_removed = self.store.remove_abandoned_uploads(abandoned_upload_age)
            except BaseException:
                self.store.close()
                raise
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def auth(self) -> str:
        """ "sigv4" when every request must be signed with the keys, "none" when anyone may read and write."""
        return "sigv4" if self.verifier is not None else "none"

    def resolve_store(self, name: str) -> str:
        """A plain alias (as Basin's adapter accepts) names the owner's store `0x<owner>.<alias>`."""
        return f"{self.owner}.{name}" if PLAIN_ALIAS.fullmatch(name) else name

    # Faults are settable at runtime: `emulator.fail_rate = 0.2`.
    @property
    def fail_rate(self) -> float:
        return self.faults.rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        self.faults.rate = value

    @property
    def fault_kinds(self) -> frozenset[str]:
        return self.faults.kinds

    @fault_kinds.setter
    def fault_kinds(self, kinds: Iterable[str] | str) -> None:
        from modelopsx.basin.faults import parse_fault_kinds

        self.faults.kinds = parse_fault_kinds(kinds)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def create_store(self, name: str) -> bool:
        """Create a store (bucket) directly; False if it already exists."""
        try:
            self.store.create_bucket(self.resolve_store(name))
        except S3Error as err:
            if err.code == "BucketAlreadyExists":
                return False
            raise
        return True

    @property
    def quarantine(self) -> Quarantine:
        """What the store moved aside because it could not account for it (reported at start)."""
        return self.store.quarantine

    def start(self) -> BasinEmulator:
        if self._server is not None:
            return self
        if not self.store.root_lock.held:
            raise RuntimeError("this emulator was stopped and its root released; create a new one")
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.store.root_lock.record(
            endpoint=f"http://{self.host}:{self.port}", auth=self.auth, access_key=self.access_key
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"basin-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the root (also for an emulator that was never started)."""
        server, self._server = self._server, None
        if server is None:
            self.store.close()
            return
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # idle keep-alive connections would otherwise outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> BasinEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"endpoint={self.endpoint}" if self._server else "stopped"
        return f"BasinEmulator(root={str(self.root)!r}, {state})"


__all__ = ["REGION", "BasinEmulator", "SigningContext", "classify"]
