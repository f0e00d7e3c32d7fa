import json

import pytest

from modelopsx.evaluation.inputs import DetectionsError
from modelopsx.evaluation.metrics import (
    DEFAULT_SCORE_THRESHOLD,
    choose_score_threshold,
    evaluate_detections,
)
from modelopsx.metric_spec import METRIC_DOCS, METRIC_NAMES
from tests.unit.evaluation.factories import box, dataset, det

PEOPLE = [box([0.0, 0.0, 10.0, 20.0]), box([100.0, 0.0, 10.0, 20.0])]
RANKED = [
    det(1, [0.0, 0.0, 10.0, 20.0], 0.9),  # TP
    det(1, [1.0, 0.0, 10.0, 20.0], 0.8),  # FP: same person again
    det(1, [200.0, 0.0, 10.0, 20.0], 0.7),  # FP: nobody there
    det(1, [100.0, 0.0, 10.0, 20.0], 0.6),
]  # TP


def test_metric_names_and_docs_are_the_designed_ones():
    assert METRIC_NAMES == (
        "precision",
        "recall",
        "f1",
        "accuracy",
        "ap50",
        "ap",
        "mr2_reasonable",
        "mr2_all",
        "mr2_heavy",
        "mr2_small",
        "score_threshold",
    )
    assert all(doc and "\n" not in doc for doc in METRIC_DOCS.values())


def test_one_image_with_known_matches():
    ds = dataset([PEOPLE])
    at_half = evaluate_detections(ds, RANKED, score_threshold=0.5)
    assert at_half.metrics["precision"] == pytest.approx(2 / 4)
    assert at_half.metrics["recall"] == pytest.approx(1.0)
    assert at_half.metrics["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert at_half.counts["tp"] == 2 and at_half.counts["fp"] == 2 and at_half.counts["fn"] == 0
    at_075 = evaluate_detections(ds, RANKED, score_threshold=0.75)
    assert (at_075.metrics["precision"], at_075.metrics["recall"], at_075.metrics["f1"]) == pytest.approx(
        (0.5, 0.5, 0.5)
    )
    assert at_075.metrics["ap50"] == pytest.approx(76 / 101)  # AP ignores the threshold
    assert at_075.score_threshold_source == "given"
    json.dumps(at_075.to_json())  # plain JSON types only
    assert set(at_075.to_json()) >= {"metrics", "undefined", "confusion", "counts"}


def test_threshold_maximizes_f1_preferring_the_higher_score_on_ties():
    # F1 = 2TP / (TP + FP + 2) at 0.9, 0.8, 0.7, 0.6: 2/3, 1/2, 2/5, 2/3 -> 0.9 (the higher of two maxima).
    ds = dataset([PEOPLE])
    assert choose_score_threshold(ds, RANKED) == 0.9
    chosen = evaluate_detections(ds, RANKED)
    assert chosen.metrics["score_threshold"] == 0.9 and chosen.score_threshold_source == "max_f1"
    # A run of equal scores is kept or dropped as a whole.
    tied = [
        det(1, [200.0, 0.0, 10.0, 20.0], 0.9),
        det(1, [0.0, 0.0, 10.0, 20.0], 0.9),
        det(1, [100.0, 0.0, 10.0, 20.0], 0.5),
    ]
    assert choose_score_threshold(ds, tied) == 0.5  # 0.9 -> 2/4; 0.5 -> 4/5


def test_ignore_regions_and_crowds_absorb_detections():
    ds = dataset(
        [
            [
                box([0.0, 0.0, 10.0, 20.0]),
                box([50.0, 0.0, 100.0, 100.0], ignore=1),
                box([300.0, 0.0, 100.0, 100.0], iscrowd=1),
            ]
        ]
    )
    dets = [
        det(1, [60.0, 10.0, 10.0, 20.0], 0.9),  # in the ignore region
        det(1, [0.0, 0.0, 10.0, 20.0], 0.8),  # TP
        det(1, [45.0, 0.0, 10.0, 20.0], 0.7),  # half in the ignore region (IoA .5): absorbed
        det(1, [310.0, 0.0, 10.0, 20.0], 0.65),  # in the crowd
        det(1, [145.0, 0.0, 20.0, 20.0], 0.6),
    ]  # IoA .25: FP
    result = evaluate_detections(ds, dets, score_threshold=0.5)
    assert result.counts["pedestrians"] == 1 and result.counts["ignored_boxes"] == 2
    assert result.metrics["precision"] == pytest.approx(0.5)
    assert result.metrics["recall"] == pytest.approx(1.0)


def test_image_level_accuracy_and_confusion():
    person = [0.0, 0.0, 10.0, 20.0]
    ds = dataset([[box(person)], [box(person)], [], [box(person, ignore=1)]])
    dets = [det(1, person, 0.9), det(2, person, 0.2), det(3, [50.0, 50.0, 5.0, 5.0], 0.8)]
    result = evaluate_detections(ds, dets, score_threshold=0.5)
    # image 1 found (tp), image 2 only below threshold (fn), image 3 empty but flagged (fp),
    # image 4 has only an ignore region and nothing flagged (tn).
    assert result.confusion == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert result.metrics["accuracy"] == pytest.approx(0.5)


def test_no_detections_leaves_precision_undefined():
    result = evaluate_detections(dataset([PEOPLE, []]), [])
    assert result.metrics["precision"] is None and "no detections" in result.undefined["precision"]
    assert result.metrics["f1"] is None and "f1" in result.undefined
    assert result.metrics["recall"] == 0.0 and result.metrics["ap"] == 0.0
    assert result.metrics["score_threshold"] == DEFAULT_SCORE_THRESHOLD
    assert result.score_threshold_source == "default"
    assert result.confusion == {"tp": 0, "fp": 0, "fn": 1, "tn": 1}


def test_no_pedestrians_leaves_recall_ap_and_miss_rates_undefined():
    ds = dataset([[], [box([0.0, 0.0, 50.0, 50.0], iscrowd=1)]])
    with pytest.warns(UserWarning, match="default score threshold"):
        assert choose_score_threshold(ds, [det(1, [0.0, 0.0, 5.0, 5.0], 0.7)]) == DEFAULT_SCORE_THRESHOLD
    result = evaluate_detections(ds, [det(1, [0.0, 0.0, 5.0, 5.0], 0.7)], score_threshold=0.5)
    for name in ("recall", "f1", "ap", "ap50", "mr2_reasonable", "mr2_all", "mr2_heavy", "mr2_small"):
        assert result.metrics[name] is None, name
        assert result.undefined[name], name
    assert result.metrics["precision"] == 0.0
    assert result.metrics["accuracy"] == pytest.approx(0.5)


def test_undefined_metrics_serialize_as_null(tmp_path):
    result = evaluate_detections(dataset([[]]), [])
    payload = json.loads(json.dumps(result.to_json()))
    assert payload["metrics"]["recall"] is None and payload["undefined"]["recall"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (det(1, [0.0, 0.0, 10.0, 20.0], float("nan")), "detections[1]: score is nan"),
        (det(1, [0.0, 0.0, 10.0, 20.0], -0.1), "detections[1]: score -0.1 is negative"),
        (det(1, [0.0, 0.0, -10.0, 20.0], 0.5), "detections[1]: bbox [0.0, 0.0, -10.0, 20.0] has a negative"),
        (det(1, [0.0, float("nan"), 10.0, 20.0], 0.5), "bbox [0.0, nan, 10.0, 20.0] is not finite"),
        (det(1, [0.0, 0.0, 10.0], 0.5), "detections[1]: bbox [0.0, 0.0, 10.0] is not 4 numbers"),
        ({"image_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0]}, "detections[1] has no 'score'"),
        (det(1.5, [0.0, 0.0, 10.0, 20.0], 0.5), "image_id 1.5 is not an integer"),
    ],
)
def test_invalid_detections_name_the_entry(bad, message):
    good = det(1, [0.0, 0.0, 10.0, 20.0], 0.5)
    with pytest.raises(DetectionsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        evaluate_detections(dataset([PEOPLE]), [good, bad])


def test_unknown_image_ids_are_listed():
    dets = [det(1, [0.0, 0.0, 1.0, 1.0], 0.5)] + [det(i, [0.0, 0.0, 1.0, 1.0], 0.5) for i in range(7, 20)]
    expected = r"13 detection\(s\) name 13 image id\(s\).*\[7, 8, 9, 10, 11\]"
    with pytest.raises(DetectionsError, match=expected):
        evaluate_detections(dataset([PEOPLE]), dets)


def test_unknown_image_ids_can_be_dropped_with_a_warning():
    dets = RANKED + [det(42, [0.0, 0.0, 1.0, 1.0], 0.99)]
    with pytest.warns(UserWarning, match=r"\[42\]; dropping them"):
        result = evaluate_detections(dataset([PEOPLE]), dets, score_threshold=0.5, drop_unknown_images=True)
    assert result.counts["detections_unknown_image"] == 1
    assert result.metrics["precision"] == pytest.approx(0.5)


def test_other_categories_are_left_out():
    dets = RANKED + [{"image_id": 1, "category_id": 2, "bbox": [500.0, 0.0, 10.0, 20.0], "score": 0.99}]
    result = evaluate_detections(dataset([PEOPLE]), dets, score_threshold=0.5)
    assert result.counts["detections_other_category"] == 1
    assert result.metrics["precision"] == pytest.approx(0.5)
