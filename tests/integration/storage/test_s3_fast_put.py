"""Puts go out signed by botocore's signer over a shared urllib3 pool; final refusals map to the same typed
errors as boto3's, anything else takes boto3's path (Basin emulator and moto's S3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from modelopsx.basin.server import BasinEmulator
from modelopsx.errors import KeyExistsError, StorageError
from tests.integration.storage.conftest import make_basin_store, make_s3_store

KEY = "dir/a b+c~é(1).bin"  # needs percent-encoding: the signed path must match what is sent


@contextmanager
def boto3_puts(store: Any) -> Iterator[list[str]]:
    """Every PutObject that went through boto3's client (the fallback), by key."""
    seen: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        seen.append(params["Key"])

    events = store.client.meta.events
    events.register("provide-client-params.s3.PutObject", note)
    try:
        yield seen
    finally:
        events.unregister("provide-client-params.s3.PutObject", note)


@pytest.mark.parametrize("kind", ["basin", "s3"])
def test_put_takes_the_signed_fast_path_and_conflicts_fall_back(
    kind: str, basin_emulator: BasinEmulator, request: pytest.FixtureRequest
) -> None:
    store = (
        make_basin_store(basin_emulator)
        if kind == "basin"
        else make_s3_store(request.getfixturevalue("moto_endpoint"))
    )
    with boto3_puts(store) as via_boto3:
        info = store.put_if_absent(KEY, b"first", {"content-type": "application/json"})
        assert via_boto3 == []  # the fast path carried it
        assert store.get(KEY) == b"first"  # verified against the CID sent as metadata
        head = store.head(KEY)
        assert head is not None and head.cid == info.cid and head.size == 5
        with pytest.raises(KeyExistsError):
            store.put_if_absent(KEY, b"second")
        assert via_boto3 == []  # a final refusal is mapped from the answer, not asked again
    assert store.get(KEY) == b"first"


def test_wrong_secret_falls_back_and_says_access_denied(basin_emulator: BasinEmulator) -> None:
    store = make_basin_store(basin_emulator, secret_key="not-the-right-secret")
    with pytest.raises(StorageError, match="access denied"):
        store.put("x", b"y")
