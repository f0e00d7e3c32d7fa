"""The workflow glue that needs no KFP and no training: lineage, compile headers, cron, endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.workflow import stages
from modelopsx.workflow.compile import stable_header
from modelopsx.workflow.submit import cron_for_kfp


def test_lineage_from_dataset_metadata() -> None:
    lineage = stages.lineage_from(
        {
            "dataset_name": "synthetic",
            "dataset_version": "3",
            "dvc_hash": "ab.dir",
            "content_hash": "cd",
            "train_hash": "t",
            "test_hash": "s",
        },
        "run-1",
    )
    assert (lineage.dataset_name, lineage.dataset_version) == ("synthetic", 3)
    assert lineage.dataset_dvc_hash == "ab.dir"
    assert lineage.split_hashes == {"train": "t", "test": "s"} and lineage.pipeline_run_id == "run-1"


def test_cron_and_header_helpers() -> None:
    assert cron_for_kfp("0 3 * * *") == "0 0 3 * * *"
    assert cron_for_kfp("30 0 3 * * *") == "30 0 3 * * *"
    text = "# X\n#    d: dict [Default: {'b': 1.0, 'a': [{'z': 1, 'y': 2}]}]\nbody: {'b': 1}\n"
    expected = "# X\n#    d: dict [Default: {'a': [{'y': 2, 'z': 1}], 'b': 1.0}]\nbody: {'b': 1}\n"
    assert stable_header(text) == expected


def test_unreachable_basin_endpoint_is_named() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Exception, match=f"http://127.0.0.1:{port} is unreachable"):
        stages.require_reachable(f"http://127.0.0.1:{port}")


def test_stages_use_the_commands_registry_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelopsx.registry.store import default_store_url

    monkeypatch.setenv("MODELOPSX_BASIN_STORE", "bucket")
    monkeypatch.delenv("MODELOPSX_REGISTRY_URL", raising=False)
    assert stages.basin_store_url() == default_store_url() == "basin://bucket"
    monkeypatch.setenv("MODELOPSX_REGISTRY_URL", str(tmp_path / "store"))
    assert stages.basin_store_url() == default_store_url() == str(tmp_path / "store")
    registry = stages.open_registry()
    registry.append("datasets", "d", {"note": "here"})
    assert (tmp_path / "store" / "registry" / "datasets" / "d" / "00000001.json").is_file()
