"""S3 wire formats: the error type the server raises and the XML documents it answers with."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote
from xml.sax.saxutils import escape

from modelopsx.basin.numbers import decimal_or_none

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class S3Error(Exception):
    """An S3 error response: HTTP status, S3 error code and a human-readable message."""

    def __init__(self, status: int, code: str, message: str, resource: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.resource = resource


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str
    last_modified: float


def iso8601(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _doc(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def error_xml(err: S3Error, request_id: str) -> bytes:
    root = ET.Element("Error")
    _sub(root, "Code", err.code)
    _sub(root, "Message", err.message)
    _sub(root, "Resource", err.resource)
    _sub(root, "RequestId", request_id)
    return _doc(root)


def list_buckets_xml(buckets: Iterable[tuple[str, float]]) -> bytes:
    root = ET.Element("ListAllMyBucketsResult", xmlns=S3_NS)
    owner = _sub(root, "Owner")
    _sub(owner, "ID", "basin")
    _sub(owner, "DisplayName", "basin")
    container = _sub(root, "Buckets")
    for name, created in buckets:
        b = _sub(container, "Bucket")
        _sub(b, "Name", name)
        _sub(b, "CreationDate", iso8601(created))
    return _doc(root)


def location_xml(region: str) -> bytes:
    root = ET.Element("LocationConstraint", xmlns=S3_NS)
    root.text = region
    return _doc(root)


def list_objects_xml(
    bucket: str,
    prefix: str,
    delimiter: str,
    objects: list[ListedObject],
    prefixes: list[str],
    v2: bool,
    url_encode: bool,
    start_after: str = "",
) -> bytes:
    """ListBucketResult for v1 and v2. Never truncated: Basin returns one page, capped by the server.
    Built as text rather than an element tree: a 10,000-entry listing must stay cheap."""

    def enc(value: str) -> str:
        return escape(quote(value, safe="/") if url_encode else value)

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<ListBucketResult xmlns="{S3_NS}">',
        f"<Name>{escape(bucket)}</Name><Prefix>{enc(prefix)}</Prefix>",
    ]
    if delimiter:
        out.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
    if v2:
        out.append(f"<KeyCount>{len(objects) + len(prefixes)}</KeyCount>")
        if start_after:
            out.append(f"<StartAfter>{enc(start_after)}</StartAfter>")
    else:
        out.append("<Marker></Marker>")
    out.append(f"<MaxKeys>{max(1000, len(objects) + len(prefixes))}</MaxKeys>")
    if url_encode:
        out.append("<EncodingType>url</EncodingType>")
    out.append("<IsTruncated>false</IsTruncated>")
    out.extend(
        f"<Contents><Key>{enc(o.key)}</Key><LastModified>{iso8601(o.last_modified)}</LastModified>"
        f"<ETag>&quot;{o.etag}&quot;</ETag><Size>{o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for o in objects
    )
    out.extend(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes)
    out.append("</ListBucketResult>")
    return "".join(out).encode("utf-8")


def initiate_multipart_xml(bucket: str, key: str, upload_id: str) -> bytes:
    root = ET.Element("InitiateMultipartUploadResult", xmlns=S3_NS)
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "UploadId", upload_id)
    return _doc(root)


def complete_multipart_xml(location: str, bucket: str, key: str, etag: str) -> bytes:
    root = ET.Element("CompleteMultipartUploadResult", xmlns=S3_NS)
    _sub(root, "Location", location)
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "ETag", f'"{etag}"')
    return _doc(root)


def parse_complete_multipart(body: bytes) -> list[tuple[int, str]]:
    """(part number, etag without quotes) pairs from a CompleteMultipartUpload request body."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise S3Error(400, "MalformedXML", f"CompleteMultipartUpload body is not XML: {exc}") from exc
    parts: list[tuple[int, str]] = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Part":
            continue
        number = etag = None
        for child in el:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "PartNumber":
                number = child.text
            elif tag == "ETag":
                etag = child.text
        value = decimal_or_none(number.strip()) if number is not None else None
        if value is None or etag is None:
            raise S3Error(400, "MalformedXML", "each Part needs a PartNumber (ASCII digits) and an ETag")
        parts.append((value, etag.strip().strip('"')))
    if not parts:
        raise S3Error(400, "MalformedXML", "CompleteMultipartUpload lists no parts")
    return parts


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload that was started and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: float


def list_multipart_uploads_xml(bucket: str, prefix: str, uploads: list[PendingUpload]) -> bytes:
    root = ET.Element("ListMultipartUploadsResult", xmlns=S3_NS)
    _sub(root, "Bucket", bucket)
    _sub(root, "KeyMarker", "")
    _sub(root, "UploadIdMarker", "")
    _sub(root, "Prefix", prefix)
    _sub(root, "MaxUploads", max(1000, len(uploads)))
    _sub(root, "IsTruncated", "false")
    for upload in uploads:
        el = _sub(root, "Upload")
        _sub(el, "Key", upload.key)
        _sub(el, "UploadId", upload.upload_id)
        _sub(el, "StorageClass", "STANDARD")
        _sub(el, "Initiated", iso8601(upload.initiated))
    return _doc(root)


@dataclass(frozen=True)
class UploadedPart:
    """A part received for a multipart upload in progress."""

    number: int
    etag: str  # MD5 hex, as S3 gives a part's ETag
    size: int
    last_modified: float


def list_parts_xml(
    bucket: str, key: str, upload_id: str, parts: list[UploadedPart], marker: int, max_parts: int
) -> bytes:
    """ListPartsResult: the parts numbered above `marker`, at most `max_parts`, paginated as S3 does."""
    after = [p for p in parts if p.number > marker]
    page = after[:max_parts]
    root = ET.Element("ListPartsResult", xmlns=S3_NS)
    _sub(root, "Bucket", bucket)
    _sub(root, "Key", key)
    _sub(root, "UploadId", upload_id)
    for role in ("Initiator", "Owner"):
        el = _sub(root, role)
        _sub(el, "ID", "basin")
        _sub(el, "DisplayName", "basin")
    _sub(root, "StorageClass", "STANDARD")
    _sub(root, "PartNumberMarker", marker)
    _sub(root, "NextPartNumberMarker", page[-1].number if page else marker)
    _sub(root, "MaxParts", max_parts)
    _sub(root, "IsTruncated", "true" if len(after) > len(page) else "false")
    for part in page:
        el = _sub(root, "Part")
        _sub(el, "PartNumber", part.number)
        _sub(el, "LastModified", iso8601(part.last_modified))
        _sub(el, "ETag", f'"{part.etag}"')
        _sub(el, "Size", part.size)
    return _doc(root)


def parse_decimal(text: str | None, what: str, status: int = 400, code: str = "InvalidArgument") -> int:
    """Like `decimal_or_none`, but an S3Error that names the field when the text is not a number."""
    value = decimal_or_none(text)
    if value is None:
        raise S3Error(
            status, code, f"{what} must be a non-negative decimal integer in ASCII digits, got {text!r}"
        )
    return value
