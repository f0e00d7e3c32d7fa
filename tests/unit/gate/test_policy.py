"""The gate policy: its default, its sources and the policies it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.gate.policy import GatePolicy, PolicyError
from tests.unit.gate.helpers import promotion_rule


def test_default_policy_is_the_promotion_rule_plus_significance_and_the_hog_floor() -> None:
    policy = GatePolicy.default()
    assert policy.require_improvement == ("accuracy", "precision", "recall")
    assert policy.significance is not None and policy.significance.metric == "f1"
    assert policy.baseline == "hog"
    assert policy.compared_metrics() == ("precision", "recall", "f1", "accuracy")
    # left out, the two fail-closed guards keep their defaults; only an explicit null turns them off
    partial = GatePolicy.from_dict({"metrics": {"recall": {"change": {}}}})
    assert partial.significance == policy.significance and partial.baseline == "hog"
    off = GatePolicy.from_dict({"require_improvement": ["f1"], "significance": None, "baseline": None})
    assert off.significance is None and off.baseline == "none"
    assert GatePolicy.from_dict({"require_improvement": "f1", "significance": "off"}).significance is None


@pytest.mark.parametrize(
    "policy, message",
    [
        ({"metrics": {"acuracy": {}}}, "unknown key(s) ['acuracy']"),
        ({"metrics": {"recall": {"value": {"lower_bound": "high"}}}}, "must be a finite number"),
        ({"metrics": {"recall": {"change": {"direction": "up"}}}}, "direction must be one of"),
        ({"metrics": {"recall": {"value": {}}}}, "needs lower_bound and/or upper_bound"),
        ({"require_improvement": ["speed"]}, "unknown metric 'speed'"),
        ({"thresholds": {}}, "unknown key(s) ['thresholds']"),
        ({"baseline": "sift"}, "baseline must be one of"),
        ({"significance": None}, "it checks nothing, so it would promote any model"),
        ([1, 2], "must be a mapping"),
        ({"significance": {"n_resamples": 10**8}}, "n_resamples must be an integer in 10..100,000"),
        ({"significance": {"n_resamples": 10**12}}, "n_resamples must be an integer in 10..100,000"),
        ({"significance": {"n_resamples": 9}}, "n_resamples must be an integer in 10..100,000"),
    ],
)
def test_invalid_policy_raises_user_error(policy: object, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        GatePolicy.from_dict(policy)
    assert message in info.value.message


def test_policy_sources(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text("metrics:\n  ap50:\n    value: {lower_bound: 0.3}\n    change: {absolute: -0.01}\n")
    policy = GatePolicy.load(str(yaml_file))
    assert policy.metrics["ap50"].change is not None and policy.metrics["ap50"].change.absolute == -0.01
    assert GatePolicy.load('{"require_improvement": "f1"}').require_improvement == ("f1",)
    assert GatePolicy.load("") == GatePolicy.default()
    assert GatePolicy.from_dict(GatePolicy.default().to_dict()) == GatePolicy.default()
    assert GatePolicy.from_dict(promotion_rule().to_dict()) == promotion_rule()
    with pytest.raises(PolicyError, match="not valid JSON"):
        GatePolicy.from_json_string("{nope")
