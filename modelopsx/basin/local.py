"""The local store `make run` leaves behind (`.modelopsx/basin`), reachable after the run has ended.

`make run` serves Basin from an emulator that lives only as long as the run. Afterwards, with no endpoint
configured and nothing answering on the default one, registry and dataset commands serve that folder
in-process for their own duration. Tools in other processes (`dvc pull`) need a lasting server:
`make basin` (= `modelopsx basin serve --root .modelopsx/basin`) on the default endpoint.

One process serves a root at a time. When another one holds the folder (a `make run` in progress, or
`make basin` on another port), commands use that server if they can sign for it, else name the holder.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import TYPE_CHECKING

from modelopsx.errors import StorageError
from modelopsx.settings import DEFAULT_BASIN_ENDPOINT, ENV_PREFIX, env, state_dir

if TYPE_CHECKING:
    from modelopsx.basin.root_lock import RootInUseError

SERVE_COMMAND = "make basin"
# The keys of the emulator `make run` embeds; they exist only on loopback, so other commands may use them.
LOCAL_ACCESS_KEY = "modelopsx-local"
LOCAL_SECRET_KEY = "modelopsx-local-secret"
_in_process_endpoint: str | None = None


def _default_answers(timeout: float = 0.3) -> bool:
    from modelopsx.netcheck import connect_error, http_host_port

    address = http_host_port(DEFAULT_BASIN_ENDPOINT)
    return address is not None and connect_error(*address, timeout=timeout) is None


def serve_command() -> str:
    return f"{SERVE_COMMAND}   (or: modelopsx basin serve --root {state_dir() / 'basin'})"


def use_local_basin_if_needed(quiet: bool = False) -> str | None:
    """Serve the local store in-process when no Basin endpoint is configured and none answers on the default
    one; returns the endpoint then used, or None when nothing had to be done."""
    global _in_process_endpoint
    if _in_process_endpoint is not None or env("BASIN_ENDPOINT") or _default_answers():
        return _in_process_endpoint
    root = state_dir() / "basin"
    if not root.is_dir():
        raise StorageError(
            f"no Basin endpoint is configured (MODELOPSX_BASIN_ENDPOINT), nothing answers on "
            f"{DEFAULT_BASIN_ENDPOINT}, and there is no local store in {root}",
            hint="run `make run` in the project folder first (it creates .modelopsx/basin), start a Basin "
            "emulator (`modelopsx basin serve --root DIR`), or set MODELOPSX_BASIN_ENDPOINT",
        )
    from modelopsx.basin.root_lock import RootInUseError
    from modelopsx.basin.server import BasinEmulator

    try:
        emulator = BasinEmulator(root)
    except RootInUseError as busy:
        _in_process_endpoint = _use_the_holder(busy, quiet)
        return _in_process_endpoint
    emulator.start()
    atexit.register(emulator.stop)
    # Served without keys on loopback, like `make basin`; the process's clients then send unsigned requests.
    _point_clients_at(emulator.endpoint, keys=None)
    _in_process_endpoint = emulator.endpoint
    if not quiet:
        print(
            f"note: nothing answers on {DEFAULT_BASIN_ENDPOINT}; using the local store {root} in-process "
            f"(to serve it to dvc and other tools: {SERVE_COMMAND})",
            file=sys.stderr,
            flush=True,
        )
        if emulator.quarantine.entries:
            print(f"warning: {emulator.quarantine.summary()}", file=sys.stderr, flush=True)
    return _in_process_endpoint


def _point_clients_at(endpoint: str, keys: tuple[str, str] | None) -> None:
    for name in ("BASIN_ACCESS_KEY", "BASIN_SECRET_KEY"):
        os.environ.pop(ENV_PREFIX + name, None)
    if keys is not None:
        os.environ[ENV_PREFIX + "BASIN_ACCESS_KEY"], os.environ[ENV_PREFIX + "BASIN_SECRET_KEY"] = keys
    os.environ[ENV_PREFIX + "BASIN_ENDPOINT"] = endpoint


def _use_the_holder(busy: RootInUseError, quiet: bool) -> str:
    """The endpoint of the process that serves the local store, when this one can sign for it."""
    from modelopsx.netcheck import connect_error, http_host_port

    holder = busy.holder
    described = f"another process ({holder.describe()})"
    address = http_host_port(holder.endpoint) if holder.endpoint else None
    if holder.endpoint is None or address is None or connect_error(*address, timeout=1.0) is not None:
        stop = f"stop it (kill {holder.pid})" if holder.pid is not None else "stop it"
        raise StorageError(
            f"the local store {busy.root} is held by {described}, which does not answer",
            hint=f"wait for it to finish starting, or {stop}",
        ) from None
    if holder.auth == "none":
        keys = None
    elif holder.auth == "sigv4" and holder.access_key == LOCAL_ACCESS_KEY:
        keys = (LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)  # a `make run` in progress
    else:
        raise StorageError(
            f"the local store {busy.root} is served by {described} with keys this command does not know",
            hint=f"set MODELOPSX_BASIN_ENDPOINT={holder.endpoint} and its keys (MODELOPSX_BASIN_ACCESS_KEY, "
            "MODELOPSX_BASIN_SECRET_KEY), or stop it",
        ) from None
    _point_clients_at(holder.endpoint, keys)
    if not quiet:
        print(
            f"note: using the Basin emulator of {described}, which serves the local store {busy.root}",
            file=sys.stderr,
            flush=True,
        )
    return holder.endpoint


def endpoint_for_dvc() -> str:
    """The endpoint to write into a DVC remote: the configured one, else the default that `make basin`
    serves (never the in-process emulator's port, which is gone when the command ends)."""
    configured = env("BASIN_ENDPOINT")
    if configured and configured != _in_process_endpoint:
        return configured
    return DEFAULT_BASIN_ENDPOINT
