"""Basin-specific client behaviour against the emulator: immutability, errors, the list cap, CID checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelopsx.basin.server import BasinEmulator
from modelopsx.errors import IntegrityError, KeyExistsError, NotFoundError, StorageError
from modelopsx.storage.local import LocalStore
from modelopsx.storage.stores import ensure_store, open_store
from tests.fixtures_basin import BASIN_SECRET_KEY, BASIN_STORE, s3_client, start_emulator
from tests.integration.storage.conftest import make_basin_store, make_s3_store


def test_re_put_of_existing_key_is_refused_and_keeps_the_original(basin_emulator: BasinEmulator) -> None:
    store = make_basin_store(basin_emulator)
    store.put("models/m.bin", b"original")
    with pytest.raises(KeyExistsError, match="already exists"):
        store.put("models/m.bin", b"replacement")
    assert store.get("models/m.bin") == b"original"


def test_wrong_access_key_names_the_key_but_never_the_secret(basin_emulator: BasinEmulator) -> None:
    store = make_basin_store(basin_emulator, secret_key="not-the-right-secret")
    with pytest.raises(StorageError) as info:
        store.put("x", b"y")
    text = str(info.value)
    assert "access denied by" in text and basin_emulator.endpoint in text and "basin-test-access" in text
    assert "not-the-right-secret" not in text and BASIN_SECRET_KEY not in text


def test_unknown_store_is_not_found_with_a_hint(basin_emulator: BasinEmulator) -> None:
    store = make_basin_store(basin_emulator, store="0x00000000000000000000000000000000000000ff.nothing")
    with pytest.raises(NotFoundError) as info:
        store.put("x", b"y")
    assert "does not exist" in info.value.message and "--create-store" in (info.value.hint or "")
    with pytest.raises(NotFoundError):
        list(store.iter_all())


def test_unreachable_endpoint_names_it(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "gone")
    endpoint = emulator.endpoint
    emulator.stop()
    from modelopsx.settings import BasinSettings
    from modelopsx.storage.basin_store import BasinStore

    store = BasinStore.from_settings(settings=BasinSettings(endpoint, "a", "b", BASIN_STORE))
    with pytest.raises(StorageError, match=f"cannot reach .*{endpoint}"):
        store.head("x")


def test_listing_over_the_cap_is_sharded_complete_and_sorted(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "capped", list_cap=25)
    try:
        store = make_basin_store(emulator, list_cap=25)
        keys = [f"flat/{i:03d}.bin" for i in range(60)]  # one folder above the cap: needs character shards
        keys += [f"tree/{d}/{i}.bin" for d in "abc" for i in range(12)]  # folders below, sum above the cap
        keys += ["flat", "tree/x"]
        client = s3_client(emulator.endpoint)
        for key in keys:
            client.put_object(Bucket=BASIN_STORE, Key=f"{store.prefix}{key}", Body=key.encode())
        raw = store.list("")
        assert len(raw.objects) == 25  # the server truncates silently ...
        listed = [info.key for info in store.iter_all()]
        assert listed == sorted(keys)  # ... the client does not
        flat = sorted(k for k in keys if k.startswith("flat/"))
        assert [info.key for info in store.iter_all("flat/")] == flat
    finally:
        emulator.stop()


def test_cid_mismatch_on_read_is_an_error(
    basin_emulator: BasinEmulator, moto_endpoint: str, tmp_path: Path
) -> None:
    # S3: an object written by a raw client whose declared cid does not match its bytes
    s3 = make_s3_store(moto_endpoint)
    good = s3.put("ok.bin", b"good bytes")
    s3.client.put_object(Bucket=s3.bucket, Key="bad.bin", Body=b"rotten bytes", Metadata={"cid": good.cid})
    with pytest.raises(IntegrityError, match="does not match its CID"):
        s3.get("bad.bin")
    assert s3.get("ok.bin") == b"good bytes"
    # local: bit rot on disk (size and mtime kept) is caught against the recorded CID
    local = LocalStore(tmp_path / "local")
    local.put("a.bin", b"0123456789")
    path = tmp_path / "local" / "a.bin"
    stat = path.stat()
    path.write_bytes(b"0123456780")
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(IntegrityError):
        local.get("a.bin")
    # Basin: the emulator itself refuses a put whose declared cid does not match (400 BadDigest)
    basin = make_basin_store(basin_emulator)
    client = s3_client(basin_emulator.endpoint)
    with pytest.raises(Exception, match="BadDigest"):
        client.put_object(Bucket=BASIN_STORE, Key=f"{basin.prefix}x", Body=b"abc", Metadata={"cid": good.cid})


def test_object_over_the_size_limit_gets_a_clear_message(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "small", max_object_size=1 << 20)
    try:
        store = make_basin_store(emulator)
        with pytest.raises(StorageError, match="too large") as info:
            store.put("big.bin", b"\0" * (2 << 20))
        assert "1 GiB" in (info.value.hint or "")
        assert store.head("big.bin") is None
    finally:
        emulator.stop()


def test_open_and_ensure_store_urls(
    basin_env: BasinEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"basin://{BASIN_STORE}/runs/1")
    store.put("a.json", json.dumps({"x": 1}).encode())
    assert json.loads(open_store(f"basin://{BASIN_STORE}/runs").get("1/a.json")) == {"x": 1}
    assert open_store("basin:///runs/1").get("a.json")  # empty store name: MODELOPSX_BASIN_STORE
    fresh = ensure_store("basin://0x00000000000000000000000000000000000000aa.fresh/p")
    fresh.put("k", b"v")
    assert ensure_store("basin://0x00000000000000000000000000000000000000aa.fresh/p").get("k") == b"v"
    local = ensure_store(tmp_path / "made" / "here")
    assert (tmp_path / "made" / "here").is_dir() and isinstance(local, LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/made"), LocalStore)
    with pytest.raises(StorageError, match="unknown store URL"):
        open_store("ftp://x/y")
