"""Which store holds the registry, for every command that reads or writes it."""

from __future__ import annotations

from modelopsx.settings import registry_store_url
from modelopsx.storage.base import ObjectStore


def default_store_url() -> str:
    return registry_store_url()


def open_registry_store(store_url: str | None) -> ObjectStore:
    """The registry's store; a basin:// store with no endpoint configured uses the local store of
    `make run` (served in-process) when nothing answers on the default endpoint."""
    from modelopsx.storage.stores import open_store

    url = store_url or default_store_url()
    if url.startswith("basin://"):
        from modelopsx.basin.local import use_local_basin_if_needed

        use_local_basin_if_needed()
    return open_store(url)
