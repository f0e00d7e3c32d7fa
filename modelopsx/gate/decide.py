"""Deciding: a candidate's metrics against the champion's (or a baseline's) under a policy.

Metrics are checked first (`check_evidence`). A metric that is legitimately undefined (null, with the
evaluation's reason) fails the candidate's checks, and counts as that metric's worst value for the champion
(0, or 1 for miss rates): a champion that finds nothing is beaten by one that finds something, never
"nothing to beat". Otherwise the outcome is a `Decision` record ("promote" or "keep"), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from modelopsx.gate.decision import Check, Comparison, Decision, json_safe
from modelopsx.gate.evidence import check_evidence
from modelopsx.gate.policy import CONFIDENCE, ChangeThreshold, GatePolicy, SignificancePolicy, ValueThreshold
from modelopsx.gate.verdict import KEEP, PROMOTE, Reference, Verdict
from modelopsx.metric_spec import METRIC_DIRECTIONS, confidence_label, worst_value


class SignificanceResult(Protocol):
    """What the gate reads from modelopsx.evaluation.bootstrap.PairedBootstrapResult (delta = b - a)."""

    @property
    def delta(self) -> float: ...

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...

    @property
    def p_value(self) -> float: ...


def _value_check(name: str, cand: float | None, t: ValueThreshold) -> Check:
    threshold = {"lower_bound": t.lower_bound, "upper_bound": t.upper_bound}
    if cand is None:
        return Check(name, "value", False, f"candidate {name} is undefined", threshold=threshold)
    if t.lower_bound is not None and cand < t.lower_bound:
        reason = f"{name} {cand:.4f} is below the lower bound {t.lower_bound:.4f}"
        return Check(name, "value", False, reason, candidate=cand, threshold=threshold)
    if t.upper_bound is not None and cand > t.upper_bound:
        reason = f"{name} {cand:.4f} is above the upper bound {t.upper_bound:.4f}"
        return Check(name, "value", False, reason, candidate=cand, threshold=threshold)
    return Check(name, "value", True, f"{name} {cand:.4f} within bounds", candidate=cand, threshold=threshold)


def _ratio(delta: float, champ: float) -> float:
    if champ != 0:
        return delta / abs(champ)
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


def _change_check(name: str, cand: float | None, champ: float, t: ChangeThreshold, reference: str) -> Check:
    threshold = {"direction": t.direction, "absolute": t.absolute, "relative": t.relative}
    if cand is None:
        reason = f"candidate {name} is undefined"
        return Check(name, "change", False, reason, champion=champ, threshold=threshold)
    delta = cand - champ
    rel = _ratio(delta, champ)
    higher = t.direction == "higher_is_better"
    problems = []
    if t.absolute is not None and not (delta >= t.absolute if higher else delta <= t.absolute):
        problems.append(
            f"difference {delta:+.4f}, needs {'at least' if higher else 'at most'} {t.absolute:+.4f}"
        )
    if t.relative is not None and not (rel >= t.relative if higher else rel <= t.relative):
        problems.append(
            f"relative difference {rel:+.2%}, needs {'at least' if higher else 'at most'} {t.relative:+.2%}"
        )
    if problems:
        worse = "worse than" if (delta < 0 if higher else delta > 0) else "not enough better than"
        reason = f"{name} {cand:.4f} is {worse} the {reference} {champ:.4f}: " + "; ".join(problems)
        return Check(name, "change", False, reason, cand, champ, delta, rel, threshold)
    reason = f"{name} {cand:.4f} vs {reference} {champ:.4f} ({delta:+.4f})"
    return Check(name, "change", True, reason, cand, champ, delta, rel, threshold)


def _improvement_check(
    policy: GatePolicy, candidate: dict[str, float | None], champion: dict[str, float], reference: str
) -> Check:
    better: list[str] = []
    for name in policy.require_improvement:
        cand = candidate.get(name)
        if cand is None:
            continue
        gain = (
            cand - champion[name] if METRIC_DIRECTIONS[name] == "higher_is_better" else champion[name] - cand
        )
        if gain > policy.min_improvement:
            better.append(f"{name} {gain:+.4f}")
    label = ",".join(policy.require_improvement)
    threshold = {"any_of": list(policy.require_improvement), "min_improvement": policy.min_improvement}
    if better:
        return Check(
            label, "improvement", True, "strictly better on " + ", ".join(better), threshold=threshold
        )
    reason = (
        f"not strictly better than the {reference} on any of {', '.join(policy.require_improvement)} "
        "(a tie is not enough)"
    )
    return Check(label, "improvement", False, reason, threshold=threshold)


def _significance_check(
    sig_policy: SignificancePolicy, result: SignificanceResult | None, confidence: float
) -> Check:
    name = sig_policy.metric
    level = confidence_label(confidence)
    threshold = {
        "n_resamples": sig_policy.n_resamples,
        "requires": "interval excludes 0 in the better direction",
    }
    if result is None:
        reason = "significance required but no paired bootstrap was computed (no detections to resample)"
        return Check(name, "significance", False, reason, threshold=threshold)
    low, high, delta = float(result.low), float(result.high), float(result.delta)
    if not all(math.isfinite(v) for v in (low, high, delta)):  # the metric is undefined for a model
        why = getattr(result, "reason", None) or f"{name} is undefined for one of the models"
        return Check(name, "significance", False, f"no significance interval: {why}", threshold=threshold)
    interval = (low, high)
    if sig_policy.direction == "higher_is_better":
        ok = low > 0
        reason = f"{name} gain {delta:+.4f}, {level} interval [{low:+.4f}, {high:+.4f}]: " + (
            "a real gain (the interval lies above 0)"
            if ok
            else "not a real gain (the interval must lie above 0)"
        )
    else:
        ok = high < 0
        reason = f"{name} difference {delta:+.4f}, {level} interval [{low:+.4f}, {high:+.4f}]: " + (
            "a real gain (the interval lies below 0)"
            if ok
            else "not a real gain (the interval must lie below 0)"
        )
    return Check(name, "significance", ok, reason, delta=delta, threshold=threshold, interval=interval)


def _comparisons(
    policy: GatePolicy,
    candidate: dict[str, float | None],
    champion: dict[str, float | None],
    bootstrap: Mapping[str, SignificanceResult],
    undefined: Mapping[str, str],
    confidence: float,
) -> list[Comparison]:
    rows = []
    for name in policy.compared_metrics():
        cand, champ = candidate.get(name), champion.get(name)
        result = bootstrap.get(name)
        low = high = None
        if result is not None and math.isfinite(float(result.low)) and math.isfinite(float(result.high)):
            low, high = float(result.low), float(result.high)
        delta = None
        if cand is not None:
            delta = cand - (champ if champ is not None else worst_value(name))
        note = ""
        if champ is None:
            why = undefined.get(name)
            note = f"reference undefined{f' ({why})' if why else ''}: counts as {worst_value(name):g}"
        elif cand is None:
            note = "candidate undefined"
        rows.append(Comparison(name, champ, cand, delta, low, high, confidence, note))
    return rows


def decide(
    candidate: dict[str, float | None],
    champion: dict[str, float | None] | None,
    policy: GatePolicy,
    bootstrap: Mapping[str, SignificanceResult] | None = None,
    *,
    candidate_info: dict[str, Any] | None = None,
    champion_info: dict[str, Any] | None = None,
    champion_undefined: Mapping[str, str] | None = None,
    confidence: float = CONFIDENCE,
) -> Decision:
    """Apply the policy; both metric dicts must come from the same test split (see registry.compare).

    `champion` is the champion's (or the baseline's) metrics, None when there is neither. `bootstrap` maps
    metric names to paired-bootstrap results (candidate - champion) on that split, at `confidence` (the
    reasons and the table name it). Metrics are checked first
    (`check_evidence`): evidence the gate cannot trust raises EvidenceError instead of deciding.
    """
    bootstrap = dict(bootstrap or {})
    required = policy.compared_metrics()
    candidate = check_evidence(candidate, "candidate metrics", required)
    if champion is not None:
        champion = check_evidence(champion, "champion metrics", required)
    against = Reference.of(champion_info)
    reference = against.noun
    checks: list[Check] = []
    for name, t in policy.metrics.items():
        if t.value is not None:
            checks.append(_value_check(name, candidate.get(name), t.value))
    comparisons: list[Comparison] = []
    if champion is not None:
        # An undefined champion value (e.g. precision without detections) counts as the worst value.
        floor = {m: v if v is not None else worst_value(m) for m, v in champion.items()}
        for name, t in policy.metrics.items():
            if t.change is not None:
                checks.append(_change_check(name, candidate.get(name), floor[name], t.change, reference))
        if policy.require_improvement:
            checks.append(_improvement_check(policy, candidate, floor, reference))
        if policy.significance is not None:
            result = bootstrap.get(policy.significance.metric)
            checks.append(_significance_check(policy.significance, result, confidence))
        comparisons = _comparisons(
            policy, candidate, champion, bootstrap, champion_undefined or {}, confidence
        )
    failed = [c for c in checks if not c.passed]
    verdict: Verdict
    if failed:
        verdict = KEEP
        why = "; ".join(c.reason for c in failed)
        if champion is None:
            reason = f"no champion, but the candidate fails value thresholds: {why}"
        elif not against.is_baseline:
            reason = f"keep the champion: {why}"
        else:
            reason = f"no champion yet, and the candidate does not beat the {reference}: {why}"
    else:
        verdict = PROMOTE
        if champion is None:
            reason = "no champion yet; " + (
                "value thresholds passed" if checks else "no value thresholds set"
            )
        else:
            passed = [c.reason for c in checks if c.kind in ("improvement", "significance")]
            reason = f"candidate beats the {reference}: " + (
                "; ".join(passed) if passed else "all thresholds passed"
            )
    sig_json = None
    if policy.significance is not None and policy.significance.metric in bootstrap:
        sig_json = _significance_json(bootstrap[policy.significance.metric], policy.significance.metric)
    return Decision(
        verdict,
        reason,
        checks,
        json_safe(dict(candidate)),
        json_safe(dict(champion)) if champion is not None else None,
        policy.to_dict(),
        candidate=dict(candidate_info or {}),
        champion=dict(champion_info) if champion_info is not None else None,
        significance=sig_json,
        comparisons=comparisons,
    )


def _significance_json(result: SignificanceResult, metric: str) -> dict[str, Any]:
    to_json = getattr(result, "to_json", None)
    data = (
        dict(to_json())
        if callable(to_json)
        else {"delta": result.delta, "low": result.low, "high": result.high, "p_value": result.p_value}
    )
    data.setdefault("metric", metric)
    return json_safe(data)
