"""The evidence checks: untrustworthy metrics are an error, never a decision."""

from __future__ import annotations

import math

import pytest

from modelopsx.gate.decide import decide
from modelopsx.gate.evidence import EvidenceError, metrics_from_json
from tests.unit.gate.helpers import CHAMP, promotion_rule

BAD_METRICS = [
    ({}, "missing metric(s) precision, recall, accuracy"),
    ([0.9, 0.8], "expected an object"),
    (dict(CHAMP, precision="0.9"), "precision must be a number or null, got '0.9'"),
    (dict(CHAMP, recall=True), "recall must be a number or null, got True"),
    (dict(CHAMP, accuracy=math.nan), "accuracy = nan is not a finite number in [0, 1]"),
    (dict(CHAMP, accuracy=math.inf), "accuracy = inf is not a finite number in [0, 1]"),
    (dict(CHAMP, precision=1.5), "precision = 1.5 is not a finite number in [0, 1]"),
    (dict(CHAMP, recall=-0.1), "recall = -0.1 is not a finite number in [0, 1]"),
    ({"accuracy": 0.8, "precision": 0.7}, "missing metric(s) recall"),
]


@pytest.mark.parametrize("bad, message", BAD_METRICS)
@pytest.mark.parametrize("who", ["candidate", "champion"])
def test_untrustworthy_evidence_is_an_error_never_a_decision(bad: object, message: str, who: str) -> None:
    good = dict(CHAMP)
    with pytest.raises(EvidenceError) as info:
        if who == "candidate":
            decide(bad, good, promotion_rule())  # type: ignore[arg-type]
        else:
            decide(dict(good, accuracy=0.99), bad, promotion_rule())  # type: ignore[arg-type]
    assert message in info.value.message and f"{who} metrics" in info.value.message


def test_metrics_from_evaluation_json() -> None:
    evaluation = {"metrics": {"recall": 0.5, "ap": None, "score_threshold": 0.4}, "undefined": {"ap": "x"}}
    assert metrics_from_json(evaluation) == {"recall": 0.5, "ap": None}
