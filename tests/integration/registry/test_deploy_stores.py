from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.registry.deploy import deploy_model, highest_complete_version, serving_versions
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir, serving_files, source_files


@pytest.mark.parametrize("serving", ["s3_serving", "gs_serving", "basin_serving"])
def test_deploy_to_object_stores(serving: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    uri = request.getfixturevalue(serving)
    model = fake_model_dir(tmp_path, 4)
    assert deploy_model(model, uri, "det", 1) == f"{uri}/det/1"
    store = open_store(uri)
    store.put("det/2/variables/variables.index", b"partial")  # an interrupted copy of another version
    assert serving_files(store, "det", 1) == source_files(model)
    assert serving_versions(store, "det") == {1: True, 2: False}
    assert highest_complete_version(uri, "det") == 1
    deploy_model(model, uri, "det", 1)  # idempotent
    assert serving_files(store, "det", 1) == source_files(model)
