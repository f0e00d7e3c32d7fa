"""The environment variables the project reads, each read in modelopsx.settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx import settings


def test_the_cache_folder_follows_modelopsx_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", "")  # empty counts as unset
    assert settings.cache_dir() == tmp_path / "xdg" / "modelopsx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "modelopsx"


def test_every_cache_lives_in_the_one_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from modelopsx.data import tfdata
    from modelopsx.model import pretrained
    from modelopsx.registry import model_cache
    from modelopsx.storage.hashcache import HashCache

    monkeypatch.delenv("MODELOPSX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = tmp_path / "modelopsx"
    assert tfdata.default_cache_dir() == root / "tfrecords"  # XDG_CACHE_HOME counts for the shards too
    assert pretrained.default_cache_dir() == root / "weights"
    assert model_cache.models_cache() == root / "models"
    assert HashCache().path == root / "cids.sqlite"


def test_the_registry_store_and_the_git_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPSX_BASIN_STORE", "bucket")
    monkeypatch.delenv("MODELOPSX_REGISTRY_URL", raising=False)
    assert settings.registry_store_url() == "basin://bucket"
    monkeypatch.setenv("MODELOPSX_REGISTRY_URL", "s3://other/registry")
    assert settings.registry_store_url() == "s3://other/registry"
    monkeypatch.setenv("MODELOPSX_GIT_COMMIT", "abc123")
    assert settings.git_commit() == "abc123"
    monkeypatch.setenv("MODELOPSX_GIT_COMMIT", "")
    assert settings.git_commit() is None
