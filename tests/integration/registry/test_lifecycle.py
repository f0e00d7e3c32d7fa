"""Datasets, models, promotions, rollback and serving repair against a local store and the Basin emulator."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.data.synth import generate_synthetic
from modelopsx.errors import IntegrityError, ModelError, NotFoundError
from modelopsx.registry.champion import PromotionConflictError, champion, promote_model, rollback
from modelopsx.registry.datasets import publish_dataset, pull_dataset, resolve_dataset
from modelopsx.registry.deploy import deploy_model, highest_complete_version, repair_serving
from modelopsx.registry.log import Registry, RegistryError
from modelopsx.registry.models import register_model
from modelopsx.registry.records import Lineage
from modelopsx.storage.base import ObjectInfo, ObjectStore
from modelopsx.storage.dvc_remote import object_key
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir, serving_files, source_files
from tests.store_wrappers import PassThroughStore


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


class RaceBeforePromotion(PassThroughStore):
    """Runs `race` once, right before the first promotion record is written through this store: another
    operator's command that lands between this one's checks and its record."""

    def __init__(self, inner: ObjectStore, race: Callable[[], object]) -> None:
        super().__init__(inner)
        self.race: Callable[[], object] | None = race

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        if key.startswith("registry/promotions/") and self.race is not None:
            race, self.race = self.race, None
            race()
        return self.inner.put_if_absent(key, data, metadata)


@pytest.mark.parametrize("other_target", [1, 3], ids=["same-version", "another-version"])
def test_of_two_concurrent_rollbacks_one_wins_and_the_other_records_nothing(
    store_url: str, tmp_path: Path, other_target: int
) -> None:
    store = open_store(store_url)
    registry = Registry(store)
    for seed in (1, 2, 3):
        register(registry, tmp_path, seed, 0.5)
    promote_model(registry, "det", 1, "first")
    promote_model(registry, "det", 2, "second")

    def other_operator() -> None:
        rollback(Registry(store), "det", other_target, "the other operator")

    with pytest.raises(PromotionConflictError) as exc:
        rollback(Registry(RaceBeforePromotion(store, other_operator)), "det", 1, "this operator")
    assert "another promotion of 'det' was recorded first (promotion 3: rollback" in exc.value.message
    records = Registry(store).records("promotions", "det")
    assert [(r["seq"], r["model_version"], r["reason"]) for r in records] == [
        (1, 1, "first"),
        (2, 2, "second"),
        (3, other_target, "the other operator"),
    ]
    assert records[2]["previous_model_version"] == 2  # never a v1 -> v1 record


def test_a_model_folder_link_or_manifest_path_leading_outside_is_refused(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`variables.txt -> secret` once put the secret into the store and the serving folder (register,
    deploy); a version whose stored manifest names `../../../escape.txt` was written outside at rollback."""
    store = open_store(store_url)
    registry = Registry(store)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    model_dir = fake_model_dir(tmp_path, 5)
    (model_dir / "saved_model" / "variables" / "variables.txt").symlink_to(secret)
    with pytest.raises(
        ModelError, match=r"variables\.txt is a symbolic link to .*secret\.txt, which is outside"
    ):
        register_model(registry, "det", model_dir, store, {"recall": 0.5})
    assert registry.records("models", "det") == [] and not list(store.iter_all("files/"))
    with pytest.raises(ModelError, match="is a symbolic link"):
        deploy_model(model_dir, str(tmp_path / "serving"), "det", 1)
    assert not (tmp_path / "serving").exists()

    register(registry, tmp_path, 1, 0.5)
    promote_model(registry, "det", 1, "first")
    pb = b"saved model"
    for data in (secret.read_bytes(), pb):
        store.put_if_absent(object_key(hashlib.md5(data).hexdigest()), data)
    entries = [
        {"md5": hashlib.md5(secret.read_bytes()).hexdigest(), "relpath": "../../../escape.txt"},
        {"md5": hashlib.md5(pb).hexdigest(), "relpath": "saved_model/saved_model.pb"},
    ]
    manifest = json.dumps(entries).encode()
    dir_hash = hashlib.md5(manifest).hexdigest() + ".dir"
    store.put_if_absent(object_key(dir_hash), manifest)
    registry.append("models", "det", {"dvc_hash": dir_hash, "dvc_remote": store_url}, seq_fields=("version",))
    temp = tmp_path / "temp"  # the rollback's folder: temp/modelopsx-rollback-*/model
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(IntegrityError, match="lists a file outside its folder"):
        rollback(registry, "det", 2, "back to the crafted version")
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("escape.txt"))
    assert [r["model_version"] for r in registry.records("promotions", "det")] == [1]
