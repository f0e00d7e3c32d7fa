"""Real object-store servers on loopback for storage tests: moto's S3 server, gcp-storage-emulator, Basin."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelopsx.basin.server import BasinEmulator
from modelopsx.settings import BasinSettings
from modelopsx.storage.base import ObjectStore
from tests.fixtures_basin import BASIN_ACCESS_KEY, BASIN_SECRET_KEY, BASIN_STORE

S3_KEY, S3_SECRET = "moto-access", "moto-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        server.stop()


@pytest.fixture(autouse=True)
def _private_cid_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path / "cid-cache"))


def unique_bucket() -> str:
    return f"mx-{uuid.uuid4().hex[:16]}"


def make_s3_store(endpoint: str, prefix: str = "") -> Any:
    from modelopsx.storage.s3 import S3Store, make_s3_client

    store = S3Store(
        make_s3_client(endpoint, S3_KEY, S3_SECRET),
        unique_bucket(),
        prefix,
        endpoint=endpoint,
        access_key=S3_KEY,
    )
    store.create_bucket()
    return store


def make_gcs_store(prefix: str = "") -> Any:
    from modelopsx.storage.gcs import GCSStore, make_gcs_client

    store = GCSStore(make_gcs_client(), unique_bucket(), prefix)
    store.create_bucket()
    return store


def basin_settings(
    emulator: BasinEmulator,
    store: str = BASIN_STORE,
    access_key: str | None = BASIN_ACCESS_KEY,
    secret_key: str | None = BASIN_SECRET_KEY,
) -> BasinSettings:
    return BasinSettings(
        endpoint=emulator.endpoint, access_key=access_key, secret_key=secret_key, store=store
    )


def make_basin_store(emulator: BasinEmulator, prefix: str = "", **kwargs: Any) -> Any:
    from modelopsx.storage.basin_store import BasinStore

    list_cap = kwargs.pop("list_cap", emulator.list_cap)
    settings = basin_settings(emulator, **kwargs)
    return BasinStore.from_settings(prefix=prefix, settings=settings, list_cap=list_cap)


@pytest.fixture
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, basin_emulator: BasinEmulator
) -> Callable[[str, str], ObjectStore]:
    """make(kind, prefix) -> a fresh, empty store of that kind on a real server."""
    counter = iter(range(1000))

    def make(kind: str, prefix: str = "") -> ObjectStore:
        if kind == "local":
            from modelopsx.storage.local import LocalStore

            return LocalStore(tmp_path / f"local{next(counter)}" / prefix)
        if kind == "s3":
            return make_s3_store(request.getfixturevalue("moto_endpoint"), prefix)
        if kind == "gs":
            request.getfixturevalue("gcs_endpoint")
            return make_gcs_store(prefix)
        if kind == "basin":
            return make_basin_store(basin_emulator, f"run{next(counter)}/{prefix}".rstrip("/"))
        raise ValueError(kind)

    return make
