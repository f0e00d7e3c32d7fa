"""Registered versions and the champion as cached local folders (a real local store, real DVC layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.errors import ModelError, NotFoundError
from modelopsx.registry.champion import promote_model
from modelopsx.registry.log import Registry
from modelopsx.registry.model_cache import cached_champion, cached_version, parse_reference
from modelopsx.registry.models import register_model
from modelopsx.storage.stores import open_store


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path / "cache"))
    return Registry(open_store(str(tmp_path / "store")))


def register(registry: Registry, tmp_path: Path, content: str) -> int:
    model_dir = tmp_path / f"model-{content}"
    model_dir.mkdir()
    (model_dir / "model.json").write_text('{"score_threshold": 0.4}')
    (model_dir / "model.keras").write_text(content)
    record = register_model(registry, "det", model_dir, registry.store, {"f1": 0.5})
    return int(record["seq"])


def test_references_name_a_version() -> None:
    assert parse_reference("pedestrian-detector@v3") == ("pedestrian-detector", 3)
    assert parse_reference("det@12") == ("det", 12)
    assert parse_reference("hog") is None and parse_reference("det@latest") is None
    assert parse_reference("some/folder") is None


def test_a_version_is_fetched_once_then_served_from_the_cache(registry: Registry, tmp_path: Path) -> None:
    register(registry, tmp_path, "weights one")
    version = register(registry, tmp_path, "weights two")
    first = cached_version(registry, "det", version)
    assert first.fetched and (first.path / "model.keras").read_text() == "weights two"
    assert first.path.is_relative_to(tmp_path / "cache" / "models" / "det")
    again = cached_version(registry, "det", version)
    assert again.path == first.path and not again.fetched
    assert not [p for p in first.path.parent.iterdir() if ".partial" in p.name]  # nothing half-written left


def test_an_unknown_version_names_the_existing_ones(registry: Registry, tmp_path: Path) -> None:
    register(registry, tmp_path, "weights")
    with pytest.raises(NotFoundError, match="existing versions: 1"):
        cached_version(registry, "det", 7)


def test_the_champion_is_the_promoted_version(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no champion yet") as error:
        cached_champion(registry, "det")
    assert "--model NAME@vN" in (error.value.hint or "")
    register(registry, tmp_path, "first")
    register(registry, tmp_path, "second")
    promote_model(registry, "det", 1, "test")
    champion = cached_champion(registry, "det")
    assert champion.version == 1 and champion.is_champion
    assert (champion.path / "model.keras").read_text() == "first"
