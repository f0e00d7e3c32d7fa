"""Bad inputs through the CLI's entry point (in-process): a clear message, exit code != 0, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import Ran, run_cli
from tests.unit.model.conftest import make_tiny_split


def _fails_cleanly(result: Ran, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    text = " ".join((result.stderr + result.stdout).split())  # rich wraps long lines
    for phrase in phrases:
        assert phrase in text


def _empty_split(root: Path, annotations: dict) -> Path:
    for name in ("train", "val"):
        (root / name / "images").mkdir(parents=True)
        (root / name / "annotations.json").write_text(json.dumps(annotations))
    return root


def test_input_size_not_divisible_by_32(tmp_path: Path) -> None:
    result = run_cli(
        "train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--input-size", "250x384"
    )
    _fails_cleanly(result, "not divisible by the network stride 32", "224 or 256")


def test_empty_training_split(tmp_path: Path) -> None:
    split = _empty_split(tmp_path / "split", {"images": [], "annotations": []})
    result = run_cli("train", "--data", str(split), "--out", str(tmp_path / "m"))
    _fails_cleanly(result, "training split is empty")


def test_split_without_pedestrians(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}]
    split = _empty_split(tmp_path / "split", {"images": images, "annotations": []})
    result = run_cli("train", "--data", str(split), "--out", str(tmp_path / "m"))
    _fails_cleanly(result, "no pedestrians")


def test_missing_split_and_unknown_backbone(tmp_path: Path) -> None:
    _fails_cleanly(
        run_cli("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m")),
        "split directory not found",
    )
    hog = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--backbone", "hog")
    _fails_cleanly(hog, "not trainable")


def test_predict_without_a_model_dir(tmp_path: Path) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(b"")
    _fails_cleanly(run_cli("predict", "--model", str(tmp_path), str(image)), "not a model directory")


@pytest.mark.slow
def test_weights_file_that_does_not_fit(tmp_path: Path) -> None:
    split = make_tiny_split(tmp_path, n_images=4)
    weights = tmp_path / "other.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n not really")
    result = run_cli(
        "train",
        "--data",
        str(split),
        "--out",
        str(tmp_path / "m"),
        "--weights",
        str(weights),
        "--input-size",
        "128x192",
        "--epochs",
        "1",
        "--quiet",
    )
    _fails_cleanly(result, "do not fit", "hint")
    assert not (tmp_path / "m" / "model.json").exists()


def test_predict_defaults_to_the_champion_and_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELOPSX_REGISTRY_URL", str(tmp_path / "store"))
    image = tmp_path / "x.jpg"
    image.write_bytes(b"")
    _fails_cleanly(run_cli("predict", str(image)), "no champion yet", "--model NAME@vN")
    _fails_cleanly(
        run_cli("predict", "--model", "pedestrian-detector@v4", str(image)), "version 4", "existing versions"
    )
    _fails_cleanly(
        run_cli("predict", "--model", "no-such-thing", str(image)), "not a model folder, NAME@vN or hog"
    )
    _fails_cleanly(
        run_cli("predict", "--backbone", "hog", str(image)), "No such option"
    )  # one way: --model hog


def test_person_weights_with_an_alpha_they_do_not_fit(tmp_path: Path) -> None:
    split = make_tiny_split(tmp_path, n_images=4)
    args = ["train", "--data", str(split), "--out", str(tmp_path / "m"), "--weights", "ssdlite-person"]
    result = run_cli(*args, "--alpha", "0.35")
    assert result.returncode == 2
    _fails_cleanly(result, "do not fit backbone mobilenetv2 with alpha 0.35", "--alpha 1 only")
    assert not (tmp_path / "m").exists()
