import numpy as np
import pytest

from modelopsx.errors import UserError
from modelopsx.evaluation.bootstrap import (
    BOOTSTRAP_METRICS,
    bootstrap_intervals,
    paired_bootstrap,
    resample_weights,
)
from modelopsx.evaluation.metrics import evaluate_detections
from tests.unit.evaluation.factories import random_case


def widths(intervals):
    return {name: high - low for name, (low, high) in intervals.items()}


def test_intervals_contain_the_point_estimate():
    ds, dets = random_case(11, 120, max_dets=15)
    point = evaluate_detections(ds, dets, score_threshold=0.5).metrics
    intervals = bootstrap_intervals(ds, dets, n_resamples=300, seed=1, score_threshold=0.5)
    assert set(intervals) == set(BOOTSTRAP_METRICS)
    for name, (low, high) in intervals.items():
        assert low <= point[name] <= high, name
        assert low < high, name


def test_intervals_shrink_as_the_test_set_grows():
    small_ds, small_dets = random_case(5, 30, max_dets=15)
    large_ds, large_dets = random_case(5, 480, max_dets=15)
    small = widths(bootstrap_intervals(small_ds, small_dets, n_resamples=300, score_threshold=0.5))
    large = widths(bootstrap_intervals(large_ds, large_dets, n_resamples=300, score_threshold=0.5))
    for name in ("precision", "recall", "f1", "ap50", "ap", "mr2_all"):
        assert large[name] < small[name], name


def test_resampling_is_reproducible_and_draws_every_image_count_once():
    weights = resample_weights(50, 20, seed=3)
    assert weights.shape == (20, 50) and (weights.sum(axis=1) == 50).all()
    assert np.array_equal(weights, resample_weights(50, 20, seed=3))
    ds, dets = random_case(2, 40)
    assert bootstrap_intervals(ds, dets, 50, seed=9) == bootstrap_intervals(ds, dets, 50, seed=9)


def test_paired_difference_of_identical_detections_is_exactly_zero():
    ds, dets = random_case(3, 60)
    for metric in ("ap", "f1", "mr2_reasonable"):
        result = paired_bootstrap(ds, dets, list(dets), metric, n_resamples=200)
        assert (result.delta, result.low, result.high) == (0.0, 0.0, 0.0)
        assert result.p_value == 1.0


def test_paired_bootstrap_detects_a_better_model():
    ds, dets = random_case(4, 100)
    # Model b adds a perfect, confident detection for every pedestrian: clearly better AP and miss rate.
    extra = [
        {"image_id": b.image_id, "category_id": 1, "bbox": list(b.bbox), "score": 1.0}
        for b in ds.annotations
        if not (b.iscrowd or b.ignore)
    ]
    better = paired_bootstrap(ds, dets, dets + extra, "ap", n_resamples=200)
    assert better.delta > 0 and better.low > 0 and better.p_value < 0.05
    mr = paired_bootstrap(ds, dets, dets + extra, "mr2_all", n_resamples=200)
    assert mr.lower_is_better and mr.delta < 0 and mr.high < 0 and mr.p_value < 0.05
    worse = paired_bootstrap(ds, dets + extra, dets, "ap", n_resamples=200)
    assert worse.delta < 0 and worse.p_value > 0.95
    assert set(better.to_json()) >= {"delta", "low", "high", "p_value"}


def test_paired_bootstrap_rejects_unknown_metrics_and_reports_undefined_ones():
    ds, dets = random_case(1, 10)
    with pytest.raises(UserError, match="unknown metric"):
        paired_bootstrap(ds, dets, dets, "map", n_resamples=10)
    undefined = paired_bootstrap(ds, [], [], "precision", n_resamples=10)
    assert np.isnan(undefined.delta) and undefined.p_value == 1.0 and "undefined" in (undefined.reason or "")
    assert undefined.to_json()["delta"] is None and undefined.to_json()["low"] is None


def test_image_weights_equal_literally_repeating_images():
    from modelopsx.evaluation.metrics import compute_metrics, prepare
    from tests.unit.evaluation.factories import dataset, det

    ds, dets = random_case(8, 25, max_dets=20)
    weights = np.random.default_rng(0).integers(0, 4, ds.images.__len__())
    boxes_by_image = ds.boxes_by_image()
    images, repeated = [], []
    for record, count in zip(ds.images, weights, strict=True):
        for _ in range(count):
            images.append(
                [
                    {
                        "bbox": b.bbox,
                        "ignore": b.ignore,
                        "iscrowd": b.iscrowd,
                        "visibility": b.visibility,
                        "height": b.height,
                    }
                    for b in boxes_by_image[record.id]
                ]
            )
            repeated += [det(len(images), d["bbox"], d["score"]) for d in dets if d["image_id"] == record.id]
    weighted = compute_metrics(prepare(ds, dets), 0.5, weights[None, :].astype(float))
    literal = compute_metrics(prepare(dataset(images), repeated), 0.5)
    for name, value in literal.items():
        assert weighted[name][0] == pytest.approx(value[0], abs=1e-12), name
