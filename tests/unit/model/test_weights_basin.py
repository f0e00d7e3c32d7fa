"""Initial weights fetched from a Basin key, through the real Basin emulator on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelopsx.errors import ModelError
from modelopsx.model.config import TrainConfig
from modelopsx.model.detector import build_detector
from modelopsx.model.weights import load_initial_weights

STORE = "0x00000000000000000000000000000000000000aa.weights"
TINY = {"input_size": (64, 96), "alpha": 0.35, "neck_channels": 8, "head_channels": 8, "weights": None}


def test_weights_from_a_basin_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelopsx.basin.server import BasinEmulator
    from modelopsx.storage.stores import ensure_store

    source, _, _ = build_detector(TrainConfig(**TINY))
    weights = tmp_path / "det.weights.h5"
    source.save_weights(weights)
    with BasinEmulator(tmp_path / "basin") as emulator:
        monkeypatch.setenv("MODELOPSX_BASIN_ENDPOINT", emulator.endpoint)
        monkeypatch.delenv("MODELOPSX_BASIN_ACCESS_KEY", raising=False)
        monkeypatch.delenv("MODELOPSX_BASIN_SECRET_KEY", raising=False)
        ensure_store(f"basin://{STORE}").put("models/v1/det.weights.h5", weights.read_bytes())
        target, backbone, _ = build_detector(TrainConfig(**TINY))
        assert load_initial_weights(target, backbone, f"basin://{STORE}/models/v1/det.weights.h5")
        with pytest.raises(ModelError):
            load_initial_weights(target, backbone, f"basin://{STORE}")
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(target(x)), np.asarray(source(x)), atol=1e-5)
