"""The S3 operations of the Basin emulator: buckets, objects, multipart uploads and listings on the store.

Each `_op_<Operation>` answers one request that `classify` named, with Basin's semantics (immutable objects,
CIDs as ETags, hash-ordered listings capped at `list_cap`); the HTTP side (bodies, responses, errors as S3
XML) comes from `http_exchange`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import quote

import blake3

from modelopsx.basin import s3xml
from modelopsx.basin.http_exchange import HttpExchange, insufficient_storage
from modelopsx.basin.numbers import decimal_or_none
from modelopsx.basin.payload import BLOCK
from modelopsx.basin.s3xml import S3Error, parse_decimal
from modelopsx.basin.store_fs import ObjectMeta, key_exists
from modelopsx.storage.cid import cid_from_digest

REGION = "us-east-1"
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def classify(method: str, bucket: str, key: str, query: dict[str, list[str]]) -> str:
    """The S3 operation a request names (used for routing, fault applicability and stats)."""
    # presigned-URL auth parameters and botocore's x-id marker do not name a subresource
    query = {k: v for k, v in query.items() if not k.lower().startswith("x-amz-") and k != "x-id"}
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if not key:
        if method == "PUT":
            return "CreateBucket" if not query else "Unsupported"
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            if "location" in query:
                return "GetBucketLocation"
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "uploads" in query:
                return "ListMultipartUploads"
            unsupported = set(query) - {
                "prefix",
                "delimiter",
                "encoding-type",
                "max-keys",
                "marker",
                "start-after",
                "continuation-token",
                "fetch-owner",
                "list-type",
            }
            return "Unsupported" if unsupported else "ListObjects"
        return "Unsupported"
    if method == "PUT":
        if "uploadId" in query and "partNumber" in query:
            return "UploadPart"
        return "PutObject" if not query else "Unsupported"
    if method == "GET":
        return "ListParts" if "uploadId" in query else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    return "Unsupported"


class S3Operations(HttpExchange):
    """The S3 operations a request handler answers, on the emulator's store."""

    # Set for each request by the dispatcher: the resolved store name and the object key.
    bucket: str
    key: str

    @staticmethod
    def _etag(cid: str) -> str:
        return f'"{cid}"'

    def _object_headers(self, meta: ObjectMeta, with_metadata: bool) -> list[tuple[str, str]]:
        headers = [
            ("ETag", self._etag(meta.cid)),
            ("Last-Modified", s3xml.http_date(meta.last_modified)),
            ("Accept-Ranges", "bytes"),
            ("Content-Type", meta.content_type),
        ]
        if with_metadata:
            for name, value in meta.metadata.items():
                if name != "cid":
                    headers.append((f"x-amz-meta-{name}", value))
            headers.append(("x-amz-meta-cid", meta.cid))
        return headers

    # ---- operations: service and buckets ---------------------------------------------------------------
    def _op_Unsupported(self) -> None:
        raise S3Error(
            501,
            "NotImplemented",
            f"{self.command} {self.raw_path}?{self.raw_query} is not part of the Basin S3 subset",
        )

    def _op_ListBuckets(self) -> None:
        self._send(200, s3xml.list_buckets_xml(self.server.emulator.store.list_buckets()))

    def _op_CreateBucket(self) -> None:
        self._read_small_body()  # optional CreateBucketConfiguration; Basin has a single region
        self.server.emulator.store.create_bucket(self.bucket)
        self._send(200, headers=[("Location", f"/{self.bucket}")])

    def _op_ListMultipartUploads(self) -> None:
        prefix = (self.query.get("prefix") or [""])[0]
        uploads = self.server.emulator.store.list_uploads(self.bucket, prefix)
        self._send(200, s3xml.list_multipart_uploads_xml(self.bucket, prefix, uploads))

    def _op_HeadBucket(self) -> None:
        self.server.emulator.store.require_bucket(self.bucket)
        self._send(200, headers=[("x-amz-bucket-region", REGION)])

    def _op_GetBucketLocation(self) -> None:
        self.server.emulator.store.require_bucket(self.bucket)
        self._send(200, s3xml.location_xml(REGION))

    def _list(self, v2: bool) -> None:
        emu = self.server.emulator
        prefix = (self.query.get("prefix") or [""])[0]
        delimiter = (self.query.get("delimiter") or [""])[0]
        url_encode = (self.query.get("encoding-type") or [""])[0] == "url"
        objects, prefixes = emu.store.list(self.bucket, prefix, delimiter, emu.list_cap)
        body = s3xml.list_objects_xml(
            self.bucket,
            prefix,
            delimiter,
            objects,
            prefixes,
            v2,
            url_encode,
            start_after=(self.query.get("start-after") or [""])[0],
        )
        self._send(200, body)

    def _op_ListObjects(self) -> None:
        self._list(v2=False)

    def _op_ListObjectsV2(self) -> None:
        self._list(v2=True)

    # ---- operations: objects ---------------------------------------------------------------------------
    def _op_PutObject(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        if "x-amz-copy-source" in self.hdrs:
            raise S3Error(501, "NotImplemented", "CopyObject is not part of the Basin S3 subset")
        self._check_size(self._declared_size())
        if_none_match = (self.hdrs.get("if-none-match") or [""])[0].strip()
        if if_none_match not in ("", "*"):
            raise S3Error(501, "NotImplemented", "If-None-Match on PUT supports only '*'")
        if emu.store.exists(self.bucket, self.key):  # early answer; the commit below is the real guard
            raise self._taken()
        declared_cid = self._declared_cid()
        tmp, size, cid = self._receive_body(emu.max_object_size)
        try:
            if declared_cid is not None and declared_cid != cid:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"declared x-amz-meta-cid {declared_cid} does not match the content's CID {cid}",
                )
            content_type = (self.hdrs.get("content-type") or ["binary/octet-stream"])[0]
            self._commit(tmp, size, cid, content_type, self._user_metadata())
        finally:
            tmp.unlink(missing_ok=True)
        self._send(200, headers=[("ETag", self._etag(cid)), ("x-amz-meta-cid", cid)])

    def _op_HeadObject(self) -> None:
        meta = self.server.emulator.store.head(self.bucket, self.key)
        if self._not_modified(meta):
            self._start(304, [("ETag", self._etag(meta.cid))], 0)
            return
        self._start(200, self._object_headers(meta, with_metadata=False), meta.size)

    def _not_modified(self, meta: ObjectMeta) -> bool:
        """Conditional read headers, as S3 applies them: If-Match failing is 412; If-None-Match
        matching (the ETag, or * for any object) means the client's copy is current: 304."""
        if_match = (self.hdrs.get("if-match") or [""])[0]
        if if_match and if_match.strip() not in ("*", self._etag(meta.cid), meta.cid):
            raise S3Error(412, "PreconditionFailed", "If-Match does not match the object's ETag")
        if_none_match = (self.hdrs.get("if-none-match") or [""])[0].strip()
        return bool(if_none_match) and if_none_match in ("*", self._etag(meta.cid), meta.cid)

    def _parse_range(self, size: int) -> tuple[int, int] | None:
        header = (self.hdrs.get("range") or [""])[0].strip()
        if not header:
            return None
        m = _RANGE.fullmatch(header)
        if m is None or (not m.group(1) and not m.group(2)):
            return None  # S3 ignores a range it cannot parse (including multi-range) and sends everything
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if last and int(last) < start:
                return None
        else:
            start, end = max(size - int(last), 0), size - 1
            if int(last) == 0:
                start = size
        if start >= size or size == 0:
            raise S3Error(416, "InvalidRange", f"range {header!r} is not satisfiable for {size} bytes")
        return start, end

    def _op_GetObject(self) -> None:
        emu = self.server.emulator
        meta = emu.store.head(self.bucket, self.key)
        if self._not_modified(meta):
            self._start(304, [("ETag", self._etag(meta.cid))], 0)
            return
        try:
            byte_range = self._parse_range(meta.size)
        except S3Error as err:
            body = s3xml.error_xml(err, self.request_id)
            self._send(416, body, [("Content-Range", f"bytes */{meta.size}")])
            return
        try:
            fh = emu.store.data_path(self.bucket, meta).open("rb")
        except FileNotFoundError:  # deleted between reading the sidecar and opening the data
            raise S3Error(404, "NoSuchKey", f"no object with key {self.key!r}") from None
        with fh:
            headers = self._object_headers(meta, with_metadata=True)
            if byte_range is None:
                start, length, status = 0, meta.size, 200
            else:
                start, end = byte_range
                length, status = end - start + 1, 206
                headers.append(("Content-Range", f"bytes {start}-{end}/{meta.size}"))
            if self.truncate and length == 0:  # nothing to cut short: fail the way a dropped connection does
                self._drop()
                return
            send_limit = length // 2 if self.truncate else length
            if self.truncate:
                self.close_connection = True
            self._start(status, headers, length)
            fh.seek(start)
            remaining = send_limit
            while remaining > 0:
                block = fh.read(min(BLOCK, remaining))
                if not block:
                    break
                self.wfile.write(block)
                remaining -= len(block)
            emu.stats.add_bytes(sent=send_limit - remaining)
            if self.truncate:
                self.wfile.flush()
                self._drop()

    def _taken(self) -> S3Error:
        """The answer to a write on a stored key: 412 when the client made it conditional on absence
        (`If-None-Match: *`, as S3 answers), else Basin's 409 KeyExists."""
        if (self.hdrs.get("if-none-match") or [""])[0].strip() == "*":
            return S3Error(
                412,
                "PreconditionFailed",
                f"If-None-Match: * failed: {self.key!r} is already stored",
                f"/{self.bucket}/{self.key}",
            )
        return key_exists(self.bucket, self.key)

    def _commit(self, tmp: Path, size: int, cid: str, content_type: str, metadata: dict[str, str]) -> None:
        try:
            self.server.emulator.store.commit(self.bucket, self.key, tmp, size, cid, content_type, metadata)
        except S3Error as err:
            if err.code == "KeyExists":  # another writer committed the key first
                raise self._taken() from None
            raise

    def _op_DeleteObject(self) -> None:
        self.server.emulator.store.delete(self.bucket, self.key)
        self._send(204)

    # ---- operations: multipart upload (large files from boto3 upload_file / s3fs) -----------------------
    def _op_CreateMultipartUpload(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        self._read_small_body()
        if emu.store.exists(self.bucket, self.key):
            raise key_exists(self.bucket, self.key)
        metadata = self._user_metadata()
        self._declared_cid()
        content_type = (self.hdrs.get("content-type") or ["binary/octet-stream"])[0]
        upload_id = emu.store.create_upload(self.bucket, self.key, content_type, metadata)
        self._send(200, s3xml.initiate_multipart_xml(self.bucket, self.key, upload_id))

    def _op_UploadPart(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        number = decimal_or_none(self.query["partNumber"][0])
        if number is None or not 1 <= number <= 10_000:
            raise S3Error(400, "InvalidArgument", "partNumber must be an integer between 1 and 10000")
        emu.store.upload_info(self.bucket, self.key, upload_id)  # early answer, before the body is read
        self._check_size(self._declared_size())
        tmp, _, md5_hex = self._receive_body(emu.max_object_size, part=True)
        try:
            with emu.store.upload_lock(upload_id):  # the upload may have been completed or aborted meanwhile
                emu.store.upload_info(self.bucket, self.key, upload_id)
                emu.store.save_part(upload_id, number, tmp, md5_hex)
        finally:
            tmp.unlink(missing_ok=True)
        self._send(200, headers=[("ETag", f'"{md5_hex}"')])

    def _op_UploadPartCopy(self) -> None:
        raise S3Error(
            501,
            "NotImplemented",
            "UploadPartCopy is not part of the Basin S3 subset (nor is CopyObject): download the source and "
            "upload its bytes",
        )

    def _op_ListParts(self) -> None:
        emu = self.server.emulator
        emu.store.require_bucket(self.bucket)
        upload_id = self.query["uploadId"][0]
        max_parts = parse_decimal((self.query.get("max-parts") or ["1000"])[0], "max-parts")
        marker = parse_decimal((self.query.get("part-number-marker") or ["0"])[0], "part-number-marker")
        parts = emu.store.list_parts(self.bucket, self.key, upload_id)
        body = s3xml.list_parts_xml(self.bucket, self.key, upload_id, parts, marker, min(max_parts, 1000))
        self._send(200, body)

    def _op_AbortMultipartUpload(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        with emu.store.upload_lock(upload_id):  # after a Complete that holds it, the upload is gone: 404
            emu.store.upload_info(self.bucket, self.key, upload_id)
            emu.store.remove_upload(upload_id)
        self._send(204)

    def _op_CompleteMultipartUpload(self) -> None:
        emu = self.server.emulator
        upload_id = self.query["uploadId"][0]
        emu.store.upload_info(self.bucket, self.key, upload_id)  # early answer, before the body is read
        parts = s3xml.parse_complete_multipart(self._read_small_body())
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise S3Error(400, "InvalidPartOrder", "parts must be listed once each, in ascending order")
        # Held from the checks to the removal: a racing Complete, Abort or part sees the upload whole or gone.
        with emu.store.upload_lock(upload_id):
            info = emu.store.upload_info(self.bucket, self.key, upload_id)
            cid = self._assemble(upload_id, info, parts)
            emu.store.remove_upload(upload_id)
        location = f"{emu.endpoint}/{self.bucket}/{quote(self.key)}"
        self._send(
            200,
            s3xml.complete_multipart_xml(location, self.bucket, self.key, cid),
            headers=[("x-amz-meta-cid", cid)],
        )

    def _assemble(self, upload_id: str, info: dict, parts: list[tuple[int, str]]) -> str:
        """Concatenate the listed parts into the object and commit it; its CID."""
        store = self.server.emulator.store
        total = 0
        for number, etag in parts:
            if store.part_etag(upload_id, number) != etag:
                raise S3Error(400, "InvalidPart", f"part {number} was not uploaded or its ETag differs")
            total += store.part_path(upload_id, number).stat().st_size
        self._check_size(total)
        if store.exists(self.bucket, self.key):
            raise self._taken()
        free = shutil.disk_usage(store.tmp).free
        if total > free:
            raise insufficient_storage(total, free)
        tmp = store.new_temp()
        hasher = blake3.blake3()
        try:
            with tmp.open("wb") as out:
                for number, _ in parts:
                    with store.part_path(upload_id, number).open("rb") as part:
                        while block := part.read(BLOCK):
                            out.write(block)
                            hasher.update(block)
            cid = cid_from_digest(hasher.digest())
            declared = info["metadata"].get("cid")
            if declared is not None and declared != cid:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"declared x-amz-meta-cid {declared} does not match the content's CID {cid}",
                )
            self._commit(tmp, total, cid, info["content_type"], info["metadata"])
        finally:
            tmp.unlink(missing_ok=True)
        return cid
