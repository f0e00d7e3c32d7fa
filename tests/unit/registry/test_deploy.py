from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.errors import ModelError, StorageError
from modelopsx.registry.deploy import deploy_model, serving_versions
from modelopsx.storage.base import ObjectInfo, ObjectStore
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir, serving_files, source_files
from tests.store_wrappers import PassThroughStore


class RecordingStore(PassThroughStore):
    """A local store that remembers the order of writes."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.order: list[str] = []

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        self.order.append(key)
        return self.inner.put(key, data, metadata)

    def put_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        self.order.append(key)
        return self.inner.put_if_absent(key, data, metadata)


def test_deploy_writes_tf_serving_layout_with_saved_model_pb_last(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path, 1)
    serving = tmp_path / "serving"
    store = RecordingStore(open_store(str(serving)))
    uri = deploy_model(model, str(serving), "det", 3, store=store)
    assert uri == f"{serving}/det/3"
    assert store.order[-1] == "det/3/saved_model.pb" and len(store.order) == 5
    assert serving_files(store, "det", 3) == source_files(model)
    assert (serving / "det" / "3" / "variables" / "variables.index").is_file()
    assert serving_versions(store, "det") == {3: True}


def test_redeploy_is_idempotent_and_finishes_partial_copies(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path, 2)
    serving = str(tmp_path / "serving")
    store = open_store(serving)
    store.put("det/1/fingerprint.pb", (model / "saved_model" / "fingerprint.pb").read_bytes())  # crashed copy
    assert serving_versions(store, "det") == {1: False}
    deploy_model(model, serving, "det", 1)
    deploy_model(model, serving, "det", 1)
    assert serving_versions(store, "det") == {1: True}
    assert serving_files(store, "det", 1) == source_files(model)


def test_deploy_never_overwrites_a_different_model(tmp_path: Path) -> None:
    serving = str(tmp_path / "serving")
    deploy_model(fake_model_dir(tmp_path, 1), serving, "det", 1)
    before = serving_files(open_store(serving), "det", 1)
    with pytest.raises(StorageError, match="already holds a different"):
        deploy_model(fake_model_dir(tmp_path, 2), serving, "det", 1)
    assert serving_files(open_store(serving), "det", 1) == before


def test_deploy_rejects_dirs_without_saved_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no SavedModel"):
        deploy_model(tmp_path / "empty", str(tmp_path / "serving"), "det", 1)
    with pytest.raises(ModelError, match="positive"):
        deploy_model(fake_model_dir(tmp_path, 1), str(tmp_path / "serving"), "det", 0)


def test_deploy_refuses_a_saved_model_folder_that_is_a_link_out_of_the_model(tmp_path: Path) -> None:
    elsewhere = fake_model_dir(tmp_path / "elsewhere", 3) / "saved_model"
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelError, match="saved_model is a symbolic link to .*, which is outside"):
        deploy_model(model, str(tmp_path / "serving"), "det", 1)
    assert not (tmp_path / "serving").exists()
