"""Rendering a decision: one plain sentence and the table of compared metrics."""

from __future__ import annotations

import json

from modelopsx.gate.decide import decide
from modelopsx.gate.decision import Comparison
from modelopsx.gate.policy import GatePolicy
from tests.unit.gate.helpers import CHAMP, Bootstrap


def test_each_compared_metric_is_shown_with_its_difference_and_interval() -> None:
    cand = dict(CHAMP, accuracy=0.9, f1=0.70)
    intervals = {
        "f1": Bootstrap(0.05, 0.011, 0.102, 0.01),
        "accuracy": Bootstrap(0.1, 0.02, 0.18, 0.01),
        "precision": Bootstrap(0.0, -0.03, 0.03, 0.5),
        "recall": Bootstrap(0.0, -0.02, 0.02, 0.5),
    }
    decision = decide(
        cand,
        CHAMP,
        GatePolicy.default(),
        intervals,
        candidate_info={"model_name": "m", "model_version": 2},
        champion_info={"model_name": "m", "model_version": 1},
    )
    assert decision.promote, decision.reason
    lines = decision.summary_lines()
    assert lines[0] == (
        "Promote: model v2 beats champion v1: better on f1 and accuracy, and the f1 gain is real, so it "
        "becomes the new champion."
    )
    table = [line.split() for line in lines[2:]]
    assert table[0] == ["metric", "champion", "v1", "model", "v2", "difference", "95%", "interval", "verdict"]
    assert ["f1", "0.650", "0.700", "+0.050", "+0.011", "..", "+0.102", "better", "(real", "gain)"] in table
    assert [
        "accuracy",
        "0.800",
        "0.900",
        "+0.100",
        "+0.020",
        "..",
        "+0.180",
        "better",
        "(real",
        "gain)",
    ] in table
    assert ["precision", "0.700", "0.700", "+0.000", "-0.030", "..", "+0.030", "same"] in table
    data = json.loads(json.dumps(decision.to_json()))
    assert data["decision"] == "promote" and data["champion_metrics"]["accuracy"] == 0.8
    assert [c["metric"] for c in data["comparisons"]] == ["precision", "recall", "f1", "accuracy"]
    assert {c["kind"] for c in data["checks"]} == {"change", "improvement", "significance"}
    md = decision.to_markdown()
    assert (
        "**promote**" in md
        and "| accuracy | 0.800 | 0.900 | +0.100 | +0.020 .. +0.180 | better (real gain) |" in md
    )
    assert "| metric | champion v1 | model v2 | difference | 95% interval | verdict |" in md
    assert Comparison(**data["comparisons"][2]).line() == "f1 0.650 -> 0.700 (+0.050, 95% CI +0.011..+0.102)"


def test_a_keep_against_the_baseline_is_one_plain_sentence_that_never_calls_it_champion() -> None:
    cand = dict(CHAMP, precision=0.4, recall=0.7, f1=0.5, accuracy=0.6)
    decision = decide(
        cand,
        CHAMP,
        GatePolicy.default(),
        {"f1": Bootstrap(-0.15, -0.25, -0.05, 0.99)},
        candidate_info={"model_name": "m", "model_version": 1},
        champion_info={"baseline": "hog"},
    )
    lines = decision.summary_lines()
    assert lines[0] == (
        "Keep: model v1 does not beat the HOG baseline yet (worse on accuracy and precision; f1 is worse), "
        "so there is no champion yet."
    )
    assert lines[2].split()[:4] == ["metric", "HOG", "baseline", "model"]
    verdicts = {line.split()[0]: line.split()[-1] for line in lines[3:]}
    assert verdicts == {"precision": "worse", "recall": "better", "f1": "worse", "accuracy": "worse"}
    text = "\n".join(lines) + decision.to_markdown()
    assert "champion v" not in text and "(champion" not in text and "KEEP champion" not in text
    assert "required +" not in text and "not significant" not in text


def test_a_gain_that_could_be_chance_is_said_so() -> None:
    decision = decide(
        dict(CHAMP, recall=0.62, f1=0.66),
        CHAMP,
        GatePolicy.default(),
        {"f1": Bootstrap(0.01, -0.02, 0.04, 0.3)},
        candidate_info={"model_name": "m", "model_version": 3},
        champion_info={"model_name": "m", "model_version": 2},
    )
    assert decision.summary_lines()[0] == (
        "Keep: model v3 does not beat champion v2 (its f1 gain is too small to rule out chance), so "
        "champion v2 stays the champion."
    )
    assert "better, may be chance" in decision.summary_lines()[5]
