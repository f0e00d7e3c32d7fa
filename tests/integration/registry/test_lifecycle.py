"""Datasets, models, promotions, rollback and serving repair against a local store and the Basin emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.synth import generate_synthetic
from modelopsx.errors import NotFoundError
from modelopsx.registry.champion import champion, promote_model, rollback
from modelopsx.registry.datasets import publish_dataset, pull_dataset, resolve_dataset
from modelopsx.registry.deploy import highest_complete_version, repair_serving
from modelopsx.registry.log import Registry, RegistryError
from modelopsx.registry.models import register_model
from modelopsx.registry.records import Lineage
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir, serving_files, source_files


def test_dataset_publish_resolve_pull(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    first = generate_synthetic(tmp_path / "v1", n_images=4, seed=0, size=(96, 64)).root
    second = generate_synthetic(tmp_path / "v2", n_images=5, seed=1, size=(96, 64)).root
    v1 = publish_dataset(first, "street", store)
    assert v1["version"] == 1 and not v1["unchanged"] and v1["dvc_hash"].endswith(".dir")
    assert v1["counts"]["images"] == 4 and v1["content_hash"] == dataset_version_hash(first)
    assert v1["code"]["modelopsx"]
    again = publish_dataset(first, "street", store)
    assert again["unchanged"] and again["version"] == 1
    assert publish_dataset(second, "street", store)["version"] == 2
    registry = Registry(store)
    assert resolve_dataset(registry, "street")["version"] == 2
    assert resolve_dataset(registry, "street", "1")["dvc_hash"] == v1["dvc_hash"]
    with pytest.raises(NotFoundError) as unknown:
        resolve_dataset(registry, "street", "9")
    assert "versions: 1, 2" in unknown.value.message
    with pytest.raises(NotFoundError) as missing:
        resolve_dataset(registry, "nope")
    assert "known datasets: street" in missing.value.message
    out = pull_dataset(store, "street", 1, tmp_path / "pulled")
    assert dataset_version_hash(out) == v1["content_hash"]


def register(registry: Registry, tmp_path: Path, seed: int, recall: float) -> dict:
    model_dir = fake_model_dir(tmp_path, seed)
    lineage = Lineage(
        dataset_name="street", dataset_version=1, split_hashes={"test": "t1"}, pipeline_run_id="r1"
    )
    return register_model(
        registry, "det", model_dir, registry.store, {"recall": recall}, test_split_hash="t1", lineage=lineage
    )


def test_promote_rollback_and_serving_versions(store_url: str, tmp_path: Path) -> None:
    registry = Registry(open_store(store_url))
    serving = str(tmp_path / "serving")
    m1, m2 = register(registry, tmp_path, 1, 0.5), register(registry, tmp_path, 2, 0.6)
    assert (m1["seq"], m2["seq"]) == (1, 2)
    assert m1["parameters"] == {"seed": 1} and m1["score_threshold"] == 0.5
    assert set(m1["cids"]) == {
        "model.json",
        "saved_model/saved_model.pb",
        "saved_model/fingerprint.pb",
        "saved_model/variables/variables.index",
        "saved_model/assets/vocab.txt",
        "saved_model/variables/variables.data-00000-of-00001",
    }
    assert m1["lineage"]["pipeline_run_id"] == "r1" and m1["lineage"]["code"]["modelopsx"]
    assert champion(registry, "det") is None

    p1 = promote_model(registry, "det", 1, "first model", serving_uri=serving, model_dir=tmp_path / "model-1")
    p2 = promote_model(registry, "det", 2, "better recall", serving_uri=serving)  # fetched from the store
    assert (p1["seq"], p2["seq"]) == (1, 2) and p2["previous_model_version"] == 1
    current = champion(registry, "det")
    assert current is not None and current["seq"] == 2 and current["metrics"] == {"recall": 0.6}
    assert highest_complete_version(serving, "det") == 2
    assert serving_files(open_store(serving), "det", 2) == source_files(tmp_path / "model-2")

    back = rollback(registry, "det", 1, "recall regression in production", serving)
    assert back["seq"] == 3 and back["action"] == "rollback" and back["model_version"] == 1
    current = champion(registry, "det")
    assert current is not None and current["seq"] == 1 and current["promotion"]["seq"] == 3
    assert highest_complete_version(serving, "det") == 3  # serving has a new highest version
    assert serving_files(open_store(serving), "det", 3) == source_files(tmp_path / "model-1")
    assert repair_serving(registry, serving, "det") is None  # already consistent

    with pytest.raises(RegistryError, match="already the champion"):
        rollback(registry, "det", 1, "again", serving)
    with pytest.raises(NotFoundError, match="existing versions: 1, 2"):
        rollback(registry, "det", 7, "no such model", serving)
    assert [p["seq"] for p in registry.records("promotions", "det")] == [1, 2, 3]
