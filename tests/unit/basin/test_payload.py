"""Body framings S3 clients use, decoded exactly as botocore encodes them."""

from __future__ import annotations

import base64
import hashlib
import io
import zlib

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from modelopsx.basin.payload import Checksums, iter_aws_chunked, iter_exact, iter_http_chunked
from modelopsx.basin.s3xml import S3Error


def _decode_aws(framed: bytes) -> tuple[bytes, dict[str, str]]:
    trailers: dict[str, str] = {}
    data = b"".join(
        iter_aws_chunked(
            iter([framed[i : i + 7000] for i in range(0, len(framed), 7000)]), trailers, None, signed=False
        )
    )
    return data, trailers


@pytest.mark.parametrize("size", [0, 1, 65_536, 200_001])
def test_botocore_aws_chunked_round_trip(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32", chunk_size=65_536
    )
    decoded, trailers = _decode_aws(wrapper.read())
    assert decoded == data
    assert trailers["x-amz-checksum-crc32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    checks = Checksums({"x-amz-trailer": ["x-amz-checksum-crc32"]}, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    checks.update(decoded)
    checks.verify(trailers)


@pytest.mark.parametrize(
    "framed",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # size is not hex
        b"5\r\nabc",  # body shorter than the chunk size
        b"3\r\nabcXX0\r\n\r\n",  # chunk not followed by CRLF
    ],
)
def test_malformed_aws_chunked_is_rejected(framed: bytes) -> None:
    with pytest.raises(S3Error) as exc:
        _decode_aws(framed)
    assert exc.value.status == 400


def test_http_chunked_and_exact_reads() -> None:
    stream = io.BytesIO(b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nx-trailer: y\r\n\r\nNEXT")
    assert b"".join(iter_http_chunked(stream)) == b"wikipedia"
    assert stream.read() == b"NEXT"  # stops exactly at the end of the message
    assert b"".join(iter_exact(io.BytesIO(b"abcdef"), 4)) == b"abcd"
    with pytest.raises(S3Error) as exc:
        b"".join(iter_exact(io.BytesIO(b"ab"), 4))
    assert exc.value.code == "IncompleteBody"


def test_checksums_catch_every_declared_mismatch() -> None:
    data = b"payload"
    good = {
        "content-md5": [base64.b64encode(hashlib.md5(data).digest()).decode()],
        "x-amz-checksum-sha256": [base64.b64encode(hashlib.sha256(data).digest()).decode()],
        "x-amz-checksum-crc32": [base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()],
    }
    checks = Checksums(good, hashlib.sha256(data).hexdigest())
    checks.update(data)
    checks.verify({})
    for name in good:
        bad = dict(good)
        bad[name] = [base64.b64encode(b"\x00" * 4).decode()]
        checks = Checksums(bad, "UNSIGNED-PAYLOAD")
        checks.update(data)
        with pytest.raises(S3Error) as exc:
            checks.verify({})
        assert exc.value.code == "BadDigest"
    checks = Checksums({}, hashlib.sha256(b"other").hexdigest())
    checks.update(data)
    with pytest.raises(S3Error) as exc:
        checks.verify({})
    assert exc.value.code == "XAmzContentSHA256Mismatch"
