"""S3 wire formats: the error type the server raises and the XML documents it answers with."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote

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
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    bucket: str, prefix: str, delimiter: str, objects: list[ListedObject], prefixes: list[str],
    v2: bool, url_encode: bool, start_after: str = "",
) -> bytes:
    """ListBucketResult for v1 and v2. Never truncated: Basin returns one page, capped by the server."""

    def enc(value: str) -> str:
        return quote(value, safe="/") if url_encode else value

    root = ET.Element("ListBucketResult", xmlns=S3_NS)
    _sub(root, "Name", bucket)
    _sub(root, "Prefix", enc(prefix))
    if delimiter:
        _sub(root, "Delimiter", enc(delimiter))
    if v2:
        _sub(root, "KeyCount", len(objects) + len(prefixes))
        if start_after:
            _sub(root, "StartAfter", enc(start_after))
    else:
        _sub(root, "Marker", "")
    _sub(root, "MaxKeys", max(1000, len(objects) + len(prefixes)))
    if url_encode:
        _sub(root, "EncodingType", "url")
    _sub(root, "IsTruncated", "false")
    for obj in objects:
        c = _sub(root, "Contents")
        _sub(c, "Key", enc(obj.key))
        _sub(c, "LastModified", iso8601(obj.last_modified))
        _sub(c, "ETag", f'"{obj.etag}"')
        _sub(c, "Size", obj.size)
        _sub(c, "StorageClass", "STANDARD")
    for p in prefixes:
        cp = _sub(root, "CommonPrefixes")
        _sub(cp, "Prefix", enc(p))
    return _doc(root)


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
        if number is None or etag is None or not number.strip().isdigit():
            raise S3Error(400, "MalformedXML", "each Part needs a PartNumber and an ETag")
        parts.append((int(number), etag.strip().strip('"')))
    if not parts:
        raise S3Error(400, "MalformedXML", "CompleteMultipartUpload lists no parts")
    return parts
