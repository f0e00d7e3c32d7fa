"""AWS Signature Version 4 verification for S3 requests (header and presigned-query forms).

Implemented with hmac/hashlib only so the server does not depend on botocore. S3 flavour: the canonical URI is
the path exactly as sent (no re-normalisation), and the payload hash is whatever `x-amz-content-sha256` says
(a hex digest, UNSIGNED-PAYLOAD or a STREAMING-* marker); the body itself is checked against a hex digest
by the server while it streams.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from modelopsx.basin.numbers import decimal_or_none
from modelopsx.basin.s3xml import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# S3 refuses a signed request whose time is further than this from its clock, so a captured request cannot be
# replayed later (or prepared for later); presigned URLs have their own expiry instead.
MAX_SKEW_SECONDS = 15 * 60
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SigningContext:
    """What a verified request carries forward, e.g. for checking aws-chunked chunk signatures."""

    access_key: str
    amz_date: str
    scope: str
    seed_signature: str
    signing_key: bytes


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(raw_query: str, exclude: str | None = None) -> str:
    """Decode every pair and re-encode it the SigV4 way, so clients that encode differently still match."""
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        if key == exclude:
            continue
        pairs.append((_uri_encode(key), _uri_encode(value)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Mapping[str, list[str]], signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            raise S3Error(403, "SignatureDoesNotMatch", f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def parse_amz_date(amz_date: str, code: str) -> float:
    """Seconds since the epoch of an ISO 8601 basic-format UTC time (`20240102T030405Z`)."""
    try:
        return datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise S3Error(
            403 if code == "AccessDenied" else 400,
            code,
            f"request time {amz_date!r} is not of the form YYYYMMDDTHHMMSSZ (x-amz-date)",
        ) from None


def _parse_credential(credential: str) -> tuple[str, str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise S3Error(400, "AuthorizationHeaderMalformed", f"malformed credential scope {credential!r}")
    access_key, date, region, service, _ = parts
    return access_key, date, region, service, "/".join(parts[1:])


class SigV4Verifier:
    """Checks requests against one access/secret key pair. Error messages never contain the secret."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        clock: Callable[[], float] = time.time,
        max_skew_seconds: float = MAX_SKEW_SECONDS,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("SigV4 needs a non-empty access key and secret key")
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._max_skew = max_skew_seconds

    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, list[str]]
    ) -> SigningContext:
        """Verify a request; `headers` maps lower-case names to their values in order. Raises S3Error."""
        auth = (headers.get("authorization") or [""])[0]
        if auth:
            return self._verify_header(method, raw_path, raw_query, headers, auth)
        if "X-Amz-Signature=" in raw_query or "x-amz-signature=" in raw_query.lower():
            return self._verify_query(method, raw_path, raw_query, headers)
        if "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                "only SigV4 presigned URLs are accepted; presign with signature_version='s3v4'",
            )
        raise S3Error(
            403, "AccessDenied", "access denied: the request is not signed and this store needs keys"
        )

    def _check_key(self, access_key: str) -> None:
        if not hmac.compare_digest(access_key.encode(), self._access_key.encode()):
            raise S3Error(
                403,
                "InvalidAccessKeyId",
                f"access denied: the access key id {access_key!r} is not known to this store",
            )

    def _check_skew(self, signed_at: float, amz_date: str) -> None:
        now = self._clock()
        if abs(now - signed_at) > self._max_skew:
            server_time = datetime.fromtimestamp(now, UTC).strftime(AMZ_DATE_FORMAT)
            raise S3Error(
                403,
                "RequestTimeTooSkewed",
                f"the request time {amz_date} differs from the server time {server_time} by more than "
                f"{self._max_skew / 60:g} minutes; sync the client's clock and sign the request again",
            )

    def _verify_header(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, list[str]], auth: str
    ) -> SigningContext:
        algorithm, _, rest = auth.partition(" ")
        if algorithm != ALGORITHM:
            raise S3Error(400, "InvalidArgument", f"unsupported authorization algorithm {algorithm!r}")
        fields: dict[str, str] = {}
        for item in rest.split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        try:
            credential, signed_names, signature = (
                fields["Credential"],
                fields["SignedHeaders"],
                fields["Signature"],
            )
        except KeyError as exc:
            raise S3Error(400, "AuthorizationHeaderMalformed", f"authorization header lacks {exc}") from exc
        access_key, date, region, service, scope = _parse_credential(credential)
        self._check_key(access_key)
        amz_date = (headers.get("x-amz-date") or headers.get("date") or [""])[0]
        if not amz_date.startswith(date):
            raise S3Error(403, "SignatureDoesNotMatch", "x-amz-date does not match the credential scope date")
        self._check_skew(parse_amz_date(amz_date, "AccessDenied"), amz_date)
        payload_hash = (headers.get("x-amz-content-sha256") or [""])[0]
        if not payload_hash:
            raise S3Error(400, "InvalidRequest", "missing required header x-amz-content-sha256")
        signed = signed_names.split(";")
        canonical_request = "\n".join(
            [
                method,
                raw_path or "/",
                canonical_query(raw_query),
                _canonical_headers(headers, signed),
                signed_names,
                payload_hash,
            ]
        )
        key = signing_key(self._secret_key, date, region, service)
        expected = hmac.new(key, string_to_sign(amz_date, scope, canonical_request).encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "access denied: the request signature does not match; check the secret key",
            )
        return SigningContext(access_key, amz_date, scope, signature, key)

    def _verify_query(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, list[str]]
    ) -> SigningContext:
        params: dict[str, str] = {}
        for part in raw_query.split("&"):
            name, _, value = part.partition("=")
            params[unquote(name)] = unquote(value)
        try:
            algorithm = params["X-Amz-Algorithm"]
            credential = params["X-Amz-Credential"]
            amz_date = params["X-Amz-Date"]
            expires = decimal_or_none(params["X-Amz-Expires"])
            signed_names = params["X-Amz-SignedHeaders"]
            signature = params["X-Amz-Signature"]
        except (KeyError, ValueError) as exc:
            raise S3Error(400, "AuthorizationQueryParametersError", f"presigned url lacks {exc}") from exc
        if algorithm != ALGORITHM:
            raise S3Error(400, "InvalidArgument", f"unsupported algorithm {algorithm!r}")
        access_key, date, region, service, scope = _parse_credential(credential)
        self._check_key(access_key)
        signed_at = parse_amz_date(amz_date, "AuthorizationQueryParametersError")
        if expires is None or expires > MAX_PRESIGN_SECONDS:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires must be between 0 and {MAX_PRESIGN_SECONDS} seconds",
            )
        if signed_at - self._clock() > self._max_skew:
            raise S3Error(403, "AccessDenied", "access denied: the presigned url is dated in the future")
        if self._clock() > signed_at + expires:
            raise S3Error(403, "AccessDenied", "access denied: the presigned url has expired")
        signed = signed_names.split(";")
        canonical_request = "\n".join(
            [
                method,
                raw_path or "/",
                canonical_query(raw_query, exclude="X-Amz-Signature"),
                _canonical_headers(headers, signed),
                signed_names,
                (headers.get("x-amz-content-sha256") or [UNSIGNED_PAYLOAD])[0],
            ]
        )
        key = signing_key(self._secret_key, date, region, service)
        expected = hmac.new(key, string_to_sign(amz_date, scope, canonical_request).encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "access denied: the presigned url signature does not match; check the secret key",
            )
        return SigningContext(access_key, amz_date, scope, signature, key)


def chunk_signature(ctx: SigningContext, previous: str, chunk_sha256: str) -> str:
    """Signature of one STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk (chained from the previous one)."""
    sts = "\n".join(
        ["AWS4-HMAC-SHA256-PAYLOAD", ctx.amz_date, ctx.scope, previous, EMPTY_SHA256, chunk_sha256]
    )
    return hmac.new(ctx.signing_key, sts.encode(), hashlib.sha256).hexdigest()


def trailer_signature(ctx: SigningContext, previous: str, trailer_lines: bytes) -> str:
    """Signature of the trailing headers of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER."""
    sts = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            ctx.amz_date,
            ctx.scope,
            previous,
            hashlib.sha256(trailer_lines).hexdigest(),
        ]
    )
    return hmac.new(ctx.signing_key, sts.encode(), hashlib.sha256).hexdigest()
