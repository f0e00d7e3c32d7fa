"""What travels on the wire: SigV4 (header, presigned, unsigned payload, streaming chunks), aws-chunked
bodies with checksum trailers as recent botocore sends them over TLS, multipart uploads, and raw HTTP
requests that no SDK would send (a 2 GiB Content-Length, a short body, a tampered body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import urllib.error
import urllib.request
import zlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from modelopsx.storage.cid import cid_of_bytes
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, s3_client, start_emulator


def _raw(
    endpoint: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _signed_headers(
    endpoint: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = BASIN_SECRET_KEY,
    context: dict | None = None,
) -> dict[str, str]:
    """Headers of a request signed by botocore's own SigV4 signer."""
    request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers or {})
    request.context.update(context or {})
    S3SigV4Auth(Credentials(BASIN_ACCESS_KEY, secret), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


# ---- SigV4 ----------------------------------------------------------------------------------------------
def test_wrong_access_key_is_access_denied_without_the_secret(basin_emulator) -> None:
    s3 = s3_client(basin_emulator.endpoint, access_key="someone-else", secret_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=BASIN_STORE)
    err = exc.value.response["Error"]
    assert err["Code"] == "InvalidAccessKeyId" and "access denied" in err["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert BASIN_SECRET_KEY not in str(exc.value) and "not-the-secret" not in str(exc.value)


def test_wrong_secret_is_signature_mismatch(basin_emulator) -> None:
    s3 = s3_client(basin_emulator.endpoint, secret_key="wrong-secret")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "access denied" in exc.value.response["Error"]["Message"]
    assert BASIN_SECRET_KEY not in str(exc.value) and "wrong-secret" not in str(exc.value)
    with pytest.raises(ClientError):
        s3_client(basin_emulator.endpoint).head_object(Bucket=BASIN_STORE, Key="k")


def test_unsigned_request_is_refused_when_keys_are_set(basin_emulator) -> None:
    status, _, body = _raw(basin_emulator.endpoint, "GET", f"/{BASIN_STORE}?list-type=2")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"<RequestId>" in body


def test_unsigned_payload_is_accepted(basin_emulator) -> None:
    s3 = s3_client(basin_emulator.endpoint, s3={"addressing_style": "path", "payload_signing_enabled": False})
    s3.put_object(Bucket=BASIN_STORE, Key="u", Body=b"unsigned body")
    assert s3.get_object(Bucket=BASIN_STORE, Key="u")["Body"].read() == b"unsigned body"


def test_tampered_body_is_rejected_and_not_stored(basin_emulator) -> None:
    path = f"/{BASIN_STORE}/tampered"
    headers = _signed_headers(basin_emulator.endpoint, "PUT", path, b"original")
    status, _, body = _raw(basin_emulator.endpoint, "PUT", path, b"tampered", headers)
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body
    with pytest.raises(ClientError):
        s3_client(basin_emulator.endpoint).head_object(Bucket=BASIN_STORE, Key="tampered")


def test_presigned_urls(basin_emulator) -> None:
    basin_s3 = s3_client(basin_emulator.endpoint, signature_version="s3v4")  # boto3 presigns SigV2 otherwise
    basin_s3.put_object(Bucket=BASIN_STORE, Key="p/shared.txt", Body=b"shared")
    url = basin_s3.generate_presigned_url(
        "get_object", Params={"Bucket": BASIN_STORE, "Key": "p/shared.txt"}, ExpiresIn=600
    )
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"shared"
    forged = url.replace("p/shared.txt", "p/other.txt")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(forged, timeout=10)
    assert exc.value.code == 403
    put_url = basin_s3.generate_presigned_url(
        "put_object", Params={"Bucket": BASIN_STORE, "Key": "p/up.txt"}, ExpiresIn=600
    )
    with urllib.request.urlopen(urllib.request.Request(put_url, data=b"uploaded", method="PUT"), timeout=10):
        pass
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="p/up.txt")["Body"].read() == b"uploaded"


# ---- aws-chunked ----------------------------------------------------------------------------------------
def _force_trailer_checksums(client) -> None:
    """Make botocore frame the body as it does over TLS: aws-chunked with a CRC32 trailer and
    x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER."""

    def to_trailer(params, **kwargs) -> None:
        algorithm = params["context"].get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    client.meta.events.register("before-call.s3.PutObject", to_trailer)
    client.meta.events.register("before-call.s3.UploadPart", to_trailer)


def test_botocore_aws_chunked_trailer_uploads(basin_emulator) -> None:
    s3 = s3_client(basin_emulator.endpoint)
    _force_trailer_checksums(s3)
    seen: list[dict] = []

    def record(request, **kwargs) -> None:
        items = request.headers.items()
        seen.append({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in items})

    s3.meta.events.register("before-send.s3.PutObject", record)
    body = os.urandom((2 << 20) + 12345)  # several aws-chunked chunks
    s3.put_object(Bucket=BASIN_STORE, Key="chunked.bin", Body=body, Metadata={"kind": "blob"})
    assert seen[0]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert "aws-chunked" in seen[0]["content-encoding"] and seen[0]["x-amz-trailer"] == "x-amz-checksum-crc32"
    got = s3.get_object(Bucket=BASIN_STORE, Key="chunked.bin")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"kind": "blob", "cid": cid_of_bytes(body)}
    assert got["ContentLength"] == len(body) and "ContentEncoding" not in got


def _aws_chunked_request(endpoint: str, key: str, data: bytes, crc_b64: str) -> tuple[int, bytes]:
    framed = (
        f"{len(data):x}\r\n".encode()
        + data
        + b"\r\n0\r\n"
        + f"x-amz-checksum-crc32:{crc_b64}\r\n\r\n".encode()
    )
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    context = {
        "checksum": {
            "request_algorithm": {"in": "trailer", "algorithm": "crc32", "name": "x-amz-checksum-crc32"}
        }
    }
    path = f"/{BASIN_STORE}/{key}"
    signed = _signed_headers(endpoint, "PUT", path, framed, headers, context=context)
    assert signed["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    status, _, body = _raw(endpoint, "PUT", path, framed, signed)
    return status, body


def test_aws_chunked_trailer_checksum_is_verified(basin_emulator, basin_s3) -> None:
    data = b"pedestrian annotations"
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    status, body = _aws_chunked_request(basin_emulator.endpoint, "ok", data, good)
    assert status == 200, body
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="ok")["Body"].read() == data
    status, body = _aws_chunked_request(basin_emulator.endpoint, "bad", data, "AAAAAA==")
    assert status == 400 and b"BadDigest" in body
    with pytest.raises(ClientError):
        basin_s3.head_object(Bucket=BASIN_STORE, Key="bad")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def test_signed_streaming_chunks_are_verified(basin_emulator, basin_s3) -> None:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD as other SDKs send it, signed here from the AWS spec."""
    chunks = [b"a" * 70000, b"b" * 1234]
    data = b"".join(chunks)
    now = datetime.now(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    key = f"AWS4{BASIN_SECRET_KEY}".encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = _hmac(key, part)
    host = urlsplit(basin_emulator.endpoint).netloc

    def put(path: str, corrupt: bool) -> tuple[int, bytes]:
        frame = len(";chunk-signature=") + 64 + 2 + 2
        encoded_len = sum(len(f"{len(c):x}") + frame + len(c) for c in chunks + [b""])
        headers = {
            "host": host,
            "content-encoding": "aws-chunked",
            "content-length": str(encoded_len),
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "x-amz-date": amz_date,
            "x-amz-decoded-content-length": str(len(data)),
        }
        signed = sorted(headers)
        canonical_headers = "".join(f"{h}:{headers[h]}\n" for h in signed)
        canonical = "\n".join(
            ["PUT", path, "", canonical_headers, ";".join(signed), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]
        )
        sts = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={BASIN_ACCESS_KEY}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={previous}"
        )
        body = b""
        for chunk in chunks + [b""]:
            sts = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    amz_date,
                    scope,
                    previous,
                    hashlib.sha256(b"").hexdigest(),
                    hashlib.sha256(chunk).hexdigest(),
                ]
            )
            previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            sent = chunk.replace(b"b", b"c") if corrupt else chunk
            body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
        assert len(body) == encoded_len
        status, _, resp = _raw(basin_emulator.endpoint, "PUT", path, body, headers)
        return status, resp

    assert put(f"/{BASIN_STORE}/streamed", corrupt=False)[0] == 200
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="streamed")["Body"].read() == data
    status, resp = put(f"/{BASIN_STORE}/streamed-bad", corrupt=True)
    assert status == 403 and b"SignatureDoesNotMatch" in resp


# ---- raw HTTP edge cases --------------------------------------------------------------------------------
def test_two_gib_put_is_413_before_the_body_is_read(tmp_path) -> None:
    emulator = start_emulator(tmp_path / "basin", access_key=None, secret_key=None)
    try:
        parts = urlsplit(emulator.endpoint)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest("PUT", f"/{BASIN_STORE}/huge.bin")
        conn.putheader("Content-Length", str(2 << 30))
        conn.endheaders(b"only a few bytes of the 2 GiB")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 413
        assert b"<Code>EntityTooLarge</Code>" in body
        assert b"2 GiB" in body and b"1 GiB" in body
        status, _, _ = _raw(emulator.endpoint, "HEAD", f"/{BASIN_STORE}/huge.bin")
        assert status == 404  # nothing stored, and the server still answers
        assert not list((tmp_path / "basin" / "tmp").iterdir())
    finally:
        emulator.stop()


def test_short_body_is_incomplete_and_not_stored(tmp_path) -> None:
    emulator = start_emulator(tmp_path / "basin", access_key=None, secret_key=None)
    try:
        parts = urlsplit(emulator.endpoint)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest("PUT", f"/{BASIN_STORE}/short")
        conn.putheader("Content-Length", "100")
        conn.endheaders(b"x" * 50)
        assert conn.sock is not None
        conn.sock.shutdown(1)  # the client dies mid-upload
        resp = conn.getresponse()
        assert resp.status == 400 and b"IncompleteBody" in resp.read()
        conn.close()
        status, _, _ = _raw(emulator.endpoint, "HEAD", f"/{BASIN_STORE}/short")
        assert status == 404
    finally:
        emulator.stop()


def test_content_md5_mismatch_is_bad_digest(basin_emulator) -> None:
    path = f"/{BASIN_STORE}/md5"
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    headers = _signed_headers(basin_emulator.endpoint, "PUT", path, b"payload", {"Content-MD5": wrong})
    status, _, body = _raw(basin_emulator.endpoint, "PUT", path, b"payload", headers)
    assert status == 400 and b"BadDigest" in body


# ---- multipart ------------------------------------------------------------------------------------------
def test_multipart_upload_file_and_download(basin_emulator, basin_s3, tmp_path) -> None:
    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=3)
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom((11 << 20) + 3))
    basin_s3.upload_file(str(src), BASIN_STORE, "models/weights.bin", Config=cfg)
    assert basin_emulator.stats.operations["UploadPart"] == 3
    head = basin_s3.head_object(Bucket=BASIN_STORE, Key="models/weights.bin")
    assert head["ETag"] == f'"{cid_of_bytes(src.read_bytes())}"'
    assert head["ContentLength"] == src.stat().st_size
    dst = tmp_path / "copy.bin"
    basin_s3.download_file(BASIN_STORE, "models/weights.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == src.read_bytes()
    from boto3.exceptions import S3UploadFailedError

    with pytest.raises(S3UploadFailedError, match="KeyExists"):
        basin_s3.upload_file(str(src), BASIN_STORE, "models/weights.bin", Config=cfg)
    assert not list((basin_emulator.root / "uploads").iterdir())


def test_multipart_abort_and_bad_parts(basin_emulator, basin_s3) -> None:
    upload = basin_s3.create_multipart_upload(Bucket=BASIN_STORE, Key="mpu")["UploadId"]
    part = basin_s3.upload_part(Bucket=BASIN_STORE, Key="mpu", UploadId=upload, PartNumber=1, Body=b"abc")
    with pytest.raises(ClientError) as exc:
        basin_s3.complete_multipart_upload(
            Bucket=BASIN_STORE,
            Key="mpu",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
        )
    assert exc.value.response["Error"]["Code"] == "InvalidPart"
    basin_s3.abort_multipart_upload(Bucket=BASIN_STORE, Key="mpu", UploadId=upload)
    with pytest.raises(ClientError) as exc:
        basin_s3.complete_multipart_upload(
            Bucket=BASIN_STORE,
            Key="mpu",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
    assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError):
        basin_s3.head_object(Bucket=BASIN_STORE, Key="mpu")


# ---- hostile requests -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "offset",
    [
        -3 * 365 * 24 * 3600,  # a request captured years ago, replayed
        -16 * 60,
        30 * 24 * 3600,  # a request prepared for later
    ],
)
def test_signed_request_far_from_the_server_clock_is_refused(basin_emulator, monkeypatch, offset) -> None:
    from datetime import timedelta

    import botocore.auth

    client_now = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=offset)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: client_now)  # the client's clock
    s3 = s3_client(basin_emulator.endpoint, max_attempts=1)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=BASIN_STORE, Key="replayed", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "RequestTimeTooSkewed"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    monkeypatch.undo()
    with pytest.raises(ClientError) as exc:
        s3_client(basin_emulator.endpoint).head_object(Bucket=BASIN_STORE, Key="replayed")
    assert exc.value.response["Error"]["Code"] == "404"


@pytest.fixture
def open_emulator(tmp_path):
    """An emulator with no auth, so raw requests reach the parsers."""
    emulator = start_emulator(tmp_path / "open", access_key=None, secret_key=None)
    try:
        yield emulator
    finally:
        emulator.stop()


def test_invalid_utf8_keys_are_refused_not_merged(open_emulator) -> None:
    for key in ("bad%FFkey", "bad%FEkey", "bad%C3key"):
        status, _, body = _raw(open_emulator.endpoint, "PUT", f"/{BASIN_STORE}/{key}", b"data")
        assert status == 400 and b"<Code>InvalidURI</Code>" in body, (key, body)
    status, _, body = _raw(open_emulator.endpoint, "GET", f"/{BASIN_STORE}?list-type=2&prefix=bad%FF")
    assert status == 400 and b"InvalidURI" in body
    status, _, body = _raw(open_emulator.endpoint, "GET", f"/{BASIN_STORE}?list-type=2")
    assert status == 200 and b"<Key>" not in body  # nothing was stored under a mangled name
    status, _, _ = _raw(open_emulator.endpoint, "PUT", f"/{BASIN_STORE}/ok%C3%BCkey", b"fine")
    assert status == 200


def _raw_header_request(endpoint: str, request_line: str, headers: list[tuple[str, bytes]]) -> bytes:
    """Send header bytes exactly as given (http.client would refuse non-ASCII); the reply up to the close."""
    import socket

    parts = urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        lines = [request_line.encode()] + [name.encode() + b": " + value for name, value in headers]
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("value", [b"\xb2", b"\xd9\xa3", b"+5", b"1_0", b"-1", b"0x10"])
def test_content_length_that_is_not_ascii_digits_gets_a_400(open_emulator, value) -> None:
    reply = _raw_header_request(
        open_emulator.endpoint,
        f"PUT /{BASIN_STORE}/k HTTP/1.1",
        [("Host", b"x"), ("Content-Length", value), ("Connection", b"close")],
    )
    assert reply.startswith(b"HTTP/1.1 400") and b"Content-Length" in reply, reply
    status, _, _ = _raw(open_emulator.endpoint, "HEAD", f"/{BASIN_STORE}/k")
    assert status == 404  # and the server still answers


@pytest.mark.parametrize("number", ["%C2%B2", "%D9%A3", "0", "10001", "+1", "1_0", "99999999999999999999999"])
def test_part_number_must_be_ascii_digits_in_range(open_emulator, number) -> None:
    s3 = s3_client(open_emulator.endpoint)
    upload = s3.create_multipart_upload(Bucket=BASIN_STORE, Key="mpu")["UploadId"]
    status, _, body = _raw(
        open_emulator.endpoint, "PUT", f"/{BASIN_STORE}/mpu?partNumber={number}&uploadId={upload}", b"abc"
    )
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body and b"partNumber" in body


def test_complete_with_a_unicode_part_number_is_malformed(open_emulator) -> None:
    s3 = s3_client(open_emulator.endpoint)
    upload = s3.create_multipart_upload(Bucket=BASIN_STORE, Key="mpu")["UploadId"]
    xml = (
        "<CompleteMultipartUpload><Part><PartNumber>\u00b2</PartNumber><ETag>x</ETag></Part>"
        "</CompleteMultipartUpload>"
    )
    status, _, body = _raw(
        open_emulator.endpoint, "POST", f"/{BASIN_STORE}/mpu?uploadId={upload}", xml.encode()
    )
    assert status == 400 and b"MalformedXML" in body


def test_range_with_unicode_digits_is_ignored_like_any_unparsable_range(open_emulator) -> None:
    _raw(open_emulator.endpoint, "PUT", f"/{BASIN_STORE}/r", b"0123456789")
    reply = _raw_header_request(
        open_emulator.endpoint,
        f"GET /{BASIN_STORE}/r HTTP/1.1",
        [("Host", b"x"), ("Range", b"bytes=\xb2-"), ("Connection", b"close")],
    )
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"0123456789")
