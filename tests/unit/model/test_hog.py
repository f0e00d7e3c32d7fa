from pathlib import Path

import numpy as np

from modelopsx.model.hog import hog_detect, hog_predict_dataset


def test_hog_finds_nothing_on_a_flat_image() -> None:
    assert hog_detect(np.full((128, 192, 3), 90, np.uint8), image_id=1) == []


def test_hog_predicts_a_dataset_as_coco_results(tmp_path: Path) -> None:
    from modelopsx.data.synth import generate_synthetic

    dataset = generate_synthetic(tmp_path / "synth", 3, seed=5)
    results = hog_predict_dataset(tmp_path / "synth")
    ids = {img.id for img in dataset.images}
    for det in results:
        assert det["image_id"] in ids and det["category_id"] == 1
        x, y, w, h = det["bbox"]
        assert w > 0 and h > 0 and 0 < det["score"] < 1
