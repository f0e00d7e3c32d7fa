"""Settings from environment variables: the project reads every variable of its own here. Each starts with
MODELOPSX_ (see docs/development.md); XDG_CACHE_HOME joins them for the cache folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "MODELOPSX_"
DEFAULT_BASIN_ENDPOINT = "http://127.0.0.1:8014"
DEFAULT_STORE = "0x0000000000000000000000000000000000000001.modelopsx"
# The registry name the pipelines train under, and the model `modelopsx predict` uses by default.
DEFAULT_MODEL_NAME = "pedestrian-detector"


def variable(name: str, default: str | None = None) -> str | None:
    """Read the variable `name` (its full name); empty strings count as unset."""
    value = os.environ.get(name)
    return value if value else default


def env(name: str, default: str | None = None) -> str | None:
    """Read MODELOPSX_<name>; empty strings count as unset."""
    return variable(ENV_PREFIX + name, default)


def cache_dir() -> Path:
    """The one cache folder (TFRecord shards, file hashes, pretrained weights, fetched models):
    $MODELOPSX_CACHE_DIR, else $XDG_CACHE_HOME/modelopsx, else ~/.cache/modelopsx."""
    explicit = env("CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(variable("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelopsx"


def git_commit() -> str | None:
    """The code's git commit when the image names it (MODELOPSX_GIT_COMMIT)."""
    return env("GIT_COMMIT")


@dataclass(frozen=True)
class BasinSettings:
    endpoint: str
    access_key: str | None
    secret_key: str | None
    store: str
    region: str = "us-east-1"

    @classmethod
    def from_env(cls) -> BasinSettings:
        return cls(
            endpoint=env("BASIN_ENDPOINT", DEFAULT_BASIN_ENDPOINT) or DEFAULT_BASIN_ENDPOINT,
            access_key=env("BASIN_ACCESS_KEY"),
            secret_key=env("BASIN_SECRET_KEY"),
            store=env("BASIN_STORE", DEFAULT_STORE) or DEFAULT_STORE,
        )


def registry_store_url() -> str:
    """The store that holds the registry (records and the DVC objects they name), for the commands and the
    pipeline stages alike: $MODELOPSX_REGISTRY_URL, else the Basin store."""
    return env("REGISTRY_URL") or f"basin://{BasinSettings.from_env().store}"


# The Kubernetes Secret holding Basin credentials, and how its keys map to the variables BasinSettings reads.
# manifests/ create a Secret with exactly these names; the pipelines and TrainJobs mount it.
BASIN_SECRET = "modelopsx-basin"
BASIN_SECRET_ENV = {
    "access-key": ENV_PREFIX + "BASIN_ACCESS_KEY",
    "secret-key": ENV_PREFIX + "BASIN_SECRET_KEY",
    "endpoint": ENV_PREFIX + "BASIN_ENDPOINT",
    "store": ENV_PREFIX + "BASIN_STORE",
}


def state_dir() -> Path:
    """Where local runs keep state that must survive between runs (emulator data, reports)."""
    return Path(env("HOME", ".modelopsx") or ".modelopsx").resolve()


# Help of every command's --store option that reads or writes the registry.
REGISTRY_STORE_HELP = (
    "Registry store URL (basin://STORE, s3://, gs:// or a local path); default $MODELOPSX_REGISTRY_URL "
    "or basin://$MODELOPSX_BASIN_STORE."
)


# Container images the KFP components run in (read when the component modules are imported: the decorator
# bakes them into the compiled YAML, so `modelopsx compile` with MODELOPSX_IMAGE set writes pipelines for it).
DEFAULT_IMAGE = "ghcr.io/modelopsx/modelopsx:0.1.0"
MODELOPSX_IMAGE = os.environ.get("MODELOPSX_IMAGE") or DEFAULT_IMAGE
MODELOPSX_GPU_IMAGE = os.environ.get("MODELOPSX_GPU_IMAGE") or f"{MODELOPSX_IMAGE}-gpu"
