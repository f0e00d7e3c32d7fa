import base64
import html as html_module
import re
from pathlib import Path

import cv2

from modelopsx.evaluation.metrics import evaluate_detections
from modelopsx.evaluation.report import confusion_matrix, self_contained_html, write_report
from modelopsx.metric_spec import METRIC_DOCS
from tests.unit.evaluation.factories import box, dataset, det, random_case, write_images


def test_report_bundles_table_curves_and_samples(tmp_path):
    ds, dets = random_case(9, 8)
    ds = write_images(ds, tmp_path / "ds")
    result = evaluate_detections(ds, dets)
    baseline = evaluate_detections(ds, dets[::2])
    html_path = write_report(result, ds, dets, tmp_path / "report", title="Test <report>", baseline=baseline)
    html = html_path.read_text()
    assert "Test &lt;report&gt;" in html
    assert all(f"<code>{name}</code>" in html for name in METRIC_DOCS)
    assert html_module.escape(METRIC_DOCS["mr2_heavy"]) in html and "<th>baseline</th>" in html
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 3
    for name, data in zip(("pr_curve.png", "mr_fppi.png", "samples.png"), embedded, strict=True):
        assert base64.b64decode(data) == (tmp_path / "report" / name).read_bytes()
        assert cv2.imread(str(tmp_path / "report" / name)) is not None


def test_samples_draw_ground_truth_green_and_detections_red(tmp_path):
    from modelopsx.evaluation.plots import DET_COLOR, GT_COLOR, draw_samples

    ds = write_images(dataset([[box([20.0, 20.0, 40.0, 80.0])]], width=320, height=222), tmp_path / "ds")
    path = draw_samples(
        ds,
        [det(1, [200.0, 50.0, 40.0, 80.0], 0.9), det(1, [100.0, 50.0, 40.0, 80.0], 0.1)],
        0.5,
        tmp_path / "s.png",
        n_samples=1,
    )
    grid = cv2.imread(str(path))
    colors = {tuple(int(c) for c in px) for px in grid.reshape(-1, 3)}
    assert GT_COLOR in colors and DET_COLOR in colors
    # The low-scoring detection (x 100..140 in a tile at scale 1) is not drawn.
    assert not (grid[18 + 60 : 18 + 120, 100] == DET_COLOR).all(axis=1).any()


def test_report_for_undefined_metrics(tmp_path):
    ds = write_images(dataset([[]], width=64, height=48), tmp_path / "ds")
    result = evaluate_detections(ds, [])
    html = write_report(result, ds, [], tmp_path / "r").read_text()
    assert "n/a: the ground truth has no (non-ignored) pedestrians" in html


def test_confusion_matrix_rows_are_truth() -> None:
    categories, matrix = confusion_matrix({"tp": 5, "fp": 1, "fn": 2, "tn": 3})
    assert categories == ["pedestrian", "no pedestrian"] and matrix == [[5, 2], [1, 3]]


def test_report_becomes_one_self_contained_file(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "pr_curve.png").write_bytes(png)
    (tmp_path / "r" / "index.html").write_text('<img src="pr_curve.png"><img src="https://x/y.png">')
    out = self_contained_html(tmp_path / "r", tmp_path / "out" / "report.html")
    html = out.read_text()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    assert 'src="https://x/y.png"' in html  # remote links stay as they are
