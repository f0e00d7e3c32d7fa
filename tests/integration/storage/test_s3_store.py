"""S3 specifics on moto's server: paginated listings are complete; errors keep their types."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from modelopsx.errors import NotFoundError
from modelopsx.storage.s3 import S3Store, make_s3_client
from tests.integration.storage.conftest import S3_KEY, S3_SECRET, make_s3_store


def test_listing_follows_continuation_tokens(moto_endpoint: str) -> None:
    store = make_s3_store(moto_endpoint, "pre")
    keys = [f"k/{i:05d}" for i in range(1005)]  # S3 pages hold 1,000 keys

    def put(key: str) -> None:
        store.client.put_object(Bucket=store.bucket, Key=f"pre/{key}", Body=b"x")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    assert [info.key for info in store.iter_all()] == keys
    assert len(store.list("k/").objects) == len(keys)


def test_special_characters_in_keys_survive_listing(moto_endpoint: str) -> None:
    store = make_s3_store(moto_endpoint)
    keys = ["a b/c+d.txt", "ünï/ç%20x", "q?x=1&y", "plain"]
    for key in keys:
        store.put(key, key.encode())
    assert sorted(info.key for info in store.iter_all()) == sorted(keys)
    assert sorted(store.list("", delimiter="/").prefixes) == ["a b/", "ünï/"]


def test_missing_bucket_is_not_found(moto_endpoint: str) -> None:
    client = make_s3_client(moto_endpoint, S3_KEY, S3_SECRET)
    store = S3Store(client, "no-such-bucket-here", endpoint=moto_endpoint)
    with pytest.raises(NotFoundError, match="does not exist"):
        store.list("")
    assert not store.bucket_exists()
