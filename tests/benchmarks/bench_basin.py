"""Basin emulator throughput, measured against the emulator as a separate process (as `make run` clients see
it): small-object PUTs from 1 vs 8 client threads, single-stream large-object PUT/GET, and where the time of a
10,000-key listing goes (emulator vs boto3's XML parsing)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from modelopsx.basin.store_fs import FsStore
from modelopsx.storage.cid import cid_of_bytes
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, s3_client

SMALL_OBJECTS = 400
SMALL_SIZE = 16 << 10
LARGE_SIZE = 64 << 20
LISTED = 10_000
SHARDS = 16  # the populated keys sit under 16 prefixes, as a sharding client would lay them out


def _populate(root: Path) -> None:
    """10,000 objects written straight through the file store, so the listing bench needs no 10k PUTs."""
    store = FsStore(root)
    try:
        store.create_bucket(BASIN_STORE)
        for i in range(LISTED):
            body = store.new_temp()
            data = f"object {i}".encode()
            body.write_bytes(data)
            store.commit(
                BASIN_STORE,
                f"listed/{i % SHARDS:x}/{i:05d}",
                body,
                len(data),
                cid_of_bytes(data),
                "binary/octet-stream",
                {},
            )
    finally:
        store.close()  # releases the root for the server started next


def _serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelopsx.cli",
            "basin",
            "serve",
            "--root",
            str(root),
            "--port",
            "0",
            "--access-key",
            BASIN_ACCESS_KEY,
            "--secret-key",
            BASIN_SECRET_KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "basin"
        _populate(root)
        proc, endpoint = _serve(root)
        try:
            s3 = s3_client(endpoint, max_pool_connections=16)
            payload = os.urandom(SMALL_SIZE)

            def put(key: str) -> None:
                s3.put_object(Bucket=BASIN_STORE, Key=key, Body=payload)

            started = time.perf_counter()
            for i in range(SMALL_OBJECTS):
                put(f"seq/{i}")
            sequential = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, [f"par/{i}" for i in range(SMALL_OBJECTS)]))
            parallel = time.perf_counter() - started
            print(
                f"{SMALL_OBJECTS} PUTs of {SMALL_SIZE >> 10} KiB: "
                f"1 thread {SMALL_OBJECTS / sequential:.0f}/s, 8 threads {SMALL_OBJECTS / parallel:.0f}/s "
                f"(ratio {sequential / parallel:.2f}x)"
            )

            big = os.urandom(LARGE_SIZE)
            started = time.perf_counter()
            s3.put_object(Bucket=BASIN_STORE, Key="large.bin", Body=big)
            put_s = time.perf_counter() - started
            started = time.perf_counter()
            back = s3.get_object(Bucket=BASIN_STORE, Key="large.bin")["Body"].read()
            get_s = time.perf_counter() - started
            assert back == big
            mib = LARGE_SIZE / (1 << 20)
            print(
                f"{mib:.0f} MiB object: PUT {mib / put_s:.0f} MiB/s (CID + SigV4 payload hash), "
                f"GET {mib / get_s:.0f} MiB/s"
            )

            started = time.perf_counter()
            full = s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="listed/")["KeyCount"]
            boto3_s = time.perf_counter() - started
            request = AWSRequest(method="GET", url=f"{endpoint}/{BASIN_STORE}?list-type=2&prefix=listed%2F")
            S3SigV4Auth(Credentials(BASIN_ACCESS_KEY, BASIN_SECRET_KEY), "s3", "us-east-1").add_auth(request)
            parts = urlsplit(endpoint)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            started = time.perf_counter()
            conn.request("GET", request.url[len(endpoint) :], headers=dict(request.headers.items()))
            raw = conn.getresponse().read()
            raw_s = time.perf_counter() - started
            conn.close()
            assert full == LISTED and raw.count(b"<Key>") == LISTED
            print(
                f"list {LISTED} keys: emulator + transfer {raw_s * 1000:.0f} ms, boto3 list_objects_v2 "
                f"{boto3_s * 1000:.0f} ms (client-side XML parsing is {1 - raw_s / boto3_s:.0%} of it)"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
