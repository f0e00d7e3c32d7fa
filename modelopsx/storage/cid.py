"""Content identifiers as Basin computes them: CIDv1, raw codec, BLAKE3-256 multihash, base32 ("bafkr4i...").

Layout of the binary CID: varint(1) version, varint(0x55) raw codec, varint(0x1e) blake3 multihash code,
varint(32) digest length, then the 32-byte digest. The text form is multibase base32 (RFC 4648 alphabet,
lower case, no padding) with the multibase prefix "b".
"""

from __future__ import annotations

import base64
from pathlib import Path

import blake3

from modelopsx.errors import IntegrityError

CID_VERSION = 0x01
RAW_CODEC = 0x55
BLAKE3_MULTIHASH = 0x1E
DIGEST_SIZE = 32
CID_PREFIX = "bafkr4i"  # every raw BLAKE3-256 CIDv1 starts with this text
_HEADER = bytes([CID_VERSION, RAW_CODEC, BLAKE3_MULTIHASH, DIGEST_SIZE])  # each value fits one varint byte
_CHUNK = 1 << 20


def cid_from_digest(digest: bytes) -> str:
    """The CID text of a 32-byte BLAKE3 digest."""
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"BLAKE3-256 digest must be {DIGEST_SIZE} bytes, got {len(digest)}")
    return "b" + base64.b32encode(_HEADER + digest).decode("ascii").lower().rstrip("=")


def digest_from_cid(cid: str) -> bytes:
    """Decode a raw BLAKE3 CIDv1 back to its digest; ValueError if it is not one."""
    if not cid.startswith("b"):
        raise ValueError(f"not a base32 multibase CID: {cid!r}")
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError as exc:
        raise ValueError(f"not a base32 multibase CID: {cid!r}") from exc
    if len(raw) != len(_HEADER) + DIGEST_SIZE or raw[: len(_HEADER)] != _HEADER:
        raise ValueError(f"not a CIDv1 raw BLAKE3-256 CID: {cid!r}")
    return raw[len(_HEADER) :]


def is_cid(value: str) -> bool:
    try:
        digest_from_cid(value)
    except ValueError:
        return False
    return True


def cid_of_bytes(data: bytes) -> str:
    """CID of an in-memory object."""
    return cid_from_digest(blake3.blake3(data).digest())


def cid_of_file(path: Path) -> str:
    """CID of a file, read in 1 MiB chunks so large files never sit in memory whole."""
    hasher = blake3.blake3()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return cid_from_digest(hasher.digest())


def verify_cid(data: bytes, cid: str) -> None:
    """Raise IntegrityError unless `data` hashes to `cid`."""
    actual = cid_of_bytes(data)
    if actual != cid:
        raise IntegrityError(
            f"content does not match its CID: expected {cid}, got {actual} ({len(data)} bytes)",
            hint="the object is corrupt or was cut short in transit; fetch it again or re-upload a good copy",
        )
