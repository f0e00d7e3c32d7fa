"""Multipart uploads raced against themselves: Complete vs Complete, Complete vs Abort and UploadPart vs
Complete each have exactly one winner; every loser is told `NoSuchUpload` (404), never a 500, and what is
stored is exactly what the winner asked for."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelopsx.storage.cid import cid_of_bytes
from tests.fixtures_basin import BASIN_STORE, s3_client, start_emulator

TRIALS = 6
PART = 2 << 20  # big enough that assembling the object takes a while, small enough for 2 shared cores


def _outcome(call: Callable[[], Any]) -> tuple[int, str]:
    """(HTTP status, S3 error code or "") of one request, with botocore's retries off."""
    try:
        response = call()
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"]), str(exc.response["Error"]["Code"])
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), ""


def _race(*calls: Callable[[], Any]) -> list[tuple[int, str]]:
    """Start the calls at the same instant on their own threads; their outcomes in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[int, str]] = [(0, "")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = _outcome(calls[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def s3(tmp_path: Path) -> Any:
    emulator = start_emulator(tmp_path / "basin")
    try:
        yield s3_client(emulator.endpoint, max_attempts=1, max_pool_connections=8)
    finally:
        emulator.stop()


def _upload_with_parts(s3: Any, key: str, parts: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    upload = str(s3.create_multipart_upload(Bucket=BASIN_STORE, Key=key)["UploadId"])
    listed = []
    for number, body in enumerate(parts, start=1):
        sent = s3.upload_part(Bucket=BASIN_STORE, Key=key, UploadId=upload, PartNumber=number, Body=body)
        listed.append({"PartNumber": number, "ETag": sent["ETag"]})
    return upload, listed


def _complete(s3: Any, key: str, upload: str, parts: list[dict[str, Any]]) -> Callable[[], Any]:
    return partial(
        s3.complete_multipart_upload,
        Bucket=BASIN_STORE,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": parts},
    )


def _no_upload_left(s3: Any) -> bool:
    return "Uploads" not in s3.list_multipart_uploads(Bucket=BASIN_STORE)


def test_concurrent_completes_have_one_winner(s3: Any) -> None:
    for trial in range(TRIALS):
        key = f"complete-complete/{trial}"
        parts = [os.urandom(PART), os.urandom(PART)]
        upload, listed = _upload_with_parts(s3, key, parts)
        outcomes = _race(*(_complete(s3, key, upload, listed) for _ in range(3)))
        assert sorted(outcomes) == [(200, ""), (404, "NoSuchUpload"), (404, "NoSuchUpload")], trial
        got = s3.get_object(Bucket=BASIN_STORE, Key=key)
        assert got["Body"].read() == b"".join(parts)
        assert got["Metadata"]["cid"] == cid_of_bytes(b"".join(parts))
        assert _no_upload_left(s3)


def test_complete_against_abort_has_one_winner(s3: Any) -> None:
    for trial in range(TRIALS):
        key = f"complete-abort/{trial}"
        parts = [os.urandom(PART), os.urandom(PART)]
        upload, listed = _upload_with_parts(s3, key, parts)
        abort = partial(s3.abort_multipart_upload, Bucket=BASIN_STORE, Key=key, UploadId=upload)
        completed, aborted = _race(_complete(s3, key, upload, listed), abort)
        assert sorted([completed, aborted]) in (
            [(200, ""), (404, "NoSuchUpload")],  # Complete won
            [(204, ""), (404, "NoSuchUpload")],  # Abort won
        ), (trial, completed, aborted)
        stored = s3.list_objects_v2(Bucket=BASIN_STORE, Prefix=key).get("KeyCount", 0)
        assert stored == (1 if completed[0] == 200 else 0), (trial, completed, aborted)
        assert _no_upload_left(s3)


def test_upload_part_against_complete_has_one_winner(s3: Any) -> None:
    """A part re-sent while the upload completes either lands first (Complete then sees another ETag and
    refuses) or finds the upload gone; the stored object never mixes the two versions of the part."""
    for trial in range(TRIALS):
        key = f"part-complete/{trial}"
        parts = [os.urandom(PART), os.urandom(PART)]
        upload, listed = _upload_with_parts(s3, key, parts)
        replacement = os.urandom(PART)
        resend = partial(
            s3.upload_part, Bucket=BASIN_STORE, Key=key, UploadId=upload, PartNumber=1, Body=replacement
        )
        completed, uploaded = _race(_complete(s3, key, upload, listed), resend)
        assert (completed, uploaded) in (
            ((200, ""), (404, "NoSuchUpload")),  # Complete won: the late part has no upload to join
            ((400, "InvalidPart"), (200, "")),  # the part won: Complete names an ETag no longer there
        ), (trial, completed, uploaded)
        if completed[0] == 200:
            assert s3.get_object(Bucket=BASIN_STORE, Key=key)["Body"].read() == b"".join(parts)
            assert _no_upload_left(s3)
        else:
            s3.abort_multipart_upload(Bucket=BASIN_STORE, Key=key, UploadId=upload)
