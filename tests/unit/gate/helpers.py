"""What the gate's tests share: a champion's metrics, the promotion rule alone, a bootstrap result, a
decision."""

from __future__ import annotations

from dataclasses import dataclass

from modelopsx.gate.decide import decide
from modelopsx.gate.decision import Decision
from modelopsx.gate.policy import GatePolicy

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


def gated() -> Decision:
    return decide(
        dict(CHAMP, accuracy=0.9),
        CHAMP,
        GatePolicy.default(),
        {"f1": Bootstrap(0.05, 0.01, 0.1, 0.01)},
        candidate_info={"model_name": "m", "model_version": 2},
        champion_info={"model_name": "m", "model_version": 1},
    )
