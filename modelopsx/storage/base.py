"""The object-store interface shared by local paths, s3://, gs:// and basin:// stores.

Stores are addressed by URL; keys are `/`-separated relative paths (no leading `/`, no `..`). Every store
offers put-if-absent, the primitive that the registry's append-only log and immutable Basin objects build on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from modelopsx.errors import StorageError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    cid: str | None = None  # BLAKE3 CIDv1 where the store records one
    etag: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Listing:
    objects: list[ObjectInfo]
    prefixes: list[str]  # common prefixes when a delimiter was given


def check_key(key: str) -> str:
    """Reject keys that could escape a prefix or mean different things on different stores."""
    if not key or key.startswith("/") or "\\" in key:
        raise StorageError(f"invalid object key {key!r}", hint="keys are relative paths like 'a/b.json'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(
            f"invalid object key {key!r}: empty, '.' or '..' path segment",
            hint="keys are relative paths without '..'",
        )
    return key


class ObjectStore(ABC):
    """A flat key space with immutable-friendly semantics."""

    url: str

    @abstractmethod
    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        """Write an object. Stores with immutable keys (Basin) raise KeyExistsError on re-put."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        """Write an object only if the key does not exist; raise KeyExistsError otherwise (atomic)."""

    @abstractmethod
    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """Read an object, or the inclusive byte range [start, end]. Missing keys raise NotFoundError."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and metadata of an object, or None if it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "", delimiter: str | None = None) -> Listing:
        """Objects under a prefix. Order is unspecified; callers sort what they need."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; a missing key raises NotFoundError."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def iter_all(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under a prefix; stores with a list cap override this to shard prefixes."""
        yield from self.list(prefix).objects
