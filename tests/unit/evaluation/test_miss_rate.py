import math

import numpy as np
import pytest

from modelopsx.evaluation.inputs import detection_arrays, ground_truth_arrays
from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.evaluation.miss_rate import FPPI_POINTS, SETUPS, log_average_miss_rate, match_setup
from tests.unit.evaluation.factories import box, dataset, det


def scene():
    """Four images; the comments give each detection's fate under 'reasonable' and under 'all'."""
    ds = dataset(
        [
            [
                box([0.0, 0.0, 40.0, 100.0]),
                box([100.0, 0.0, 40.0, 100.0]),  # P1, P2
                box([200.0, 0.0, 12.0, 30.0]),  # S: 30 px, only a pedestrian under 'all'
                box([300.0, 0.0, 18.0, 45.0]),
            ],  # M: 45 px, likewise
            [box([0.0, 0.0, 40.0, 100.0]), box([300.0, 0.0, 100.0, 200.0], ignore=1)],  # P3 (never found), R
            [],
            [],
        ]
    )
    dets = [
        det(1, [0.0, 0.0, 40.0, 100.0], 0.95),  # P1: TP / TP
        det(1, [200.0, 0.0, 12.0, 30.0], 0.90),  # S: 30 px < 50 / 1.25 -> dropped / TP
        det(3, [0.0, 0.0, 40.0, 100.0], 0.85),  # FP / FP
        det(2, [310.0, 10.0, 40.0, 100.0], 0.80),  # inside R (IoA 1): ignored / ignored
        det(1, [100.0, 0.0, 40.0, 100.0], 0.75),  # P2: TP / TP
        det(4, [0.0, 0.0, 40.0, 100.0], 0.70),  # FP / FP
        det(4, [200.0, 0.0, 40.0, 100.0], 0.60),  # FP / FP
        det(1, [300.0, 0.0, 18.0, 45.0], 0.55),  # on M, ignored under 'reasonable' (< 50 px): ignored / TP
    ]
    return ds, dets


def mr(ds, dets, setup):
    gt = ground_truth_arrays(ds)
    return float(log_average_miss_rate(match_setup(gt, detection_arrays(dets, gt), SETUPS[setup]))[0])


def test_reference_points_are_the_nine_caltech_fppi_values():
    np.testing.assert_allclose(FPPI_POINTS, 10 ** np.arange(-2, 0.01, 0.25))


def test_reasonable_setup_by_hand():
    # Counted detections: TP, FP, TP, FP, FP over 4 images and 3 pedestrians ->
    # FPPI 0, .25, .25, .5, .75 and recall 1/3, 1/3, 2/3, 2/3, 2/3.
    # Six reference points lie below .25: the last point with FPPI <= ref is the first (miss rate 2/3);
    # at .316, .562 and 1 the miss rate is 1/3.
    expected = math.exp((6 * math.log(2 / 3) + 3 * math.log(1 / 3)) / 9)
    ds, dets = scene()
    assert mr(ds, dets, "reasonable") == pytest.approx(expected, abs=1e-12)


def test_all_setup_by_hand():
    # 5 pedestrians (P1, P2, P3, S, M). Counted: TP, TP, FP, TP, FP, FP, TP ->
    # FPPI 0, 0, .25, .25, .5, .75, .75; recall .2, .4, .4, .6, .6, .6, .8.
    # Below .25 (six points): miss rate .6; at .316 and .562: .4; at 1: .2.
    expected = math.exp((6 * math.log(0.6) + 2 * math.log(0.4) + math.log(0.2)) / 9)
    ds, dets = scene()
    assert mr(ds, dets, "all") == pytest.approx(expected, abs=1e-12)


def test_no_curve_point_below_a_reference_counts_as_a_full_miss():
    # Two images, one pedestrian: a false positive first (FPPI .5), then the hit (recall 1).
    # Seven reference points lie below .5 -> miss rate 1; at .562 and 1 it is 0, clipped to 1e-10.
    ds = dataset([[box([0.0, 0.0, 40.0, 100.0])], []])
    dets = [det(2, [0.0, 0.0, 40.0, 100.0], 0.9), det(1, [0.0, 0.0, 40.0, 100.0], 0.8)]
    assert mr(ds, dets, "reasonable") == pytest.approx(math.exp(2 * math.log(1e-10) / 9), rel=1e-12)


def test_heavy_and_small_setups_select_by_visibility_and_height():
    ds = dataset(
        [
            [
                box([0.0, 0.0, 40.0, 100.0], visibility=0.4),  # heavy only
                box([100.0, 0.0, 25.0, 60.0], visibility=0.9),
            ]
        ]
    )  # small (and reasonable)
    dets = [det(1, [0.0, 0.0, 40.0, 100.0], 0.9)]
    assert mr(ds, dets, "heavy") == pytest.approx(1e-10)  # its only pedestrian found with no FP
    assert mr(ds, dets, "small") == pytest.approx(1.0)  # the 100 px detection is outside 50..75 * 1.25
    assert mr(ds, dets, "reasonable") == pytest.approx(1.0)  # the heavy one is ignored, the small missed


def test_metrics_report_miss_rates_and_undefined_setups():
    ds, dets = scene()
    result = evaluate_detections(ds, dets)
    assert result.metrics["mr2_reasonable"] == pytest.approx(mr(ds, dets, "reasonable"))
    assert result.metrics["mr2_all"] == pytest.approx(mr(ds, dets, "all"))
    for name in ("mr2_heavy", "mr2_small"):  # every pedestrian is fully visible and >= 100 px or < 50 px
        assert result.metrics[name] is None
        assert "no pedestrians" in result.undefined[name]
    no_dets = evaluate_detections(ds, [])
    assert no_dets.metrics["mr2_reasonable"] == 1.0


def _loop_reference(ds, dets, setup):
    """The CityPersons procedure written as plain per-image loops (Caltech rule when no point <= ref)."""
    (h_lo, h_hi), (v_lo, v_hi) = setup.height, setup.visibility

    def overlap(d, g, crowd):
        w = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
        h = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
        if w <= 0 or h <= 0:
            return 0.0
        return w * h / (d[2] * d[3] if crowd else d[2] * d[3] + g[2] * g[3] - w * h)

    boxes_by_image = ds.boxes_by_image()
    outcomes, positives = [], 0
    for image in sorted(ds.images, key=lambda r: r.id):
        gts = boxes_by_image.get(image.id, [])
        ignored = [
            bool(g.iscrowd or g.ignore or not h_lo <= g.height <= h_hi or not v_lo <= g.visibility <= v_hi)
            for g in gts
        ]
        order = sorted(range(len(gts)), key=lambda k: ignored[k])
        gts, ignored = [gts[k] for k in order], [ignored[k] for k in order]
        positives += ignored.count(False)
        mine = sorted((d for d in dets if d["image_id"] == image.id), key=lambda d: -d["score"])[:1000]
        taken = [False] * len(gts)
        for d in (d for d in mine if h_lo / 1.25 <= d["bbox"][3] < h_hi * 1.25):
            best, found = 0.5, None
            for k, g in enumerate(gts):
                if taken[k]:
                    continue
                if found is not None and ignored[k]:
                    break
                value = overlap(d["bbox"], g.bbox, ignored[k])
                if value >= best:
                    best, found = value, k
            if found is None:
                outcomes.append((-d["score"], len(outcomes), 0))
            elif not ignored[found]:
                taken[found] = True
                outcomes.append((-d["score"], len(outcomes), 1))
    if positives == 0:
        return None
    outcomes.sort()
    tp = np.cumsum([o[2] == 1 for o in outcomes])
    fppi = np.cumsum([o[2] == 0 for o in outcomes]) / len(ds.images)
    logs = []
    for ref in FPPI_POINTS:
        below = np.flatnonzero(fppi <= ref)
        recall = tp[below[-1]] / positives if below.size else 0.0
        logs.append(math.log(max(1e-10, 1 - recall)))
    return math.exp(sum(logs) / len(logs))


@pytest.mark.parametrize("seed", range(8))
def test_vectorized_miss_rate_equals_a_per_image_loop(seed):
    from tests.unit.evaluation.factories import random_case

    ds, dets = random_case(500 + seed, 15, max_boxes=10, max_dets=25, score_decimals=[None, 1][seed % 2])
    for b in ds.annotations:
        b.height = b.bbox[3] * (1 + (seed % 3) * 0.1)  # full-body height differs from the visible box
    result = evaluate_detections(ds, dets)
    for name, setup in SETUPS.items():
        expected = _loop_reference(ds, dets, setup)
        assert (result.metrics[f"mr2_{name}"] is None) == (expected is None), name
        if expected is not None:
            assert result.metrics[f"mr2_{name}"] == pytest.approx(expected, abs=1e-12), name
