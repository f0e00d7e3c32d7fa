"""Basin as a DVC remote: push and pull directory versions in DVC 3's remote layout with DVC's own code.

push: dvc_data builds the directory's objects and its `.dir` manifest into a local staging object DB laid out
exactly like a DVC remote (`files/md5/xx/rest`); the sync engine mirrors it into the store, `.dir` objects
last, so a `.dir` that a reader can see always has all its entries. Any DVC repo whose `s3` remote points at
the same bucket/prefix (with `endpointurl`) can then `dvc pull` the returned hash, and the reverse.
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelopsx.data.paths import relative_name_problem
from modelopsx.errors import IntegrityError, NotFoundError, StorageError, UserError
from modelopsx.settings import BasinSettings
from modelopsx.storage.base import ObjectStore
from modelopsx.storage.retry import RetryPolicy, call_with_retry

REMOTE_NAME = "basin"
OBJECTS_DIR = "files/md5"


def object_key(oid: str) -> str:
    """Where DVC 3 keeps an object in a remote: files/md5/<first two hex>/<rest> (`.dir` kept on the rest)."""
    return f"{OBJECTS_DIR}/{oid[:2]}/{oid[2:]}"


def dvc_file(dir_hash: str, path: str) -> dict[str, Any]:
    """The content of a `.dvc` file that tracks `path` at version `dir_hash` (DVC 3: `hash: md5`, which
    selects the files/md5 layout; without it DVC reads the entry as a DVC 2 `md5-dos2unix` hash)."""
    return {"outs": [{"md5": dir_hash, "path": path, "hash": "md5"}]}


def _local_odb(root: Path) -> Any:
    from dvc_data.hashfile.db.local import LocalHashFileDB
    from dvc_objects.fs import LocalFileSystem

    return LocalHashFileDB(LocalFileSystem(), str(root / OBJECTS_DIR), hash_name="md5", type=["copy"])


def directory_hash(local_dir: Path) -> str:
    """The `.dir` hash DVC gives a directory (what push_directory would return), without uploading."""
    from dvc_data.hashfile.build import build
    from dvc_objects.fs import LocalFileSystem

    with tempfile.TemporaryDirectory(prefix="modelopsx-dvc-") as tmp:
        _, _, tree = build(_local_odb(Path(tmp)), str(Path(local_dir).resolve()), LocalFileSystem(), "md5")
    return str(tree.hash_info.value)


def push_directory(local_dir: Path, store: ObjectStore, quiet: bool = True) -> str:
    """Upload one version of a directory in DVC's remote layout; return its `.dir` hash ("<md5>.dir")."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.transfer import transfer
    from dvc_objects.fs import LocalFileSystem

    from modelopsx.storage.local import LocalStore
    from modelopsx.storage.sync import sync

    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise UserError(
            f"{local_dir} is not a directory", hint="push_directory takes a folder (a dataset or model)"
        )
    with tempfile.TemporaryDirectory(prefix="modelopsx-dvc-") as tmp:
        odb = _local_odb(Path(tmp))
        staging, _, tree = build(odb, str(local_dir.resolve()), LocalFileSystem(), "md5")
        # copy (never hardlink): DVC write-protects cache files, which must not touch the user's folder
        transfer(staging, odb, {tree.hash_info}, shallow=False, hardlink=False)
        summary = sync(LocalStore(Path(tmp)), store, quiet=quiet, last=lambda key: key.endswith(".dir"))
    if summary.failed:
        raise StorageError(
            f"pushing {local_dir} to {store.url} failed for {summary.failed} objects: "
            f"{summary.failures[0][1]}",
            hint="rerun: objects already pushed are not sent again",
        )
    return str(tree.hash_info.value)


def pull_directory(dir_hash: str, store: ObjectStore, out_dir: Path, quiet: bool = True) -> Path:
    """Fetch the version `dir_hash` and check it out into `out_dir` (absent or empty), every md5 verified."""
    from dvc_data.hashfile.checkout import checkout
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.fs import LocalFileSystem

    if not dir_hash.endswith(".dir"):
        raise UserError(f"{dir_hash!r} is not a DVC directory hash", hint="it looks like '<32 hex>.dir'")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} exists and is not empty", hint="pull into a new or empty folder")
    policy = RetryPolicy()
    with tempfile.TemporaryDirectory(prefix="modelopsx-dvc-") as tmp:
        odb = _local_odb(Path(tmp))

        def fetch(oid: str) -> None:
            def once() -> None:
                data = store.get(object_key(oid))
                digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
                if digest != oid.removesuffix(".dir"):
                    raise IntegrityError(f"DVC object {oid} in {store.url} has md5 {digest}")
                path = Path(odb.oid_to_path(oid))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

            call_with_retry(once, policy)

        try:
            fetch(dir_hash)
        except NotFoundError as exc:
            raise NotFoundError(
                f"no DVC directory {dir_hash} in {store.url}",
                hint="check the hash (registry record `dvc_hash`) and the store URL",
            ) from exc
        tree = Tree.load(odb, HashInfo("md5", dir_hash))
        for key, _, _ in tree:  # a manifest's paths are data: the one path rule keeps them inside out_dir
            problem = relative_name_problem("/".join(key))
            if problem is not None:
                raise IntegrityError(
                    f"DVC directory {dir_hash} in {store.url} lists a file outside its folder: {problem}; "
                    "nothing was written",
                    hint="the manifest was not written by DVC for a folder; do not use this version",
                )
        oids = sorted({hi.value for _, _, hi in tree if hi is not None and hi.value})
        iterator: Any = oids
        with ThreadPoolExecutor(8) as pool:
            if not quiet:
                from tqdm import tqdm

                iterator = tqdm(pool.map(fetch, oids), total=len(oids), desc="pull", unit="file", leave=False)
                list(iterator)
            else:
                list(pool.map(fetch, oids))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        checkout(str(out_dir.resolve()), LocalFileSystem(), tree, odb, quiet=True)
    return out_dir


def default_store_url(settings: BasinSettings | None = None) -> str:
    """The bucket root: where `dataset publish`, the pipeline's basin_sync and the registry keep DVC objects
    (`files/md5/...` beside `registry/`), so a repo with this remote can pull every registered version."""
    settings = settings or BasinSettings.from_env()
    return f"basin://{settings.store}"


def remote_config(store_url: str, endpoint: str) -> dict:
    """The DVC remote that reads what push_directory wrote: an `s3` remote with Basin's `endpointurl`."""
    parts = urlsplit(store_url)
    if parts.scheme not in ("basin", "s3") or not parts.netloc:
        raise UserError(f"cannot make a DVC remote of {store_url!r}", hint="use basin://<store>/<prefix>")
    url = f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    settings = BasinSettings.from_env()
    config: dict[str, Any] = {
        "name": REMOTE_NAME,
        "url": url,
        "endpointurl": endpoint,
        "region": settings.region,
    }
    commands = [
        f"dvc remote add -d -f {REMOTE_NAME} {shlex.quote(url)}",
        f"dvc remote modify {REMOTE_NAME} endpointurl {shlex.quote(endpoint)}",
        f"dvc remote modify {REMOTE_NAME} region {settings.region}",
    ]
    local: dict[str, str] = {}
    if settings.access_key and settings.secret_key:
        local = {"access_key_id": settings.access_key, "secret_access_key": settings.secret_key}
        commands += [
            f"dvc remote modify --local {REMOTE_NAME} access_key_id {shlex.quote(settings.access_key)}",
            f'dvc remote modify --local {REMOTE_NAME} secret_access_key "$MODELOPSX_BASIN_SECRET_KEY"',
        ]
    else:
        config["allow_anonymous_login"] = "true"
        commands.append(f"dvc remote modify {REMOTE_NAME} allow_anonymous_login true")
    config["local"] = local
    config["commands"] = commands
    return config


def apply_remote_config(repo: Path, config: dict) -> None:
    """Write `config` into the DVC repo at `repo` as the default remote (credentials only into
    .dvc/config.local), with DVC's own config code: what `dvc remote add -d` / `modify` would write."""
    from dvc.config import Config, ConfigError

    dvc_dir = Path(repo) / ".dvc"
    if not dvc_dir.is_dir():
        raise UserError(f"{repo} is not a DVC repository", hint="run `git init && dvc init` there first")
    name = config["name"]
    shared = {"url": config["url"], "endpointurl": config["endpointurl"], "region": config["region"]}
    if config.get("allow_anonymous_login"):
        shared["allow_anonymous_login"] = "true"
    try:
        dvc_config = Config(dvc_dir=str(dvc_dir))
        with dvc_config.edit("repo") as conf:
            conf["remote"][name] = shared
            conf["core"]["remote"] = name
        if config["local"]:
            with dvc_config.edit("local") as conf:
                conf["remote"].setdefault(name, {}).update(config["local"])
    except ConfigError as exc:
        raise UserError(
            f"cannot write the DVC remote into {dvc_dir}: {exc}",
            hint="check .dvc/config (and .dvc/config.local) for syntax errors",
        ) from None
