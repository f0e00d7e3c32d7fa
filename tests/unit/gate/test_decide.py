"""Deciding: value, change, improvement and significance checks against a champion, a baseline or nothing."""

from __future__ import annotations

import json

import pytest

from modelopsx.gate.decide import decide
from modelopsx.gate.policy import GatePolicy
from modelopsx.gate.render import reference_name
from modelopsx.gate.verdict import Reference
from tests.unit.gate.helpers import CHAMP, NO_SIGNIFICANCE, Bootstrap, check, promotion_rule


def test_no_reference_promotes_on_value_thresholds() -> None:
    policy = GatePolicy.from_dict(
        {
            "metrics": {
                "accuracy": {"value": {"lower_bound": 0.5}, "change": {"direction": "higher_is_better"}}
            },
            "require_improvement": ["accuracy"],
            **NO_SIGNIFICANCE,
        }
    )
    decision = decide({"accuracy": 0.6}, None, policy)
    assert decision.decision == "promote"
    assert [c.kind for c in decision.checks] == ["value"]  # change thresholds need a reference
    assert "no champion" in decision.reason


def test_value_threshold_failure_keeps_even_without_champion() -> None:
    policy = GatePolicy.from_dict(
        {
            "metrics": {
                "recall": {"value": {"lower_bound": 0.5}},
                "mr2_reasonable": {"value": {"upper_bound": 0.5}},
            },
            **NO_SIGNIFICANCE,
        }
    )
    decision = decide({"recall": 0.4, "mr2_reasonable": 0.6}, None, policy)
    assert decision.decision == "keep"
    assert "below the lower bound" in decision.reason and "above the upper bound" in decision.reason


def test_challenger_better_promotes() -> None:
    cand = dict(CHAMP, accuracy=0.85)
    decision = decide(cand, CHAMP, promotion_rule())
    assert decision.decision == "promote"
    assert check(decision, "improvement", "accuracy,precision,recall")
    assert "accuracy +0.0500" in decision.reason


def test_default_policy_keeps_a_better_point_estimate_without_a_significant_f1_gain() -> None:
    cand = dict(CHAMP, accuracy=0.85, f1=0.70)
    unproven = decide(cand, CHAMP, GatePolicy.default())
    assert unproven.decision == "keep" and "no paired bootstrap" in unproven.reason
    noise = decide(cand, CHAMP, GatePolicy.default(), {"f1": Bootstrap(0.05, -0.02, 0.11, 0.2)})
    assert noise.decision == "keep" and "not a real gain" in noise.reason
    real = decide(cand, CHAMP, GatePolicy.default(), {"f1": Bootstrap(0.05, 0.01, 0.09, 0.01)})
    assert real.decision == "promote", real.reason


def test_worse_on_one_metric_keeps() -> None:
    cand = dict(CHAMP, accuracy=0.90, precision=0.69)
    decision = decide(cand, CHAMP, promotion_rule())
    assert decision.decision == "keep"
    assert not check(decision, "change", "precision")
    assert check(decision, "change", "accuracy")
    assert "precision 0.6900 is worse than the champion 0.7000" in decision.reason


def test_tie_keeps() -> None:
    decision = decide(dict(CHAMP), CHAMP, promotion_rule())
    assert decision.decision == "keep"
    assert "a tie is not enough" in decision.reason


def test_undefined_candidate_metric_keeps_with_reason() -> None:
    decision = decide(dict(CHAMP, recall=None), CHAMP, promotion_rule())
    assert decision.decision == "keep"
    assert "candidate recall is undefined" in decision.reason


def test_undefined_champion_metric_counts_as_its_worst_value() -> None:
    """A champion without detections has no precision: it is beaten on precision by any candidate that has
    one, but it is not 'nothing to beat': the other checks still apply."""
    champ = dict(CHAMP, precision=None)
    decision = decide(
        dict(CHAMP, precision=0.5), champ, promotion_rule(), champion_undefined={"precision": "no detections"}
    )
    assert decision.decision == "promote"
    precision = next(c for c in decision.checks if c.metric == "precision")
    assert precision.champion == 0.0 and "vs champion 0.0000" in precision.reason
    row = next(c for c in decision.comparisons if c.metric == "precision")
    assert "reference undefined (no detections): counts as 0" in row.line()
    worse_elsewhere = decide(dict(CHAMP, precision=0.5, recall=0.5), champ, promotion_rule())
    assert worse_elsewhere.decision == "keep"
    missed = dict(CHAMP, mr2_reasonable=None)
    policy = GatePolicy.from_dict({"metrics": {"mr2_reasonable": {"change": {}}}, **NO_SIGNIFICANCE})
    assert decide(dict(CHAMP, mr2_reasonable=0.99), missed, policy).decision == "promote"  # worst is 1
    assert decide(dict(CHAMP, mr2_reasonable=None), missed, policy).decision == "keep"


def test_relative_change_threshold() -> None:
    policy = GatePolicy.from_dict(
        {
            "metrics": {"f1": {"change": {"direction": "higher_is_better", "relative": 0.05}}},
            **NO_SIGNIFICANCE,
        }
    )
    assert decide({"f1": 0.65 * 1.04}, CHAMP, policy).decision == "keep"
    promoted = decide({"f1": 0.65 * 1.06}, CHAMP, policy)
    assert promoted.decision == "promote"
    assert promoted.checks[0].relative_delta == pytest.approx(0.06)


def test_lower_is_better_absolute_tolerance() -> None:
    policy = GatePolicy.from_dict(
        {"metrics": {"mr2_reasonable": {"change": {"absolute": 0.01}}}, **NO_SIGNIFICANCE}
    )
    assert decide({"mr2_reasonable": 0.405}, CHAMP, policy).decision == "promote"  # within tolerance
    decision = decide({"mr2_reasonable": 0.42}, CHAMP, policy)
    assert decision.decision == "keep" and "worse than the champion" in decision.reason


def test_significance_required() -> None:
    policy = GatePolicy.from_dict({"metrics": {"f1": {"change": {}}}, "significance": {"metric": "f1"}})
    cand = dict(CHAMP, f1=0.70)
    assert decide(cand, CHAMP, policy, {"f1": Bootstrap(0.05, 0.01, 0.09, 0.01)}).decision == "promote"
    not_sig = decide(cand, CHAMP, policy, {"f1": Bootstrap(0.05, -0.01, 0.11, 0.2)})
    assert not_sig.decision == "keep" and "not a real gain" in not_sig.reason
    assert not_sig.checks[-1].interval == (-0.01, 0.11)
    assert not_sig.significance is not None and not_sig.significance["low"] == -0.01
    assert decide(cand, CHAMP, policy).decision == "keep"  # required but not computed


def test_significance_undefined_metric_keeps() -> None:
    policy = GatePolicy.from_dict({"significance": "precision"})
    nan = float("nan")
    decision = decide({"precision": 0.7}, CHAMP, policy, {"precision": Bootstrap(nan, nan, nan, 1.0)})
    assert decision.decision == "keep" and "no significance interval" in decision.reason
    assert json.loads(json.dumps(decision.to_json(), allow_nan=False))["decision"] == "keep"


def test_significance_lower_is_better_metric() -> None:
    policy = GatePolicy.from_dict({"significance": "mr2_reasonable"})
    cand = {"mr2_reasonable": 0.35}
    assert decide(cand, CHAMP, policy, {"mr2_reasonable": Bootstrap(-0.05, -0.08, -0.01, 0.01)}).promote
    assert not decide(cand, CHAMP, policy, {"mr2_reasonable": Bootstrap(-0.05, -0.08, 0.01, 0.1)}).promote


def test_baseline_reference_is_named_in_the_reason() -> None:
    decision = decide(
        dict(CHAMP, accuracy=0.7), CHAMP, GatePolicy.default(), champion_info={"baseline": "hog"}
    )
    assert decision.decision == "keep"
    assert decision.reason.startswith("no champion yet, and the candidate does not beat the HOG baseline")
    assert decision.reference == Reference("baseline", baseline="hog")
    assert decision.reference.name == reference_name(decision.to_json()) == "the HOG baseline"
