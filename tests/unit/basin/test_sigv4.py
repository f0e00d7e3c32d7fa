"""SigV4 verification against requests signed by botocore's own signer (no server involved)."""

from __future__ import annotations

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from modelopsx.basin.s3xml import S3Error
from modelopsx.basin.sigv4 import SigV4Verifier, canonical_query

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "http://127.0.0.1:8014"


def _split(request: AWSRequest) -> tuple[str, str, dict[str, list[str]]]:
    url = request.url[len(HOST) :]
    path, _, query = url.partition("?")
    headers: dict[str, list[str]] = {"host": ["127.0.0.1:8014"]}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value.decode() if isinstance(value, bytes) else value)
    return path, query, headers


def _signed(method: str, path: str, body: bytes = b"", secret: str = SK, **headers: str) -> AWSRequest:
    request = AWSRequest(method=method, url=HOST + path, data=body, headers=headers)
    S3SigV4Auth(Credentials(AK, secret), "s3", "us-east-1").add_auth(request)
    return request


@pytest.mark.parametrize(
    "path",
    [
        "/0xab.store/a/b.txt",
        "/0xab.store/with%20space/%C3%BC.bin",
        "/0xab.store?list-type=2&prefix=a%2Fb&delimiter=%2F&encoding-type=url",
        "/0xab.store/k?uploads",
    ],
)
def test_botocore_signatures_verify(path: str) -> None:
    request = _signed("PUT", path, b"body", **{"x-amz-meta-cid": "bafkr4i", "Content-Type": "text/plain"})
    raw_path, query, headers = _split(request)
    ctx = SigV4Verifier(AK, SK).verify("PUT", raw_path, query, headers)
    assert ctx.access_key == AK and ctx.scope.endswith("/us-east-1/s3/aws4_request")


def test_changed_header_or_method_fails() -> None:
    raw_path, query, headers = _split(_signed("PUT", "/b/k", b"x", **{"x-amz-meta-a": "1"}))
    headers["x-amz-meta-a"] = ["2"]
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK).verify("PUT", raw_path, query, headers)
    assert exc.value.code == "SignatureDoesNotMatch"
    raw_path, query, headers = _split(_signed("GET", "/b/k"))
    with pytest.raises(S3Error):
        SigV4Verifier(AK, SK).verify("DELETE", raw_path, query, headers)


def test_wrong_secret_and_unknown_key_never_echo_the_secret() -> None:
    raw_path, query, headers = _split(_signed("GET", "/b/k", secret="guessed-secret"))
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK).verify("GET", raw_path, query, headers)
    assert exc.value.code == "SignatureDoesNotMatch" and SK not in str(exc.value)
    with pytest.raises(S3Error) as exc:
        SigV4Verifier("OTHERKEY", SK).verify("GET", raw_path, query, headers)
    assert exc.value.code == "InvalidAccessKeyId" and exc.value.status == 403 and SK not in str(exc.value)


def test_missing_authorization_is_access_denied() -> None:
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK).verify("GET", "/b/k", "", {"host": ["h"]})
    assert exc.value.code == "AccessDenied"


def _presigned(expires: int = 300) -> tuple[str, str, dict[str, list[str]], float]:
    request = AWSRequest(method="GET", url=HOST + "/b/some%20key")
    S3SigV4QueryAuth(Credentials(AK, SK), "s3", "us-east-1", expires=expires).add_auth(request)
    raw_path, query, headers = _split(request)
    amz_date = next(p.split("=")[1] for p in query.split("&") if p.startswith("X-Amz-Date="))
    from datetime import UTC, datetime

    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return raw_path, query, headers, signed_at


def test_presigned_url_verifies_until_it_expires() -> None:
    raw_path, query, headers, signed_at = _presigned(expires=300)
    SigV4Verifier(AK, SK, clock=lambda: signed_at + 299).verify("GET", raw_path, query, headers)
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK, clock=lambda: signed_at + 301).verify("GET", raw_path, query, headers)
    assert exc.value.code == "AccessDenied" and "expired" in exc.value.message
    tampered = query.replace("X-Amz-Expires=300", "X-Amz-Expires=600")
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK, clock=lambda: signed_at).verify("GET", raw_path, tampered, headers)
    assert exc.value.code == "SignatureDoesNotMatch"


def test_canonical_query_sorts_and_normalises_encoding() -> None:
    assert canonical_query("b=2&a=1&uploads") == "a=1&b=2&uploads="
    assert canonical_query("prefix=a/b c") == canonical_query("prefix=a%2Fb%20c") == "prefix=a%2Fb%20c"
    assert canonical_query("X-Amz-Signature=abc&x=1", exclude="X-Amz-Signature") == "x=1"


def _header_signed_at(request: AWSRequest) -> float:
    from datetime import UTC, datetime

    amz_date = request.headers["X-Amz-Date"]
    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("offset", [-30 * 24 * 3600, -16 * 60, 16 * 60, 30 * 24 * 3600])
def test_signed_request_outside_fifteen_minutes_is_too_skewed(offset: float) -> None:
    request = _signed("GET", "/b/k")
    raw_path, query, headers = _split(request)
    server_now = _header_signed_at(request) - offset  # the request looks `offset` seconds old (or early)
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK, clock=lambda: server_now).verify("GET", raw_path, query, headers)
    assert exc.value.code == "RequestTimeTooSkewed" and exc.value.status == 403
    assert "15 minutes" in exc.value.message


@pytest.mark.parametrize("offset", [-14 * 60, 14 * 60])
def test_signed_request_within_fifteen_minutes_verifies(offset: float) -> None:
    request = _signed("GET", "/b/k")
    raw_path, query, headers = _split(request)
    server_now = _header_signed_at(request) - offset
    SigV4Verifier(AK, SK, clock=lambda: server_now).verify("GET", raw_path, query, headers)


def test_presigned_url_dated_in_the_future_is_refused() -> None:
    raw_path, query, headers, signed_at = _presigned(expires=300)
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK, clock=lambda: signed_at - 3600).verify("GET", raw_path, query, headers)
    assert exc.value.code == "AccessDenied" and "future" in exc.value.message


@pytest.mark.parametrize("expires", ["%C2%B2", "-5", "1_0", "999999999"])
def test_presigned_url_with_a_malformed_expiry_is_refused(expires: str) -> None:
    raw_path, query, headers, signed_at = _presigned(expires=300)
    with pytest.raises(S3Error) as exc:
        SigV4Verifier(AK, SK, clock=lambda: signed_at).verify(
            "GET", raw_path, query.replace("X-Amz-Expires=300", f"X-Amz-Expires={expires}"), headers
        )
    assert exc.value.code == "AuthorizationQueryParametersError" and exc.value.status == 400


@pytest.mark.parametrize("keys", [("AK", ""), ("", "SK")])
def test_an_empty_key_is_refused_rather_than_turning_checks_off(keys: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        SigV4Verifier(*keys)
