import json
from pathlib import Path

import pytest

from modelopsx.data.format import Box, Dataset, ImageRecord, load_dataset
from modelopsx.errors import DatasetError


def test_round_trip(tmp_path: Path) -> None:
    ds = Dataset(
        root=tmp_path,
        images=[ImageRecord(1, "a.png", 64, 48, group="seq1")],
        annotations=[Box(1, 1, [1, 2, 10, 20], visibility=0.5), Box(2, 1, [0, 0, 5, 5], ignore=1)],
    )
    ds.save()
    back = load_dataset(tmp_path)
    assert back.images[0].group == "seq1"
    assert back.annotations[0].bbox == [1.0, 2.0, 10.0, 20.0]
    assert back.annotations[0].height == 20.0
    assert back.annotations[1].ignore == 1
    assert json.loads((tmp_path / "annotations.json").read_text())["categories"][0]["name"] == "pedestrian"


def test_not_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "annotations.json").write_text("{oops")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(tmp_path)
