"""Curves as DVC plots data: thinned to at most MAX_POINTS rows, same ends, absent curves left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modelopsx.evaluation.curves import MAX_POINTS, plot_tables, write_curves


def test_long_curves_are_thinned_keeping_both_ends(tmp_path: Path) -> None:
    recall = np.linspace(0, 0.9, 5000)
    curves = {
        "pr": {"recall": recall, "precision": 1 - recall / 2, "score": recall},
        "mr_fppi": {
            "reasonable": {"fppi": np.array([0.01, 0.1, 1.0]), "miss_rate": np.array([0.9, 0.5, np.nan])}
        },
    }
    tables = json.loads(write_curves(curves, tmp_path / "curves.json").read_text())
    pr = tables["precision_recall"]
    assert len(pr) == MAX_POINTS and pr[0] == {"recall": 0.0, "precision": 1.0} and pr[-1]["recall"] == 0.9
    assert tables["miss_rate_fppi"] == [{"fppi": 0.01, "miss_rate": 0.9}, {"fppi": 0.1, "miss_rate": 0.5}]


def test_a_curve_without_points_is_left_out() -> None:
    empty = {"pr": {"recall": np.zeros(0), "precision": np.zeros(0)}, "mr_fppi": {}}
    assert plot_tables(empty) == {}
