"""Request bodies as S3 clients send them: plain, HTTP chunked, and aws-chunked (signed or unsigned, with
checksum trailers), decoded to the object's bytes while the checksums the client declared are verified.

Recent botocore/aiobotocore may send `content-encoding: aws-chunked` with `x-amz-content-sha256` set to
STREAMING-UNSIGNED-PAYLOAD-TRAILER (or the signed STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) and put the
CRC32 in a trailer after the last chunk; all of that must be stripped before the bytes are stored.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator, Mapping
from typing import Protocol

from modelopsx.basin.numbers import hex_or_none
from modelopsx.basin.s3xml import S3Error
from modelopsx.basin.sigv4 import SigningContext, chunk_signature, trailer_signature

BLOCK = 1 << 20
_MAX_LINE = 4096


class Reader(Protocol):
    """The part of a socket file the decoders use."""

    def read(self, n: int, /) -> bytes: ...
    def readline(self, limit: int, /) -> bytes: ...


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...
    def digest(self) -> bytes: ...


def _incomplete() -> S3Error:
    return S3Error(400, "IncompleteBody", "the request body ended before the length the client announced")


def iter_exact(rfile: Reader, length: int) -> Iterator[bytes]:
    """Exactly `length` bytes from the socket, in blocks; a short body is an IncompleteBody error."""
    remaining = length
    while remaining > 0:
        block = rfile.read(min(BLOCK, remaining))
        if not block:
            raise _incomplete()
        remaining -= len(block)
        yield block


class _Source:
    """read/readline over an iterator of byte blocks (the framing parsers need both)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            self._buf += next(self._blocks)
        except StopIteration:
            self._eof = True
            return False
        return True

    def readline(self) -> bytes:
        while True:
            idx = self._buf.find(b"\n")
            if idx >= 0:
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                return line
            if len(self._buf) > _MAX_LINE:
                raise S3Error(400, "IncompleteBody", "chunk header line too long")
            if not self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise _incomplete()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def at_eof(self) -> bool:
        return not self._buf and not self._fill()


def iter_http_chunked(rfile: Reader) -> Iterator[bytes]:
    """Transfer-Encoding: chunked (RFC 9112) from the socket."""
    while True:
        line = rfile.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise _incomplete()
        size = hex_or_none(line.split(b";", 1)[0].strip())
        if size is None:
            raise S3Error(400, "IncompleteBody", "malformed chunk size line")
        if size == 0:
            while True:  # trailer section ends with an empty line
                t = rfile.readline(_MAX_LINE)
                if t in (b"\r\n", b"\n", b""):
                    return
        yield from iter_exact(rfile, size)
        if rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n"):
            raise S3Error(400, "IncompleteBody", "chunk not followed by CRLF")


def iter_aws_chunked(
    blocks: Iterator[bytes], trailers: dict[str, str], signing: SigningContext | None, signed: bool
) -> Iterator[bytes]:
    """Decode aws-chunked framing; trailing headers land in `trailers`. Chunk signatures are verified when
    the request used a signed streaming payload and the server checks signatures."""
    src = _Source(blocks)
    previous = signing.seed_signature if signing else ""
    while True:
        line = src.readline()
        if not line.endswith(b"\n"):
            raise _incomplete()
        head, _, ext = line.strip().partition(b";")
        size = hex_or_none(head)
        if size is None:
            raise S3Error(400, "IncompleteBody", "malformed aws-chunked size line")
        data = src.read_exact(size) if size else b""
        if signed and signing is not None:
            claimed = ext.partition(b"=")[2].decode("ascii", "replace")
            expected = chunk_signature(signing, previous, hashlib.sha256(data).hexdigest())
            if claimed != expected:
                raise S3Error(403, "SignatureDoesNotMatch", "aws-chunked chunk signature does not match")
            previous = expected
        if size == 0:
            break
        yield data
        if src.readline() not in (b"\r\n", b"\n"):
            raise S3Error(400, "IncompleteBody", "aws-chunked chunk not followed by CRLF")
    raw_trailers = b""
    while not src.at_eof():
        t = src.readline()
        if t.strip() == b"":
            continue
        name, _, value = t.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            if signed and signing is not None:
                expected = trailer_signature(signing, previous, raw_trailers)
                if value.strip() != expected:
                    raise S3Error(
                        403, "SignatureDoesNotMatch", "aws-chunked trailer signature does not match"
                    )
            continue
        raw_trailers += f"{name}:{value.strip()}\n".encode("latin-1")
        trailers[name] = value.strip()


class Checksums:
    """The integrity checks a client may declare: x-amz-content-sha256 (hex), Content-MD5 and the
    x-amz-checksum-* family (as a header or, with aws-chunked, as a trailer)."""

    _ALGOS = {"crc32", "sha1", "sha256"}  # crc32c / crc64nvme need native code we do not ship; not checked

    def __init__(self, headers: Mapping[str, list[str]], payload_hash: str) -> None:
        self._hashers: dict[str, _Hasher] = {}
        self._expected: dict[str, str] = {}
        self._crc = 0
        self._want_crc = False
        if len(payload_hash) == 64 and all(c in "0123456789abcdef" for c in payload_hash.lower()):
            self._hashers["payload-sha256"] = hashlib.sha256()
            self._expected["payload-sha256"] = payload_hash.lower()
        md5 = (headers.get("content-md5") or [""])[0]
        if md5:
            self._hashers["content-md5"] = hashlib.md5(usedforsecurity=False)
            self._expected["content-md5"] = md5
        trailer_names = {
            n.strip().lower() for v in headers.get("x-amz-trailer", []) for n in v.split(",") if n.strip()
        }
        for algo in self._ALGOS:
            name = f"x-amz-checksum-{algo}"
            if name in headers:
                self._expected[name] = headers[name][0]
            if name in headers or name in trailer_names:
                if algo == "crc32":
                    self._want_crc = True
                else:
                    self._hashers[name] = hashlib.new(algo)

    def update(self, data: bytes) -> None:
        for h in self._hashers.values():
            h.update(data)
        if self._want_crc:
            self._crc = zlib.crc32(data, self._crc)

    def verify(self, trailers: Mapping[str, str]) -> None:
        expected = dict(self._expected)
        expected.update({k: v for k, v in trailers.items() if k.startswith("x-amz-checksum-")})
        for name, want in expected.items():
            if name == "payload-sha256":
                got = self._hashers[name].digest().hex()
                if got != want:
                    raise S3Error(
                        400,
                        "XAmzContentSHA256Mismatch",
                        "the body does not match the x-amz-content-sha256 the client computed",
                    )
                continue
            if name == "x-amz-checksum-crc32" and self._want_crc:
                got = base64.b64encode(self._crc.to_bytes(4, "big")).decode()
            elif name in self._hashers:
                got = base64.b64encode(self._hashers[name].digest()).decode()
            else:
                continue
            if got != want:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"the body does not match its {name} ({want}); it was corrupted in transit",
                )
