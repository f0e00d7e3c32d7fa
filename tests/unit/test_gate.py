from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelopsx.gate import (
    Comparison,
    Decision,
    EvidenceError,
    GatePolicy,
    PolicyError,
    Reference,
    decide,
    metrics_from_json,
    reference_name,
)

CHAMP = {"accuracy": 0.80, "precision": 0.70, "recall": 0.60, "f1": 0.65, "mr2_reasonable": 0.40}
# The promotion rule alone: what the tests of the checks themselves use (the default adds significance).
NO_SIGNIFICANCE = {"significance": None, "baseline": "none"}


def promotion_rule() -> GatePolicy:
    return GatePolicy.from_dict({**GatePolicy.default().to_dict(), **NO_SIGNIFICANCE})


@dataclass
class Bootstrap:
    delta: float
    low: float
    high: float
    p_value: float


def check(decision: Decision, kind: str, metric: str) -> bool:
    return next(c.passed for c in decision.checks if c.kind == kind and c.metric == metric)


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


def test_baseline_reference_is_named_in_the_reason() -> None:
    decision = decide(
        dict(CHAMP, accuracy=0.7), CHAMP, GatePolicy.default(), champion_info={"baseline": "hog"}
    )
    assert decision.decision == "keep"
    assert decision.reason.startswith("no champion yet, and the candidate does not beat the HOG baseline")
    assert decision.reference == Reference("baseline", baseline="hog")
    assert decision.reference.name == reference_name(decision.to_json()) == "the HOG baseline"


def test_the_reference_has_one_name_per_kind() -> None:
    assert Reference.of({"model_name": "m", "model_version": 3}).name == "champion v3"
    assert Reference.of({"model_name": "m"}).name == "the champion"
    assert Reference.of({"baseline": "hog"}).noun == "HOG baseline"
    assert Reference.of(None).name == Reference.of({}).name == "no reference"
    assert Reference.of({"model_version": True}).version is None  # not a version number


def gated() -> Decision:
    return decide(
        dict(CHAMP, accuracy=0.9),
        CHAMP,
        GatePolicy.default(),
        {"f1": Bootstrap(0.05, 0.01, 0.1, 0.01)},
        candidate_info={"model_name": "m", "model_version": 2},
        champion_info={"model_name": "m", "model_version": 1},
    )


def test_a_decision_reads_back_as_it_was_written(tmp_path: Path) -> None:
    decision = gated()
    json_path, _ = decision.write(tmp_path)
    again = Decision.read(json_path)
    assert again == decision and again.to_json() == decision.to_json()  # the digest stays the same
    assert again.reference.version == 1 and again.checks[0].passed in (True, False)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"decision": "promote!"}, "neither 'promote' nor 'keep'"),
        ({"decision": None}, "neither 'promote' nor 'keep'"),
        ({"checks": None}, "checks and comparisons must be lists"),
        ({"checks": [{"kind": "change", "metric": "f1", "passed": "yes"}]}, "true/false `passed`"),
        ({"checks": [{"kind": "vibes", "metric": "f1", "passed": True}]}, "unknown kind"),
        ({"champion": {"model_version": "1"}}, "is not an integer"),
        ({"candidate": []}, "candidate is not an object"),
        ({"candidate_metrics": {"f1": "0.7"}}, "not an object of numbers"),
        ({"comparisons": [{"metric": "f1", "delta": "big"}]}, "not an object of numbers"),
        ({"reason": 3}, "must be text"),
    ],
)
def test_a_malformed_decision_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(EvidenceError, match=message) as info:
        Decision.from_json({**gated().to_json(), **change})
    assert info.value.hint
    with pytest.raises(EvidenceError, match="does not exist"):
        Decision.read(tmp_path / "decision.json")
    (tmp_path / "decision.json").write_text("{promote")
    with pytest.raises(EvidenceError, match="not valid JSON"):
        Decision.read(tmp_path / "decision.json")
    with pytest.raises(EvidenceError, match="expected a JSON object"):
        Decision.from_json(["promote"])


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


def test_metrics_from_evaluation_json() -> None:
    evaluation = {"metrics": {"recall": 0.5, "ap": None, "score_threshold": 0.4}, "undefined": {"ap": "x"}}
    assert metrics_from_json(evaluation) == {"recall": 0.5, "ap": None}


def run_gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelopsx.cli", "gate", *args], capture_output=True, text=True
    )


def test_gate_cli_exits_zero_for_both_decisions(tmp_path: Path) -> None:
    cand, champ, policy = (
        tmp_path / "cand.json",
        tmp_path / "champ.json",
        json.dumps(promotion_rule().to_dict()),
    )
    champ.write_text(json.dumps({"metrics": CHAMP}))
    cand.write_text(json.dumps(dict(CHAMP, recall=0.5)))
    keep = run_gate(
        "--candidate",
        str(cand),
        "--champion-metrics",
        str(champ),
        "--out",
        str(tmp_path / "k"),
        "--policy",
        policy,
    )
    assert keep.returncode == 0, keep.stderr
    assert keep.stdout.startswith("Keep: the candidate does not beat the champion (worse on recall; ")
    assert ["recall", "0.600", "0.500", "-0.100", "n/a", "worse"] in [
        ln.split() for ln in keep.stdout.splitlines()
    ]
    assert json.loads((tmp_path / "k" / "decision.json").read_text())["decision"] == "keep"
    cand.write_text(json.dumps(dict(CHAMP, recall=0.9)))
    promote = run_gate(
        "--candidate", str(cand), "--champion-metrics", str(champ), "--json", "--policy", policy
    )
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout)["decision"] == "promote"
    default = run_gate("--candidate", str(cand), "--champion-metrics", str(champ))
    assert default.returncode == 0 and default.stdout.startswith("Keep:")  # no detections: no significance


@pytest.mark.parametrize(
    "content, message",
    [
        ("{}", "missing metric(s)"),
        ("[1, 2]", "expected an object"),
        ('{"accuracy": "0.9", "precision": 0.7, "recall": 0.6}', "must be a number or null"),
        ('{"accuracy": true, "precision": 0.7, "recall": 0.6}', "must be a number or null"),
        ('{"accuracy": NaN, "precision": 0.7, "recall": 0.6}', "not a finite number"),
        ('{"accuracy": Infinity, "precision": 0.7, "recall": 0.6}', "not a finite number"),
        ('{"accuracy": 1.2, "precision": 0.7, "recall": 0.6}', "not a finite number in [0, 1]"),
        ("not json", "is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (
            '{"accuracy": 0.1, "precision": 0.7, "recall": 0.6, "accuracy": 0.9}',
            "'accuracy' appears more than once",
        ),
    ],
)
def test_gate_cli_refuses_untrustworthy_champion_metrics(tmp_path: Path, content: str, message: str) -> None:
    """A bad champion file once printed promote ("nothing to beat"): now it is an error, exit 2."""
    cand, champ = tmp_path / "cand.json", tmp_path / "champ.json"
    cand.write_text(json.dumps(dict(CHAMP, accuracy=0.99, recall=0.99, precision=0.99)))
    champ.write_text(content)
    result = run_gate(
        "--candidate",
        str(cand),
        "--champion-metrics",
        str(champ),
        "--policy",
        json.dumps(promotion_rule().to_dict()),
    )
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "promote" not in result.stdout


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


def test_gate_cli_refuses_an_unbounded_bootstrap_before_any_work(tmp_path: Path) -> None:
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(CHAMP))
    policy = json.dumps({"require_improvement": ["f1"], "significance": {"n_resamples": 10**12}})
    result = run_gate("--candidate", str(cand), "--champion-metrics", str(cand), "--policy", policy)
    assert result.returncode == 2, result.stdout
    assert (
        "n_resamples must be an integer in 10..100,000" in result.stderr and "Traceback" not in result.stderr
    )
    assert GatePolicy.from_json_string(json.dumps({"significance": {"n_resamples": 100_000}})).significance
