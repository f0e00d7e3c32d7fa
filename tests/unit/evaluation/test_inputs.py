"""Reading detections: an empty file is a failed predict, not a model that found nothing."""

from pathlib import Path

import pytest

from modelopsx.evaluation.inputs import DetectionsError, load_detections


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_an_empty_detections_file_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "detections.json"
    path.write_text(content)
    with pytest.raises(DetectionsError, match="detections file is empty") as exc:
        load_detections(path)
    assert "[]" in exc.value.hint


def test_an_empty_list_is_no_detections(tmp_path: Path) -> None:
    path = tmp_path / "detections.json"
    path.write_text("[]")
    assert load_detections(path) == []
