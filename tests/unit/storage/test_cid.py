from __future__ import annotations

import base64

import blake3
import pytest

from modelopsx.errors import IntegrityError
from modelopsx.storage.cid import (
    CID_PREFIX,
    cid_from_digest,
    cid_of_bytes,
    cid_of_file,
    digest_from_cid,
    is_cid,
    verify_cid,
)

# Independent vectors: CIDv1/raw/blake3 of b"" and b"hello" as other implementations (iroh, zig and Rust
# CID libraries) print them.
EMPTY_CID = "bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi"
HELLO_CID = "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"


def test_known_vectors() -> None:
    assert cid_of_bytes(b"") == EMPTY_CID
    assert cid_of_bytes(b"hello") == HELLO_CID


def test_binary_layout_follows_the_cid_spec() -> None:
    cid = cid_of_bytes(b"pedestrian")
    assert cid.startswith(CID_PREFIX) and cid == cid.lower() and "=" not in cid
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    # version 1, raw codec 0x55, multihash blake3 0x1e, 32-byte digest
    assert raw[:4] == bytes([0x01, 0x55, 0x1E, 0x20])
    assert raw[4:] == blake3.blake3(b"pedestrian").digest()
    assert digest_from_cid(cid) == raw[4:]
    assert cid_from_digest(raw[4:]) == cid


def test_file_cid_streams_and_matches_bytes(tmp_path) -> None:
    data = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB: several read chunks plus a tail
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert cid_of_file(path) == cid_of_bytes(data)


def test_verify_accepts_match_and_rejects_mismatch() -> None:
    verify_cid(b"hello", HELLO_CID)
    with pytest.raises(IntegrityError) as info:
        verify_cid(b"hellp", HELLO_CID)
    assert HELLO_CID in info.value.message and info.value.hint


@pytest.mark.parametrize(
    "value",
    [
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq",  # sha2-256 CID, not blake3
        "QmSnuWmxptJZdLJpKRarxBMS2Ju2oANVrgbr2xWbie9b2D",  # CIDv0
        "bafkr4i",
        "",
        "b!!!",
    ],
)
def test_is_cid_rejects_other_identifiers(value: str) -> None:
    assert not is_cid(value)
    with pytest.raises(ValueError):
        digest_from_cid(value)
    assert is_cid(HELLO_CID)


def test_digest_length_is_checked() -> None:
    with pytest.raises(ValueError):
        cid_from_digest(b"\x00" * 31)
