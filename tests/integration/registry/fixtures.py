"""Store fixtures for the registry suites: registry on a local directory and on the Basin emulator; serving on
moto (s3://) and gcp-storage-emulator (gs://)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE, start_emulator


def set_basin_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("MODELOPSX_BASIN_ENDPOINT", endpoint)
    monkeypatch.setenv("MODELOPSX_BASIN_ACCESS_KEY", BASIN_ACCESS_KEY)
    monkeypatch.setenv("MODELOPSX_BASIN_SECRET_KEY", BASIN_SECRET_KEY)
    monkeypatch.setenv("MODELOPSX_BASIN_STORE", BASIN_STORE)


@pytest.fixture(params=["local", "basin"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A registry store URL (also exported as MODELOPSX_REGISTRY_URL for CLI subprocesses)."""
    if request.param == "local":
        url = str(tmp_path / "registry-store")
        monkeypatch.setenv("MODELOPSX_REGISTRY_URL", url)
        yield url
        return
    emulator = start_emulator(tmp_path / "basin")
    try:
        set_basin_env(monkeypatch, emulator.endpoint)
        url = f"basin://{BASIN_STORE}"
        monkeypatch.setenv("MODELOPSX_REGISTRY_URL", url)
        yield url
    finally:
        emulator.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """s3://serving/models on moto's S3 server."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("MODELOPSX_S3_ENDPOINT", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        from modelopsx.storage.stores import ensure_store

        ensure_store("s3://serving/models")
        yield "s3://serving/models"
    finally:
        server.stop()


@pytest.fixture
def gs_serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """gs://serving/models on gcp-storage-emulator."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="serving")
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    try:
        yield "gs://serving/models"
    finally:
        server.stop()


@pytest.fixture
def basin_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """basin://<store>/serving on the Basin emulator (the pipeline's default serving location)."""
    emulator = start_emulator(tmp_path / "basin-serving")
    try:
        set_basin_env(monkeypatch, emulator.endpoint)
        yield f"basin://{BASIN_STORE}/serving"
    finally:
        emulator.stop()
