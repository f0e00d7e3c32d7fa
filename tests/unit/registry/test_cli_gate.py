"""`modelopsx gate`: exit codes, and clear errors for untrustworthy evidence or a bad policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.gate.policy import GatePolicy
from tests.unit.gate.helpers import CHAMP, promotion_rule


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
