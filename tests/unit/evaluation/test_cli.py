import json
import subprocess
import sys

import pytest

from modelopsx.evaluation.metrics import METRIC_NAMES
from tests.unit.evaluation.factories import box, dataset, det, random_case, write_images


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def gt_file(tmp_path):
    ds, _ = random_case(6, 6)
    return write_images(ds, tmp_path / "ds").root / "annotations.json"


def write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_evaluate_writes_metrics_json_and_report(tmp_path):
    ds, dets = random_case(6, 6)
    gt = write_images(ds, tmp_path / "ds").root / "annotations.json"
    dets_path = write(tmp_path / "dets.json", dets)
    baseline = write(tmp_path / "hog.json", dets[::3])
    out, report = tmp_path / "metrics.json", tmp_path / "report"
    result = run_cli(
        "--annotations",
        str(gt),
        "--detections",
        str(dets_path),
        "--score-threshold",
        "0.5",
        "--out",
        str(out),
        "--report",
        str(report),
        "--baseline",
        str(baseline),
        "--bootstrap",
        "50",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    assert list(payload["metrics"]) == list(METRIC_NAMES)
    assert payload["metrics"]["score_threshold"] == 0.5
    assert set(payload["confusion"]) == {"tp", "fp", "fn", "tn"}
    assert "baseline" in payload
    low, high = payload["intervals"]["ap"]
    assert low <= payload["metrics"]["ap"] <= high
    assert "mr2_reasonable" in result.stdout and "ap50" in result.stdout
    assert {p.name for p in report.iterdir()} == {"index.html", "pr_curve.png", "mr_fppi.png", "samples.png"}
    # Nothing is overwritten unless asked.
    again = run_cli("--annotations", str(gt), "--detections", str(dets_path), "--out", str(out))
    assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("detections", "message"),
    [
        (
            [det(1, [0, 0, 10, 20], 0.5), det(99, [0, 0, 10, 20], 0.5), det(123, [0, 0, 1, 1], 0.1)],
            "not in the ground truth, e.g. [99, 123]",
        ),
        (
            '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20], "score": NaN}]',
            "detections[0]: score is nan",
        ),
        (
            [det(1, [0, 0, 10, 20], 0.5), det(1, [0, 0, 10, -2], 0.5)],
            "detections[1]: bbox [0, 0, 10, -2] has a negative",
        ),
        ("this is not json", "not valid JSON"),
        ({"annotations": []}, "expected a JSON list"),
    ],
)
def test_bad_detections_fail_with_a_clear_message(tmp_path, gt_file, detections, message):
    dets_path = write(tmp_path / "dets.json", detections)
    result = run_cli("--annotations", str(gt_file), "--detections", str(dets_path))
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_empty_detections_file_gives_undefined_precision(tmp_path, gt_file):
    out = tmp_path / "m.json"
    result = run_cli(
        "--annotations",
        str(gt_file),
        "--detections",
        str(write(tmp_path / "d.json", [])),
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    assert payload["metrics"]["precision"] is None
    assert payload["undefined"]["precision"] == "there are no detections"
    assert payload["metrics"]["recall"] == 0.0


def test_ground_truth_without_pedestrians_gives_nulls_with_reasons(tmp_path):
    ds = dataset([[], [box([0.0, 0.0, 30.0, 30.0], ignore=1)]], width=64, height=48)
    ds = write_images(ds, tmp_path / "ds")
    out = tmp_path / "m.json"
    dets = write(tmp_path / "d.json", [det(1, [1, 1, 5, 5], 0.9)])
    result = run_cli("--annotations", str(ds.root), "--detections", str(dets), "--out", str(out))
    assert result.returncode == 0, result.stderr
    payload = json.loads(out.read_text())
    for name in ("recall", "ap", "ap50", "mr2_reasonable"):
        assert payload["metrics"][name] is None and payload["undefined"][name]
    assert "n/a" in result.stdout


def test_missing_ground_truth_file_fails_cleanly(tmp_path):
    result = run_cli("--annotations", str(tmp_path / "nope.json"), "--detections", str(tmp_path / "d.json"))
    assert result.returncode != 0 and "not found" in result.stderr and "Traceback" not in result.stderr
