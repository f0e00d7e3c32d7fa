"""Basin object stores through its S3-compatible adapter (basin_s3): immutable keys, a capped listing.

Basin answers a listing with at most `list_cap` objects (10,000), unpaginated and unordered. `iter_all` never
trusts a listing that reached the cap: it splits the prefix by '/' and then by next character until every
shard answers below the cap, and returns the union sorted by key.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelopsx.settings import BasinSettings
from modelopsx.storage.base import ObjectInfo
from modelopsx.storage.s3 import S3Store, make_s3_client

BASIN_LIST_CAP = 10_000
_SHARD_WORKERS = 16
_SHARD_CHARS = [chr(c) for c in range(0x20, 0x7F)]  # printable ASCII; characters seen in keys are added


class BasinStore(S3Store):
    scheme = "basin"
    immutable = True

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        access_key: str | None = None,
        list_cap: int = BASIN_LIST_CAP,
    ) -> None:
        super().__init__(client, bucket, prefix, endpoint=endpoint, access_key=access_key)
        self.list_cap: int = list_cap

    @classmethod
    def from_settings(
        cls,
        store: str | None = None,
        prefix: str = "",
        settings: BasinSettings | None = None,
        list_cap: int = BASIN_LIST_CAP,
    ) -> BasinStore:
        settings = settings or BasinSettings.from_env()
        unsigned = not (settings.access_key and settings.secret_key)  # no keys: Basin's read-only mode
        client = make_s3_client(
            settings.endpoint, settings.access_key, settings.secret_key, settings.region, unsigned=unsigned
        )
        return cls(
            client,
            store or settings.store,
            prefix,
            endpoint=settings.endpoint,
            access_key=settings.access_key,
            list_cap=list_cap,
        )

    def credentials_hint(self) -> str:
        return (
            "check MODELOPSX_BASIN_ACCESS_KEY and MODELOPSX_BASIN_SECRET_KEY (they must match the adapter's)"
        )

    def read_only_hint(self) -> str:
        # keys sign requests; writing needs the adapter itself to hold a private key
        return (
            "this Basin adapter runs read-only (started without a private key); write through an adapter "
            "that has one (locally: `modelopsx basin serve` without --read-only)"
        )

    def missing_store_hint(self) -> str:
        return (
            f"create it with `modelopsx basin serve --create-store {self.bucket}` (local emulator), "
            "or check the store address in MODELOPSX_BASIN_STORE (a t2… address or 0x<owner>.<alias>)"
        )

    def endpoint_hint(self) -> str:
        return (
            "start the adapter (locally: `modelopsx basin serve --root DIR`) or point "
            "MODELOPSX_BASIN_ENDPOINT at it"
        )

    def _put(self, key: str, data: bytes, metadata: dict[str, str] | None, if_absent: bool) -> ObjectInfo:
        # Basin keys are immutable natively: a re-put is refused by the server ("key exists").
        return super()._put(key, data, metadata, if_absent=False)

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        found: dict[str, ObjectInfo] = {}
        frontier = [prefix]
        with ThreadPoolExecutor(_SHARD_WORKERS) as pool:  # shards are independent listings
            while frontier:
                expanded = list(pool.map(self._expand, frontier))
                frontier = []
                for objects, shards in expanded:
                    found.update((info.key, info) for info in objects)
                    frontier += shards
        yield from sorted(found.values(), key=lambda info: info.key)

    def _expand(self, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
        """Objects known complete under `prefix`, plus the sub-prefixes still to list."""
        cap = self.list_cap
        listing = self.list(prefix)
        if len(listing.objects) < cap:
            return listing.objects, []
        level = self.list(prefix, delimiter="/")
        if len(level.objects) + len(level.prefixes) < cap:
            return level.objects, [sub for sub in level.prefixes if sub != prefix]
        # One level holds at least the cap: shard by the next character after the prefix.
        seen = {info.key[len(prefix)] for info in listing.objects if len(info.key) > len(prefix)}
        shards = [prefix + char for char in sorted(set(_SHARD_CHARS) | seen)]
        exact = []
        if prefix and not prefix.endswith("/"):  # the key equal to the prefix is in no shard
            info = self.head(prefix)
            if info is not None:
                exact.append(info)
        return exact, shards
