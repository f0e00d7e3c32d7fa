"""A deploy killed (SIGKILL) between the promotion record and the copy, or in the middle of the copy, leaves
nothing a model server would load; the next run's `repair_serving` catches serving up with the registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelopsx.registry.champion import champion, promote_model
from modelopsx.registry.deploy import highest_complete_version, repair_serving, serving_versions
from modelopsx.registry.log import Registry
from modelopsx.registry.models import register_model
from modelopsx.storage.stores import open_store
from tests.integration.registry.fixtures import store_url  # noqa: F401  (registry on local dir and Basin)
from tests.integration.registry.helpers import real_model_dir, serving_files, source_files

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child process that dies by SIGKILL at the chosen point of promote + deploy.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from modelopsx.registry.champion import promote_model
    from modelopsx.registry.log import Registry
    from modelopsx.storage.stores import open_store
    from tests.unit.registry.test_deploy import RecordingStore

    store_url, serving, model_dir, point = sys.argv[1:5]
    registry = Registry(open_store(store_url))

    def die(*_args):
        os.kill(os.getpid(), signal.SIGKILL)

    class DyingStore(RecordingStore):
        def put_if_absent(self, key, data, metadata=None):
            if len(self.order) == 2:  # two files copied, the third write never happens
                die()
            return super().put_if_absent(key, data, metadata)

    if point == "mid-copy":
        import modelopsx.registry.deploy as deploy
        original = deploy.open_serving_store
        deploy.open_serving_store = lambda uri: DyingStore(original(uri))
    promote_model(registry, "det", 2, "challenger wins", serving_uri=serving, model_dir=Path(model_dir),
                  after_record=die if point == "after-record" else None)
    sys.exit(3)  # not reached: the process is killed first
""")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return real_model_dir(root, 1.0), real_model_dir(root, 2.0)


def load_and_run(version_dir: Path) -> float:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    return float(loaded(tf.ones([1, 64]))[0, 0])


@pytest.mark.parametrize("point", ["after-record", "mid-copy"])
def test_killed_deploy_is_repaired(
    point: str,
    store_url: str,  # noqa: F811
    models: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    registry = Registry(open_store(store_url))
    serving = tmp_path / "serving"
    for model_dir in models:
        register_model(registry, "det", model_dir, registry.store, {"recall": 0.5})
    promote_model(registry, "det", 1, "first", serving_uri=str(serving), model_dir=models[0])
    assert highest_complete_version(str(serving), "det") == 1

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, store_url, str(serving), str(models[1]), point],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    # The registry already names model 2 (promotion 2); serving still serves version 1.
    current = champion(registry, "det")
    assert current is not None and current["seq"] == 2 and current["promotion"]["seq"] == 2
    versions = serving_versions(open_store(str(serving)), "det")
    assert highest_complete_version(str(serving), "det") == 1
    if point == "mid-copy":
        assert versions == {1: True, 2: False}  # a partial version: no saved_model.pb ...
        assert not (serving / "det" / "2" / "saved_model.pb").exists()
        with pytest.raises(Exception):  # noqa: B017  ... so TF cannot load it
            load_and_run(serving / "det" / "2")
    else:
        assert versions == {1: True}

    # The next run detects the lag and repairs it from the registry (model fetched from its DVC remote).
    assert repair_serving(Registry(open_store(store_url)), str(serving), "det") == 2
    assert highest_complete_version(str(serving), "det") == 2
    assert serving_files(open_store(str(serving)), "det", 2) == source_files(models[1])
    assert load_and_run(serving / "det" / "2") == pytest.approx(128.0)  # 64 inputs x weight 2.0
    assert repair_serving(registry, str(serving), "det") is None  # nothing left to do
