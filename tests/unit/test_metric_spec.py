"""The metric spec: one source of each metric's name, direction, worst value and meaning."""

from __future__ import annotations

from modelopsx import metric_spec
from modelopsx.evaluation import bootstrap
from modelopsx.gate import evidence as gate_evidence
from modelopsx.gate import policy as gate_policy
from modelopsx.model import sweep


def test_every_metric_has_a_direction_a_worst_value_and_a_meaning() -> None:
    assert metric_spec.QUALITY_METRICS[:4] == ("precision", "recall", "f1", "accuracy")
    assert {"mr2_reasonable", "mr2_all", "mr2_heavy", "mr2_small"} == metric_spec.LOWER_IS_BETTER
    assert {metric_spec.worst_value(m) for m in metric_spec.LOWER_IS_BETTER} == {1.0}
    assert metric_spec.worst_value("f1") == metric_spec.worst_value("not a metric") == 0.0
    assert (*metric_spec.QUALITY_METRICS, "score_threshold") == metric_spec.METRIC_NAMES
    assert all(metric_spec.METRIC_DOCS[name].endswith(".") for name in metric_spec.METRIC_NAMES)
    assert all("(lower is better)" in metric_spec.METRIC_DOCS[m] for m in metric_spec.LOWER_IS_BETTER)


def test_the_gate_the_sweep_and_the_bootstrap_read_the_same_spec() -> None:
    assert gate_evidence.METRIC_DIRECTIONS is metric_spec.METRIC_DIRECTIONS
    assert sweep.SELECTION_METRICS == bootstrap.BOOTSTRAP_METRICS == metric_spec.QUALITY_METRICS
    assert gate_policy.CONFIDENCE == metric_spec.DEFAULT_CONFIDENCE


def test_the_confidence_is_written_as_a_percentage() -> None:
    assert metric_spec.confidence_label() == "95%"
    assert metric_spec.confidence_label(0.9) == "90%"
