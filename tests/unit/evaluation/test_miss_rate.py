import math

import numpy as np
import pytest

from modelopsx.evaluation.inputs import detection_arrays, ground_truth_arrays
from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.evaluation.miss_rate import FPPI_POINTS, SETUPS, log_average_miss_rate, match_setup
from tests.unit.evaluation.factories import box, dataset, det


def scene():
    """Four images; the comments give each detection's fate under 'reasonable' and under 'all'."""
    ds = dataset([
        [box([0.0, 0.0, 40.0, 100.0]), box([100.0, 0.0, 40.0, 100.0]),  # P1, P2
         box([200.0, 0.0, 12.0, 30.0]),  # S: 30 px, only a pedestrian under 'all'
         box([300.0, 0.0, 18.0, 45.0])],  # M: 45 px, likewise
        [box([0.0, 0.0, 40.0, 100.0]), box([300.0, 0.0, 100.0, 200.0], ignore=1)],  # P3 (never found), R
        [],
        [],
    ])
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
    ds = dataset([[box([0.0, 0.0, 40.0, 100.0], visibility=0.4),  # heavy only
                   box([100.0, 0.0, 25.0, 60.0], visibility=0.9)]])  # small (and reasonable)
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
