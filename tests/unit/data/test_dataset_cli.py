"""The `modelopsx dataset` group: wiring of synth / augment / info, and usage errors without tracebacks."""

import json
from pathlib import Path

from modelopsx.data.hashing import dataset_version_hash
from tests.unit.data.data_io_fixtures import assert_clean_failure, make_dataset, run_cli


def test_help_lists_the_commands() -> None:
    result = run_cli("dataset", "--help")
    assert result.returncode == 0
    for command in ("import", "validate", "split", "synth", "augment", "info"):
        assert command in result.stdout


def test_synth_then_augment_through_the_cli(tmp_path: Path) -> None:
    synth = run_cli(
        "dataset", "synth", "--out", tmp_path / "syn", "--images", "3", "--seed", "7", "--size", "96x64", "-q"
    )
    assert synth.returncode == 0, synth.stdout + synth.stderr
    data = json.loads((tmp_path / "syn" / "annotations.json").read_text())
    assert len(data["images"]) == 3
    assert {(img["width"], img["height"]) for img in data["images"]} == {(96, 64)}
    again = run_cli(
        "dataset",
        "synth",
        "--out",
        tmp_path / "syn2",
        "--images",
        "3",
        "--seed",
        "7",
        "--size",
        "96x64",
        "-q",
    )
    assert again.returncode == 0
    assert dataset_version_hash(tmp_path / "syn") == dataset_version_hash(tmp_path / "syn2")

    aug = run_cli(
        "dataset",
        "augment",
        tmp_path / "syn",
        "--out",
        tmp_path / "aug",
        "--copies",
        "1",
        "--seed",
        "1",
        "-q",
    )
    assert aug.returncode == 0, aug.stdout + aug.stderr
    augmented = json.loads((tmp_path / "aug" / "annotations.json").read_text())
    assert len(augmented["images"]) == 6
    assert str(tmp_path / "syn") in json.dumps(augmented["info"])


def test_synth_rejects_bad_size_and_existing_output(tmp_path: Path) -> None:
    assert_clean_failure(
        run_cli("dataset", "synth", "--out", tmp_path / "s", "--images", "2", "--size", "big"),
        "--size 'big' is not WIDTHxHEIGHT",
    )
    make_dataset(tmp_path / "s", n_images=1)
    before = (tmp_path / "s" / "annotations.json").read_text()
    assert_clean_failure(
        run_cli("dataset", "synth", "--out", tmp_path / "s", "--images", "2"), "already holds"
    )
    assert (tmp_path / "s" / "annotations.json").read_text() == before


def test_info_prints_counts_and_hash(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds", n_images=2)
    result = run_cli("dataset", "info", tmp_path / "ds")
    assert result.returncode == 0, result.stderr
    assert f"content hash: {dataset_version_hash(tmp_path / 'ds')[:12]}\n" in result.stdout
    assert_clean_failure(run_cli("dataset", "info", tmp_path / "nope"), "annotations file not found")
