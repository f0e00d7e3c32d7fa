"""The decision record: written, read back, and refused when malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.gate.decision import Decision
from modelopsx.gate.evidence import EvidenceError
from tests.unit.gate.helpers import gated


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
