"""Detection evaluation: COCO AP, CityPersons log-average miss rates, precision/recall/F1/accuracy, bootstrap.

Entry points: metrics.evaluate_detections / choose_score_threshold, bootstrap.bootstrap_intervals /
paired_bootstrap, report.write_report, and the `modelopsx evaluate` command (cli.py).

Ground truth flagged `iscrowd` or `ignore` never counts as a miss or a false positive: it absorbs the
detections that fall on it (intersection over detection area >= 0.5). For COCO AP this is exactly
pycocotools' crowd rule (pycocotools reads only `iscrowd`; give ignore regions iscrowd=1 to compare).
Precision/recall/F1 use the same matching at IoU 0.5 over all detections (no 100-per-image cap).
The miss-rate setups and their exact rules are documented in miss_rate.py.
"""
