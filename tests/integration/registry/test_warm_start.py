"""Where training starts: the champion when its architecture matches, else the latest version before there is
a champion, else the configured weights; a champion whose files are gone is a logged fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelopsx.registry.champion import promote_model
from modelopsx.registry.log import Registry
from modelopsx.registry.models import register_model
from modelopsx.registry.warm_start import choose_warm_start
from modelopsx.storage.stores import open_store
from tests.integration.registry.helpers import fake_model_dir

ARCH = {"backbone": "mobilenetv2", "alpha": 0.35, "input_size": [128, 192], "output_stride": 4,
        "neck_channels": 32, "head_channels": 32}  # fmt: skip
CONFIG = {**ARCH, "weights": "imagenet", "epochs": 6}


def register(registry: Registry, tmp_path: Path, seed: int, **params: Any) -> int:
    model_dir = fake_model_dir(tmp_path, seed)
    data = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**data, "params": {**ARCH, **params}}))
    return int(register_model(registry, "det", model_dir, registry.store, {})["seq"])


def test_the_start_follows_the_registry(tmp_path: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    nothing = choose_warm_start(registry, "det", CONFIG, tmp_path / "w0")
    assert (nothing.weights, nothing.label, nothing.model_version) == ("imagenet", "imagenet", None)

    register(registry, tmp_path, 1)
    latest = choose_warm_start(registry, "det", CONFIG, tmp_path / "w1")
    assert latest.label == "det v1 (latest trained version, no champion yet)" and latest.model_version == 1
    assert latest.weights is not None and (Path(latest.weights) / "model.json").is_file()

    register(registry, tmp_path, 2)
    promote_model(registry, "det", 1, "first")
    champion = choose_warm_start(registry, "det", CONFIG, tmp_path / "w2")
    assert champion.label == "det v1 (champion)"  # the champion wins over a later version

    wider = choose_warm_start(registry, "det", {**CONFIG, "neck_channels": 48}, tmp_path / "w3")
    assert (wider.weights, wider.model_version) == ("imagenet", None)
    assert wider.notes == ("det v1 (champion) has another architecture than this training",)
    scratch = choose_warm_start(
        registry, "det", {**CONFIG, "weights": None, "neck_channels": 48}, tmp_path / "w4"
    )
    assert scratch.label == "scratch"


def test_a_champion_whose_files_are_gone_is_a_logged_fallback(tmp_path: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")))
    register(registry, tmp_path, 1)
    promote_model(registry, "det", 1, "first")
    for info in list(registry.store.iter_all("files/md5/")):
        registry.store.delete(info.key)
    start = choose_warm_start(registry, "det", CONFIG, tmp_path / "w")
    assert (start.weights, start.model_version) == ("imagenet", None)
    assert len(start.notes) == 1 and start.notes[0].startswith("det v1 (champion) could not be fetched (")
