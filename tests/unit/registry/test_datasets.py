"""Publishing a dataset version: annotations.json is parsed once for validation, hash and counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelopsx.data import format as data_format
from modelopsx.data.synth import generate_synthetic
from modelopsx.registry.datasets import dataset_counts, publish_dataset
from modelopsx.storage.local import LocalStore


def test_a_publish_parses_the_annotations_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = generate_synthetic(tmp_path / "data", n_images=3, seed=0, size=(96, 64)).root
    parses: list[str] = []
    parse = data_format.parse_json

    def counting(text: str) -> Any:
        parses.append(text)
        return parse(text)

    monkeypatch.setattr(data_format, "parse_json", counting)
    record = publish_dataset(data, "street", LocalStore(tmp_path / "store"))
    assert record["version"] == 1 and not record["unchanged"]
    assert len(parses) == 1
    assert record["counts"] == dataset_counts(data)  # the same counts as from a fresh read
