"""open_store URL parsing (construction only; servers are exercised in tests/integration/storage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.errors import StorageError
from modelopsx.storage.basin_store import BasinStore
from modelopsx.storage.gcs import GCSStore
from modelopsx.storage.local import LocalStore
from modelopsx.storage.s3 import S3Store
from modelopsx.storage.stores import open_store


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalStore)
    store = open_store(f"file://{tmp_path}/x")
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "x").resolve()
    assert open_store(store) is store


def test_s3_url_uses_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPSX_S3_ENDPOINT", "http://127.0.0.1:9000")
    store = open_store("s3://bucket-name/some/prefix/")
    assert isinstance(store, S3Store) and store.bucket == "bucket-name" and store.prefix == "some/prefix/"
    assert store.endpoint == "http://127.0.0.1:9000" and store.url == "s3://bucket-name/some/prefix/"
    assert store.client.meta.config.s3["addressing_style"] == "path"


def test_basin_url_takes_settings_and_the_store_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPSX_BASIN_ENDPOINT", "http://127.0.0.1:8999")
    monkeypatch.setenv("MODELOPSX_BASIN_STORE", "0x0000000000000000000000000000000000000002.fromenv")
    named = open_store("basin://0x00000000000000000000000000000000000000aa.data/v1")
    assert isinstance(named, BasinStore) and named.bucket.endswith(".data") and named.prefix == "v1/"
    assert named.immutable and named.list_cap == 10_000 and named.endpoint == "http://127.0.0.1:8999"
    default = open_store("basin:///runs")
    assert isinstance(default, BasinStore) and default.bucket.endswith(".fromenv")


def test_gs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    store = open_store("gs://my-bucket/p")
    assert isinstance(store, GCSStore) and store.emulated and store.url == "gs://my-bucket/p/"


@pytest.mark.parametrize("url", ["ftp://a/b", "s3://", "gs:///x"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(StorageError):
        open_store(url)
