import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from modelopsx.evaluation.coco_ap import coco_ap
from tests.unit.evaluation.factories import box, dataset, det, random_case


def pycocotools_eval(ds, dets):
    """pycocotools on the same data: ignore regions become iscrowd=1, as documented in coco_ap."""
    gt_json = ds.to_json()
    for ann in gt_json["annotations"]:
        ann["iscrowd"] = int(ann["iscrowd"] or ann["ignore"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_json
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.mark.parametrize(
    ("seed", "n_images", "score_decimals", "many_dets"),
    [
        (0, 12, None, False),
        (1, 30, None, True),
        (2, 25, 1, False),
        (3, 40, 2, True),
        (4, 8, None, False),
        (5, 60, None, False),
    ],
)
def test_ap_equals_pycocotools_on_random_data(seed, n_images, score_decimals, many_dets):
    ds, dets = random_case(seed, n_images, score_decimals=score_decimals, many_dets_image=many_dets)
    assert any(b.iscrowd for b in ds.annotations) and any(b.ignore for b in ds.annotations)
    reference = pycocotools_eval(ds, dets)
    ours = coco_ap(ds, dets)
    assert ours.ap is not None and ours.ap50 is not None
    assert ours.ap == pytest.approx(reference.stats[0], abs=1e-6)
    assert ours.ap50 == pytest.approx(reference.stats[1], abs=1e-6)
    # The whole interpolated precision table agrees, not just its mean.
    np.testing.assert_allclose(ours.precision, reference.eval["precision"][:, :, 0, 0, 2], atol=1e-12)


def test_unmatched_crowd_heavy_scene_equals_pycocotools():
    # Every detection sits on a crowd box or a pedestrian next to it: crowd absorption and the
    # "prefer a real pedestrian over a crowd" rule decide everything.
    crowd = [100.0, 100.0, 200.0, 200.0]
    ds = dataset(
        [
            [box(crowd, iscrowd=1), box([120.0, 120.0, 30.0, 60.0]), box([400.0, 100.0, 30.0, 60.0])],
            [box([10.0, 10.0, 40.0, 80.0], ignore=1)],
        ]
    )
    dets = [
        det(1, [121.0, 121.0, 30.0, 60.0], 0.9),
        det(1, [122.0, 119.0, 30.0, 60.0], 0.8),
        det(1, [150.0, 150.0, 30.0, 60.0], 0.85),
        det(1, [401.0, 100.0, 30.0, 60.0], 0.3),
        det(2, [12.0, 12.0, 30.0, 60.0], 0.95),
        det(2, [300.0, 300.0, 30.0, 60.0], 0.2),
    ]
    reference = pycocotools_eval(ds, dets)
    ours = coco_ap(ds, dets)
    assert ours.ap == pytest.approx(reference.stats[0], abs=1e-6)
    assert ours.ap50 == pytest.approx(reference.stats[1], abs=1e-6)


def test_hand_computed_ap():
    # Two pedestrians. Ranked detections: exact hit (TP), near-duplicate of the same person (FP), a
    # stray box (FP), exact hit on the second person (TP). Precision 1, 1/2, 1/3, 1/2 -> monotone
    # 1, .5, .5, .5; recall .5, .5, .5, 1. The 51 recall points in [0, .5] read 1, the 50 in (.5, 1]
    # read .5: AP50 = 76/101, and since both hits are exact, every IoU threshold gives the same.
    ds = dataset([[box([0.0, 0.0, 10.0, 20.0]), box([100.0, 0.0, 10.0, 20.0])]])
    dets = [
        det(1, [0.0, 0.0, 10.0, 20.0], 0.9),
        det(1, [1.0, 0.0, 10.0, 20.0], 0.8),
        det(1, [200.0, 0.0, 10.0, 20.0], 0.7),
        det(1, [100.0, 0.0, 10.0, 20.0], 0.6),
    ]
    result = coco_ap(ds, dets)
    assert result.ap50 == pytest.approx(76 / 101, abs=1e-12)
    assert result.ap == pytest.approx(76 / 101, abs=1e-12)


def test_no_pedestrians_makes_ap_undefined_and_no_detections_makes_it_zero():
    only_crowd = dataset([[box([0.0, 0.0, 50.0, 50.0], iscrowd=1)]])
    assert coco_ap(only_crowd, [det(1, [0.0, 0.0, 10.0, 10.0], 0.5)]).ap is None
    with_person = dataset([[box([0.0, 0.0, 50.0, 50.0])]])
    assert coco_ap(with_person, []).ap == 0.0


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_weighted_shortcut_equals_the_literal_accumulation(seed):
    from modelopsx.evaluation.coco_ap import _weighted_precision, interpolated_precision
    from modelopsx.evaluation.metrics import evaluate_detections, prepare

    ds, dets = random_case(seed, 30, score_decimals=1 if seed % 2 else None, many_dets_image=True)
    prep = prepare(ds, dets)
    literal, _ = interpolated_precision(prep.coco)
    shortcut, _ = _weighted_precision(prep.coco, np.ones((1, prep.gt.n_images)))
    assert np.array_equal(literal, shortcut)
    assert evaluate_detections(ds, dets).metrics["ap"] == coco_ap(ds, dets).ap
