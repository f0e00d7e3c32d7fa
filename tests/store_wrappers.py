"""A pass-through ObjectStore for tests that observe or perturb a real store's traffic."""

from __future__ import annotations

from collections.abc import Iterator

from modelopsx.storage.base import Listing, ObjectInfo, ObjectStore


class PassThroughStore(ObjectStore):
    """Forwards every call to `inner`; subclasses override only what they watch or change."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self.inner.put(key, data, metadata)

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        return self.inner.put_if_absent(key, data, metadata)

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        return self.inner.get(key, byte_range)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        return self.inner.list(prefix, delimiter)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.iter_all(prefix)
