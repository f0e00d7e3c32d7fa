from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelopsx.gate import Decision, GatePolicy, PolicyError, decide, metrics_from_json

CHAMP = {"accuracy": 0.80, "precision": 0.70, "recall": 0.60, "f1": 0.65, "mr2_reasonable": 0.40}


@dataclass
class Bootstrap:
    delta: float
    low: float
    high: float
    p_value: float


def check(decision: Decision, kind: str, metric: str) -> bool:
    return next(c.passed for c in decision.checks if c.kind == kind and c.metric == metric)


def test_no_champion_promotes_on_value_thresholds() -> None:
    policy = GatePolicy.from_dict(
        {
            "metrics": {
                "accuracy": {"value": {"lower_bound": 0.5}, "change": {"direction": "higher_is_better"}}
            },
            "require_improvement": ["accuracy"],
        }
    )
    decision = decide({"accuracy": 0.6}, None, policy)
    assert decision.decision == "promote"
    assert [c.kind for c in decision.checks] == ["value"]  # change thresholds need a champion
    assert "no champion" in decision.reason


def test_no_champion_default_policy_promotes() -> None:
    decision = decide({"accuracy": 0.1, "precision": 0.1, "recall": 0.1}, None, GatePolicy.default())
    assert decision.decision == "promote" and decision.checks == []


def test_value_threshold_failure_keeps_even_without_champion() -> None:
    policy = GatePolicy.from_dict(
        {
            "metrics": {
                "recall": {"value": {"lower_bound": 0.5}},
                "mr2_reasonable": {"value": {"upper_bound": 0.5}},
            }
        }
    )
    decision = decide({"recall": 0.4, "mr2_reasonable": 0.6}, None, policy)
    assert decision.decision == "keep"
    assert "below the lower bound" in decision.reason and "above the upper bound" in decision.reason


def test_challenger_better_promotes() -> None:
    cand = dict(CHAMP, accuracy=0.85)
    decision = decide(cand, CHAMP, GatePolicy.default())
    assert decision.decision == "promote"
    assert check(decision, "improvement", "accuracy,precision,recall")
    assert "accuracy +0.0500" in decision.reason


def test_worse_on_one_metric_keeps() -> None:
    cand = dict(CHAMP, accuracy=0.90, precision=0.69)
    decision = decide(cand, CHAMP, GatePolicy.default())
    assert decision.decision == "keep"
    assert not check(decision, "change", "precision")
    assert check(decision, "change", "accuracy")
    assert "precision 0.6900 is worse than champion 0.7000" in decision.reason


def test_tie_keeps() -> None:
    decision = decide(dict(CHAMP), CHAMP, GatePolicy.default())
    assert decision.decision == "keep"
    assert "tie keeps the champion" in decision.reason


@pytest.mark.parametrize("value", [None, "absent"])
def test_missing_metric_keeps_with_reason(value: object) -> None:
    cand: dict[str, float | None] = {"accuracy": 0.95, "precision": 0.95}
    if value is None:
        cand["recall"] = None
    decision = decide(cand, CHAMP, GatePolicy.default())
    assert decision.decision == "keep"
    assert "candidate recall is missing or undefined" in decision.reason


def test_undefined_champion_metric_does_not_block() -> None:
    champ = dict(CHAMP, precision=None)
    decision = decide(dict(CHAMP, precision=0.5), champ, GatePolicy.default())
    assert decision.decision == "promote"
    assert "champion precision is undefined" in decision.checks[1].reason


def test_relative_change_threshold() -> None:
    policy = GatePolicy.from_dict(
        {"metrics": {"f1": {"change": {"direction": "higher_is_better", "relative": 0.05}}}}
    )
    assert decide({"f1": 0.65 * 1.04}, CHAMP, policy).decision == "keep"
    promoted = decide({"f1": 0.65 * 1.06}, CHAMP, policy)
    assert promoted.decision == "promote"
    assert promoted.checks[0].relative_delta == pytest.approx(0.06)


def test_lower_is_better_absolute_tolerance() -> None:
    policy = GatePolicy.from_dict({"metrics": {"mr2_reasonable": {"change": {"absolute": 0.01}}}})
    assert decide({"mr2_reasonable": 0.405}, CHAMP, policy).decision == "promote"  # within tolerance
    decision = decide({"mr2_reasonable": 0.42}, CHAMP, policy)
    assert decision.decision == "keep" and "worse than champion" in decision.reason


def test_significance_required() -> None:
    policy = GatePolicy.from_dict({"metrics": {"f1": {"change": {}}}, "significance": {"metric": "f1"}})
    cand = dict(CHAMP, f1=0.70)
    assert decide(cand, CHAMP, policy, Bootstrap(0.05, 0.01, 0.09, 0.01)).decision == "promote"
    not_sig = decide(cand, CHAMP, policy, Bootstrap(0.05, -0.01, 0.11, 0.2))
    assert not_sig.decision == "keep" and "not significant" in not_sig.reason
    assert not_sig.checks[-1].interval == (-0.01, 0.11)
    assert not_sig.significance is not None and not_sig.significance["low"] == -0.01
    assert "missing" not in decide(cand, None, policy).reason  # no champion: nothing to compare
    assert decide(cand, CHAMP, policy).decision == "keep"  # required but not computed


def test_significance_undefined_metric_keeps() -> None:
    policy = GatePolicy.from_dict({"significance": "precision"})
    nan = float("nan")
    decision = decide({}, CHAMP, policy, Bootstrap(nan, nan, nan, 1.0))
    assert decision.decision == "keep" and "no significance interval" in decision.reason
    assert json.loads(json.dumps(decision.to_json(), allow_nan=False))["decision"] == "keep"


def test_significance_lower_is_better_metric() -> None:
    policy = GatePolicy.from_dict({"significance": "mr2_reasonable"})
    assert decide({}, CHAMP, policy, Bootstrap(-0.05, -0.08, -0.01, 0.01)).decision == "promote"
    assert decide({}, CHAMP, policy, Bootstrap(-0.05, -0.08, 0.01, 0.1)).decision == "keep"


def test_decision_json_and_markdown() -> None:
    decision = decide(
        dict(CHAMP, accuracy=0.9),
        CHAMP,
        GatePolicy.default(),
        candidate_info={"model": "m", "seq": 2},
        champion_info={"model": "m", "seq": 1},
    )
    data = json.loads(json.dumps(decision.to_json()))
    assert data["decision"] == "promote" and data["champion_metrics"]["accuracy"] == 0.8
    assert {c["kind"] for c in data["checks"]} == {"change", "improvement"}
    accuracy = next(c for c in data["checks"] if c["metric"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(0.1)
    md = decision.to_markdown()
    assert "PROMOTE" in md and "| accuracy | 0.9000 | 0.8000 | +0.1000 |" in md


@pytest.mark.parametrize(
    "policy, message",
    [
        ({"metrics": {"acuracy": {}}}, "unknown key(s) ['acuracy']"),
        ({"metrics": {"recall": {"value": {"lower_bound": "high"}}}}, "must be a finite number"),
        ({"metrics": {"recall": {"change": {"direction": "up"}}}}, "direction must be one of"),
        ({"metrics": {"recall": {"value": {}}}}, "needs lower_bound and/or upper_bound"),
        ({"require_improvement": ["speed"]}, "unknown metric 'speed'"),
        ({"thresholds": {}}, "unknown key(s) ['thresholds']"),
        ([1, 2], "must be a mapping"),
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
    with pytest.raises(PolicyError, match="not valid JSON"):
        GatePolicy.from_json_string("{nope")


def test_metrics_from_evaluation_json() -> None:
    assert metrics_from_json({"metrics": {"recall": 0.5, "ap": None}, "undefined": {"ap": "x"}}) == {
        "recall": 0.5,
        "ap": None,
    }


def run_gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "gate", *args], capture_output=True, text=True
    )


def test_gate_cli_exits_zero_for_both_decisions(tmp_path: Path) -> None:
    cand, champ = tmp_path / "cand.json", tmp_path / "champ.json"
    champ.write_text(json.dumps({"metrics": CHAMP}))
    cand.write_text(json.dumps(dict(CHAMP, recall=0.5)))
    keep = run_gate("--candidate", str(cand), "--champion-metrics", str(champ), "--out", str(tmp_path / "k"))
    assert keep.returncode == 0, keep.stderr
    assert "keep" in keep.stdout.lower()
    assert json.loads((tmp_path / "k" / "decision.json").read_text())["decision"] == "keep"
    cand.write_text(json.dumps(dict(CHAMP, recall=0.9)))
    promote = run_gate("--candidate", str(cand), "--champion-metrics", str(champ), "--json")
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout)["decision"] == "promote"


def test_gate_cli_bad_policy_is_a_clear_error(tmp_path: Path) -> None:
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(CHAMP))
    bad = tmp_path / "policy.yaml"
    bad.write_text("metrics:\n  recall:\n    change: {direction: sideways}\n")
    result = run_gate("--candidate", str(cand), "--policy", str(bad))
    assert result.returncode != 0
    assert "direction must be one of" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_gate("--candidate", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
