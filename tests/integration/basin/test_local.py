"""After `make run` the local store is reachable: registry commands serve `.modelopsx/basin` in-process when
no endpoint is configured and nothing answers on the default one; else they say what to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.netcheck import connect_error
from modelopsx.registry.log import Registry
from modelopsx.settings import DEFAULT_STORE
from tests.fixtures_basin import start_emulator

pytestmark = pytest.mark.skipif(
    connect_error("127.0.0.1", 8014, 0.3) is None,
    reason="something already answers on the default Basin endpoint",
)


def modelopsx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPSX_BASIN_")}
    env |= {"MODELOPSX_HOME": str(cwd / ".modelopsx"), "COLUMNS": "300"}
    env.pop("MODELOPSX_REGISTRY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_registry_commands_use_the_local_store_of_make_run(tmp_path: Path) -> None:
    # what `make run` leaves: an emulator root with the default store and a registry record in it
    emulator = start_emulator(
        tmp_path / ".modelopsx" / "basin",
        create_store=DEFAULT_STORE,
        access_key="modelopsx-local",
        secret_key="modelopsx-local-secret",
    )
    try:
        from modelopsx.settings import BasinSettings
        from modelopsx.storage.basin_store import BasinStore

        settings = BasinSettings(
            emulator.endpoint, "modelopsx-local", "modelopsx-local-secret", DEFAULT_STORE
        )
        Registry(BasinStore.from_settings(settings=settings)).append(
            "datasets", "synthetic", {"dvc_hash": "x.dir", "counts": {"images": 3}}, seq_fields=("version",)
        )
    finally:
        emulator.stop()
    done = modelopsx("dataset", "list", "synthetic", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"version": 1' in done.stdout and "make basin" in done.stderr


def test_without_a_local_store_the_message_says_what_to_start(tmp_path: Path) -> None:
    done = modelopsx("registry", "list", "models", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no local store" in done.stderr and "make run" in done.stderr
    assert not (tmp_path / ".modelopsx").exists()


def _record_a_dataset(emulator, access_key: str, secret_key: str) -> None:
    from modelopsx.settings import BasinSettings
    from modelopsx.storage.basin_store import BasinStore

    settings = BasinSettings(emulator.endpoint, access_key, secret_key, DEFAULT_STORE)
    Registry(BasinStore.from_settings(settings=settings)).append(
        "datasets", "synthetic", {"dvc_hash": "x.dir", "counts": {"images": 3}}, seq_fields=("version",)
    )


def test_while_a_run_holds_the_local_store_commands_use_its_server(tmp_path: Path) -> None:
    from modelopsx.basin.local import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

    # a `make run` in progress: its emulator holds .modelopsx/basin, with the run's loopback keys
    emulator = start_emulator(
        tmp_path / ".modelopsx" / "basin",
        create_store=DEFAULT_STORE,
        access_key=LOCAL_ACCESS_KEY,
        secret_key=LOCAL_SECRET_KEY,
    )
    try:
        _record_a_dataset(emulator, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
        served_before = emulator.stats.requests
        done = modelopsx("dataset", "list", "synthetic", "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert '"version": 1' in done.stdout
        err = " ".join(done.stderr.split())
        assert f"pid {os.getpid()}, serving {emulator.endpoint}" in err, err
        assert emulator.stats.requests > served_before  # the command asked the run's server
    finally:
        emulator.stop()


def test_a_server_with_other_keys_holding_the_local_store_is_named(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / ".modelopsx" / "basin", create_store=DEFAULT_STORE)  # test keys
    try:
        done = modelopsx("registry", "list", "models", cwd=tmp_path)
        err = " ".join(done.stderr.split())
        assert done.returncode == 2 and "Traceback" not in err, err
        assert f"pid {os.getpid()}, serving {emulator.endpoint}" in err
        assert "keys this command does not know" in err
        assert f"MODELOPSX_BASIN_ENDPOINT={emulator.endpoint}" in err
    finally:
        emulator.stop()
