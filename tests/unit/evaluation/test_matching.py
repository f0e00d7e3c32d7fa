import numpy as np
import pytest
from pycocotools import mask as mask_utils

from modelopsx.evaluation.inputs import detection_arrays, ground_truth_arrays
from modelopsx.evaluation.matching import FP, IGNORED, TP, box_overlaps, match_detections
from tests.unit.evaluation.factories import box, dataset, det


def test_overlaps_are_bit_identical_to_pycocotools():
    rng = np.random.default_rng(7)
    dets = np.round(rng.uniform(0, 60, (40, 4)), 1)
    gts = np.round(rng.uniform(0, 60, (15, 4)), 1)
    gts[3] = dets[5]  # identical boxes
    gts[4] = [dets[6, 0] + dets[6, 2], dets[6, 1], 10.0, 10.0]  # touching edge: zero overlap
    crowd = rng.random(15) < 0.3
    ours = box_overlaps(dets, gts, crowd)
    reference = mask_utils.iou(dets.tolist(), gts.tolist(), crowd.astype(np.uint8).tolist())
    assert np.array_equal(ours, reference)
    assert ours[5, 3] == pytest.approx(1.0) and ours[6, 4] == 0.0


def _states(images, detections, thresholds=(0.5,), **kwargs):
    gt = ground_truth_arrays(dataset(images))
    dets = detection_arrays(detections, gt)
    match = match_detections(gt, dets, list(thresholds), **kwargs)
    return match, {int(i): match.states[:, k].tolist() for k, i in enumerate(match.det_index)}


def test_greedy_matching_by_score_with_ignore_regions_and_crowds():
    images = [
        [
            box([0.0, 0.0, 10.0, 20.0]),
            box([300.0, 0.0, 100.0, 100.0], ignore=1),
            box([100.0, 0.0, 100.0, 100.0], iscrowd=1),
        ]
    ]
    detections = [
        det(1, [1.0, 0.0, 10.0, 20.0], 0.5),  # 0: IoU .82 with the person, but 1 took it first -> FP
        det(1, [0.0, 0.0, 10.0, 20.0], 0.9),  # 1: exact -> TP
        det(1, [310.0, 10.0, 10.0, 20.0], 0.8),  # 2: inside the ignore region (IoA 1) -> ignored
        det(1, [120.0, 10.0, 10.0, 20.0], 0.7),  # 3: inside the crowd -> ignored
        det(1, [125.0, 10.0, 10.0, 20.0], 0.6),  # 4: crowds absorb any number -> ignored
        det(1, [295.0, 0.0, 10.0, 20.0], 0.4),  # 5: half inside the ignore region: IoA .5 -> ignored
        det(1, [294.0, 0.0, 10.0, 20.0], 0.3),  # 6: IoA .4 -> FP
    ]
    match, states = _states(images, detections)
    assert states == {0: [FP], 1: [TP], 2: [IGNORED], 3: [IGNORED], 4: [IGNORED], 5: [IGNORED], 6: [FP]}
    assert match.det_index.tolist() == [1, 2, 3, 4, 0, 5, 6]  # descending score
    assert match.positives.tolist() == [1]


def test_a_person_beats_an_overlapping_crowd_and_ties_go_to_the_later_box():
    person = [0.0, 0.0, 10.0, 20.0]
    images = [[box([0.0, 0.0, 50.0, 50.0], iscrowd=1), box(person), box(person)]]
    _, states = _states(images, [det(1, person, 0.9), det(1, person, 0.8), det(1, person, 0.7)])
    assert states == {0: [TP], 1: [TP], 2: [IGNORED]}  # two people, then the crowd absorbs the third


def test_matching_per_iou_threshold_and_max_dets():
    images = [[box([0.0, 0.0, 10.0, 20.0])]]
    detections = [det(1, [0.0, 2.0, 10.0, 20.0], 0.9)] + [det(1, [500.0, 0.0, 5.0, 5.0], 0.1)] * 3
    match, states = _states(images, detections, thresholds=(0.5, 0.8, 0.85), max_dets=2)
    assert states[0] == [TP, TP, FP]  # IoU 18/22 = 0.818
    assert match.det_index.tolist() == [0, 1]  # only the two best per image are kept


def test_detections_are_dropped_by_keep_mask_and_images_without_boxes_are_all_false_positives():
    images = [[], [box([0.0, 0.0, 10.0, 20.0])]]
    detections = [
        det(1, [0.0, 0.0, 10.0, 20.0], 0.9),
        det(2, [0.0, 0.0, 10.0, 20.0], 0.8),
        det(2, [0.0, 0.0, 1.0, 1.0], 0.7),
    ]
    match, states = _states(images, detections, det_keep=np.array([True, True, False]))
    assert states == {0: [FP], 1: [TP]}
    assert match.positives.tolist() == [0, 1]
