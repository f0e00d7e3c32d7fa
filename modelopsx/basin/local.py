"""The local store `make run` leaves behind (`.modelopsx/basin`), reachable after the run has ended.

`make run` serves Basin from an emulator that lives only as long as the run. Afterwards, with no endpoint
configured and nothing answering on the default one, registry and dataset commands serve that folder
in-process for their own duration. Tools in other processes (`dvc pull`) need a lasting server:
`make basin` (= `modelopsx basin serve --root .modelopsx/basin`) on the default endpoint.
"""

from __future__ import annotations

import atexit
import os
import sys

from modelopsx.errors import StorageError
from modelopsx.settings import DEFAULT_BASIN_ENDPOINT, ENV_PREFIX, env, state_dir

SERVE_COMMAND = "make basin"
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
    from modelopsx.basin.server import BasinEmulator

    emulator = BasinEmulator(root).start()
    atexit.register(emulator.stop)
    # Served without keys on loopback, like `make basin`; the process's clients then send unsigned requests.
    for name in ("BASIN_ACCESS_KEY", "BASIN_SECRET_KEY"):
        os.environ.pop(ENV_PREFIX + name, None)
    os.environ[ENV_PREFIX + "BASIN_ENDPOINT"] = emulator.endpoint
    _in_process_endpoint = emulator.endpoint
    if not quiet:
        print(
            f"note: nothing answers on {DEFAULT_BASIN_ENDPOINT}; using the local store {root} in-process "
            f"(to serve it to dvc and other tools: {SERVE_COMMAND})",
            file=sys.stderr,
            flush=True,
        )
    return _in_process_endpoint


def endpoint_for_dvc() -> str:
    """The endpoint to write into a DVC remote: the configured one, else the default that `make basin`
    serves (never the in-process emulator's port, which is gone when the command ends)."""
    configured = env("BASIN_ENDPOINT")
    if configured and configured != _in_process_endpoint:
        return configured
    return DEFAULT_BASIN_ENDPOINT
