"""Reusable Basin emulator fixtures and helpers for every area's tests.

Loaded for the whole suite through `pytest_plugins` in tests/conftest.py, so tests just name the fixtures:

    def test_something(basin_emulator, basin_s3):           # started emulator (keys checked) + boto3 client
        basin_s3.put_object(Bucket=BASIN_STORE, Key="a", Body=b"x")

    def test_cli(basin_env):                                 # MODELOPSX_BASIN_* env vars point at it
        ...

Plain helpers (`start_emulator`, `s3_client`) serve tests that need other settings (faults, caps, read-only).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelopsx.basin.server import BasinEmulator
from modelopsx.settings import DEFAULT_STORE

BASIN_STORE = DEFAULT_STORE  # "0x0000000000000000000000000000000000000001.modelopsx"
BASIN_ACCESS_KEY = "basin-test-access"
BASIN_SECRET_KEY = "basin-test-secret-do-not-print"


def start_emulator(root: Path, create_store: str | None = BASIN_STORE, **kwargs: Any) -> BasinEmulator:
    """Start an emulator on a free loopback port (keys default to the test keys); caller stops it."""
    kwargs.setdefault("access_key", BASIN_ACCESS_KEY)
    kwargs.setdefault("secret_key", BASIN_SECRET_KEY)
    emulator = BasinEmulator(root, port=0, **kwargs)
    if create_store:
        emulator.create_store(create_store)
    return emulator.start()


def s3_client(
    endpoint: str,
    access_key: str = BASIN_ACCESS_KEY,
    secret_key: str = BASIN_SECRET_KEY,
    max_attempts: int | None = None,
    **config: Any,
) -> Any:
    """A raw boto3 S3 client for the emulator: path-style, us-east-1, short timeouts."""
    import boto3
    from botocore.config import Config

    # max_attempts counts every attempt (botocore's total_max_attempts), so 1 means no retry
    retries = {"total_max_attempts": max_attempts, "mode": "standard"} if max_attempts is not None else None
    s3_options = {"addressing_style": "path", **config.pop("s3", {})}
    cfg = Config(s3=s3_options, connect_timeout=5, read_timeout=30, retries=retries, **config)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=cfg,
    )


@pytest.fixture
def basin_emulator(tmp_path: Path) -> Iterator[BasinEmulator]:
    """A running emulator with SigV4 keys and the default store created; data under tmp_path/basin."""
    emulator = start_emulator(tmp_path / "basin")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def basin_s3(basin_emulator: BasinEmulator) -> Any:
    """boto3 client signed with the emulator's keys."""
    return s3_client(basin_emulator.endpoint)


@pytest.fixture
def basin_env(basin_emulator: BasinEmulator, monkeypatch: pytest.MonkeyPatch) -> BasinEmulator:
    """MODELOPSX_BASIN_{ENDPOINT,ACCESS_KEY,SECRET_KEY,STORE} set for the emulator (for settings / CLIs)."""
    monkeypatch.setenv("MODELOPSX_BASIN_ENDPOINT", basin_emulator.endpoint)
    monkeypatch.setenv("MODELOPSX_BASIN_ACCESS_KEY", BASIN_ACCESS_KEY)
    monkeypatch.setenv("MODELOPSX_BASIN_SECRET_KEY", BASIN_SECRET_KEY)
    monkeypatch.setenv("MODELOPSX_BASIN_STORE", BASIN_STORE)
    return basin_emulator
