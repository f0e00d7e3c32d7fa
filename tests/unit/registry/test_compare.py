"""The gate's detections are read as evaluation reads them; anything unreadable is evidence missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.gate.evidence import EvidenceError
from modelopsx.registry.compare import load_detections


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"candidate detections: .*detections file not found"),
        ("", r"candidate detections: .*detections file is empty"),
        ("{not json", r"candidate detections: .*not valid JSON"),
        ('{"image_id": 1}', r"candidate detections: .*expected a JSON list of detections, got dict"),
        ("[1, 2]", r"candidate detections .* are not a list of COCO results"),
    ],
)
def test_unreadable_detections_are_evidence_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "detections.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(EvidenceError, match=message) as exc:
        load_detections(path, "candidate")
    assert "re-run the evaluate step" in (exc.value.hint or "")


def test_a_results_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "detections.json"
    path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]')
    assert load_detections(path, "champion") == [
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}
    ]
