"""Fault injection in the Basin emulator: each kind behaves as advertised, is counted, is reproducible by
seed, and never stores anything partial or corrupt."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    IncompleteReadError,
    ResponseStreamingError,
)

from modelopsx.basin.faults import FaultInjector
from modelopsx.errors import StorageError
from modelopsx.storage.cid import cid_of_bytes, verify_cid
from tests.fixtures_basin import BASIN_STORE, s3_client, start_emulator

TRUNCATED = (IncompleteReadError, ResponseStreamingError)
DROPPED = (ConnectionClosedError, EndpointConnectionError)


def _stored_files(root: Path) -> tuple[int, int]:
    objects = root / "buckets" / BASIN_STORE / "objects"
    return len(list(objects.glob("*/*.json"))), len(list(objects.glob("*/*.data")))


def test_injected_500s_are_counted_and_store_nothing(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "basin", fail_rate=1.0, fault_kinds={"500"})
    try:
        s3 = s3_client(emulator.endpoint, max_attempts=2)
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"x" * 10_000)
        assert exc.value.response["Error"]["Code"] == "InternalError"
        assert emulator.stats.faults == 2 and emulator.stats.faults_by_kind["500"] == 2
        assert emulator.stats.statuses[500] == 2
        emulator.fail_rate = 0.0
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BASIN_STORE, Key="k")
        assert _stored_files(emulator.root) == (0, 0)
        assert not list((emulator.root / "tmp").iterdir())
    finally:
        emulator.stop()


def test_dropped_connections_surface_as_connection_errors(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "basin", fail_rate=1.0, fault_kinds={"drop"})
    try:
        s3 = s3_client(emulator.endpoint, max_attempts=2)
        with pytest.raises(DROPPED):
            s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"payload")
        assert emulator.stats.faults_by_kind["drop"] == 2
        emulator.fail_rate = 0.0
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BASIN_STORE, Key="k")
        assert _stored_files(emulator.root) == (0, 0)
        s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"payload")  # the server itself is fine afterwards
    finally:
        emulator.stop()


def test_truncated_bodies_are_detected_and_retried_by_downloads(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "basin", fault_kinds={"truncate"}, fail_seed=3)
    try:
        s3 = s3_client(emulator.endpoint)
        body = bytes(range(256)) * 2000
        s3.put_object(Bucket=BASIN_STORE, Key="blob", Body=body)
        emulator.fail_rate = 1.0
        resp = s3.get_object(Bucket=BASIN_STORE, Key="blob")
        assert resp["ContentLength"] == len(body)  # the full length is advertised ...
        with pytest.raises(TRUNCATED):
            resp["Body"].read()  # ... but the connection closes early
        assert emulator.stats.faults_by_kind["truncate"] == 1
        emulator.fail_rate = 0.0
        s3.put_object(Bucket=BASIN_STORE, Key="empty", Body=b"")
        emulator.fail_rate = 1.0
        with pytest.raises(DROPPED):  # an empty body cannot be cut short: the connection drops instead
            s3_client(emulator.endpoint, max_attempts=1).get_object(Bucket=BASIN_STORE, Key="empty")
        emulator.fail_rate = 0.3
        target = tmp_path / "blob"
        s3.download_file(BASIN_STORE, "blob", str(target))  # s3transfer retries cut-off streams
        assert target.read_bytes() == body
        emulator.fail_rate = 0.0
        assert s3.get_object(Bucket=BASIN_STORE, Key="blob")["Body"].read() == body  # stored bytes intact
    finally:
        emulator.stop()


def _get_verified(s3, key: str, attempts: int = 8) -> bytes:
    """What a careful client does: retry cut-off reads, then check the bytes against their CID."""
    for attempt in range(attempts):
        try:
            resp = s3.get_object(Bucket=BASIN_STORE, Key=key)
            data = resp["Body"].read()
        except TRUNCATED:
            if attempt == attempts - 1:
                raise
            continue
        verify_cid(data, resp["Metadata"]["cid"])
        return bytes(data)
    raise AssertionError("unreachable")


def test_work_completes_at_fail_rate_0_2_with_every_object_verified(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "basin", fail_rate=0.2, fail_seed=11, latency_ms=1)
    try:
        s3 = s3_client(emulator.endpoint, max_attempts=10)
        payloads = {f"data/{i:03d}.bin": f"object {i} ".encode() * (50 + 37 * i) for i in range(16)}
        for key, data in payloads.items():
            s3.put_object(Bucket=BASIN_STORE, Key=key, Body=data, Metadata={"cid": cid_of_bytes(data)})
        for key, data in payloads.items():
            assert _get_verified(s3, key) == data
        listed = s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="data/")["Contents"]
        assert sorted(o["Key"] for o in listed) == sorted(payloads)
        stats = emulator.stats.snapshot()
        assert stats["faults"] > 0 and set(stats["faults_by_kind"]) <= {"500", "drop", "truncate"}
        assert stats["requests"] > 2 * len(payloads)
        assert _stored_files(emulator.root) == (16, 16)  # no duplicates, no debris
    finally:
        emulator.stop()


def test_failed_writes_never_leave_partial_or_corrupt_objects(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "basin", fail_rate=0.5, fail_seed=5)
    try:
        s3 = s3_client(emulator.endpoint, max_attempts=1)
        payloads = {f"k{i:02d}": bytes([i]) * (1000 * i + 1) for i in range(30)}
        outcomes = {}
        for key, data in payloads.items():
            try:
                s3.put_object(Bucket=BASIN_STORE, Key=key, Body=data)
                outcomes[key] = True
            except (ClientError, *DROPPED):
                outcomes[key] = False
        assert 0 < sum(outcomes.values()) < len(payloads)  # some writes failed, some landed
        emulator.fail_rate = 0.0
        for key, data in payloads.items():
            if outcomes[key]:
                assert _get_verified(s3, key) == data
            else:
                with pytest.raises(ClientError) as exc:
                    s3.head_object(Bucket=BASIN_STORE, Key=key)
                assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        stored = sum(outcomes.values())
        assert _stored_files(emulator.root) == (stored, stored)
        assert not list((emulator.root / "tmp").iterdir())
    finally:
        emulator.stop()


def test_fault_sequence_is_reproducible_by_seed() -> None:
    def sequence(seed: int) -> list[str | None]:
        injector = FaultInjector(rate=0.3, seed=seed)
        return [injector.pick(truncatable=i % 2 == 0) for i in range(200)]

    first = sequence(42)
    assert first == sequence(42)
    assert first != sequence(43)
    assert {f for f in first if f} == {"500", "drop", "truncate"}
    assert all(f != "truncate" for i, f in enumerate(first) if i % 2 == 1)  # only where a body streams back
    assert FaultInjector(rate=0.0).pick(truncatable=True) is None


def test_unknown_fault_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        start_emulator(tmp_path / "basin", fault_kinds={"meteor"})


def test_concurrent_mixed_load_under_faults_stays_consistent(tmp_path: Path) -> None:
    """Six writers race on shared keys, list and delete while 5% of requests fail: afterwards every object
    is whole, listed exactly once, and backed by exactly one data file."""
    import threading

    emulator = start_emulator(tmp_path / "basin", fail_rate=0.05, fail_seed=21, fault_kinds={"500", "drop"})
    try:
        winners: dict[str, bytes] = {}
        deleted: set[str] = set()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(w: int) -> None:
            s3 = s3_client(emulator.endpoint, max_attempts=10)
            try:
                for i in range(8):
                    key = f"shared/{i:02d}"  # every worker races for these
                    body = f"worker {w} item {i}".encode()
                    try:
                        s3.put_object(Bucket=BASIN_STORE, Key=key, Body=body)
                        with lock:
                            winners[key] = body
                    except ClientError as exc:
                        assert exc.response["Error"]["Code"] == "KeyExists"
                    own = f"own/{w}/{i:02d}"
                    s3.put_object(Bucket=BASIN_STORE, Key=own, Body=body)
                    if i % 3 == 0:
                        s3.delete_object(Bucket=BASIN_STORE, Key=own)
                        with lock:
                            deleted.add(own)
                    s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="shared/")
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        emulator.fail_rate = 0.0
        s3 = s3_client(emulator.endpoint)
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"]]
        own = {f"own/{w}/{i:02d}" for w in range(6) for i in range(8)} - deleted
        assert len(listed) == len(set(listed)) and set(listed) == set(winners) | own
        for key, body in winners.items():
            assert _get_verified(s3, key) == body
        assert _stored_files(emulator.root) == (len(listed), len(listed))
        assert emulator.stats.faults > 0
    finally:
        emulator.stop()


# ---- a full disk ------------------------------------------------------------------------------------------
def _can_mount_a_private_tmpfs() -> bool:
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def emulator_on_a_full_disk(tmp_path: Path) -> Iterator[str]:
    """`basin serve` (no auth) whose root is a 1 MiB tmpfs in a private mount namespace: a real disk that
    fills up, with no privileges needed and nothing mounted for anyone else."""
    if not _can_mount_a_private_tmpfs():
        pytest.skip("unprivileged user and mount namespaces are not available here")
    root = tmp_path / "small-disk"
    root.mkdir()
    mount_then_serve = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"'
    serve = [sys.executable, "-m", "modelopsx.cli", "basin", "serve", "--root", str(root), "--port", "0"]
    proc = subprocess.Popen(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            mount_then_serve,
            str(root),
            *serve,
            "--create-store",
            BASIN_STORE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    endpoint = proc.stdout.readline().strip()
    try:
        assert endpoint.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield endpoint
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_a_full_disk_is_507_insufficient_storage_not_retried_and_leaves_nothing(
    emulator_on_a_full_disk: str,
) -> None:
    endpoint = emulator_on_a_full_disk
    # botocore's legacy (default) and standard retry modes: each would send a 500 up to 5 times
    for s3 in (s3_client(endpoint), s3_client(endpoint, max_attempts=5)):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=BASIN_STORE, Key="too-big", Body=os.urandom(2 << 20))
        response = exc.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert response["Error"]["Code"] == "InsufficientStorage"
        assert "disk that holds the Basin emulator's data is full" in response["Error"]["Message"]
        assert response["ResponseMetadata"]["RetryAttempts"] == 0

    # a body of unannounced size fills the disk mid-stream: the rest is read, the answer is still a 507
    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("PUT", f"/{BASIN_STORE}/streamed")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for _ in range(32):
            chunk = os.urandom(64 << 10)
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        answer = conn.getresponse()
        assert answer.status == 507 and b"InsufficientStorage" in answer.read()
    finally:
        conn.close()

    # the project's own client says the store is full and does not retry it as a passing fault
    from modelopsx.settings import BasinSettings
    from modelopsx.storage.basin_store import BasinStore
    from modelopsx.storage.retry import TransientStorageError

    store = BasinStore.from_settings(settings=BasinSettings(endpoint, None, None, BASIN_STORE))
    with pytest.raises(StorageError, match="has no room for") as refused:
        store.put("too-big-too", os.urandom(2 << 20))
    assert not isinstance(refused.value, TransientStorageError)

    # the failed bodies gave their space back: what fits is stored, and nothing partial is listed
    s3.put_object(Bucket=BASIN_STORE, Key="fits", Body=b"f" * (300 << 10))
    assert s3.get_object(Bucket=BASIN_STORE, Key="fits")["Body"].read() == b"f" * (300 << 10)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"]]
    assert listed == ["fits"]

    # assembling a multipart object needs its size again: refused before the disk fills
    upload = s3.create_multipart_upload(Bucket=BASIN_STORE, Key="assembled")["UploadId"]
    parts = []
    for number in (1, 2):
        etag = s3.upload_part(
            Bucket=BASIN_STORE, Key="assembled", UploadId=upload, PartNumber=number, Body=b"p" * (250 << 10)
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=BASIN_STORE, Key="assembled", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    assert exc.value.response["Error"]["Code"] == "InsufficientStorage"
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    s3.abort_multipart_upload(Bucket=BASIN_STORE, Key="assembled", UploadId=upload)
