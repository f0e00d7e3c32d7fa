"""The HTTP side of a Basin emulator request: the target, headers and body as sent, the response as written.

Request bodies are streamed (Content-Length, HTTP chunked, aws-chunked with signed chunks and trailers) to a
temp file with their checksums checked; every error answers as S3 XML, and the connection is kept usable (a
small unread body is drained) or closed when the end of the body cannot be known. The S3 operations built on
this live in `operations`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import shutil
import socket
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, unquote_to_bytes

import blake3

from modelopsx.basin import s3xml
from modelopsx.basin.faults import EmulatorStats
from modelopsx.basin.numbers import decimal_or_none
from modelopsx.basin.payload import Checksums, iter_aws_chunked, iter_exact, iter_http_chunked
from modelopsx.basin.s3xml import S3Error, parse_decimal
from modelopsx.basin.sigv4 import SigningContext
from modelopsx.basin.store_fs import FsStore
from modelopsx.storage.cid import cid_from_digest, is_cid

log = logging.getLogger(__name__)

# An unread body up to this size is drained to keep the connection alive; a bigger one closes it.
_DRAIN_LIMIT = 1 << 20
# A write that fails for want of space is the operator's to fix: answered 507, which clients do not retry.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


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


class Backend(Protocol):
    """What the request handlers use of the emulator that serves them."""

    store: FsStore
    stats: EmulatorStats
    max_object_size: int
    list_cap: int

    @property
    def endpoint(self) -> str: ...


class EmulatorServer(ThreadingHTTPServer):
    """An HTTP server that carries the emulator its request handlers answer for."""

    emulator: Backend


class HttpExchange(BaseHTTPRequestHandler):
    """Request parsing, body streaming and response writing for one S3 request at a time."""

    server: EmulatorServer
    # Set for each request by the dispatcher before any method below runs.
    request_id: str
    body_state: str  # unread | continued | consumed
    hdrs: dict[str, list[str]]
    raw_path: str
    raw_query: str
    query: dict[str, list[str]]
    signing: SigningContext | None
    truncate: bool
    response_started: bool

    def handle_expect_100(self) -> bool:
        # 100 Continue is sent only once the request passed every check, so a rejected upload is never sent.
        return True

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
                        if exc.errno not in DISK_FULL:
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
