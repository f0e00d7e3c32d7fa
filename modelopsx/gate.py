"""The promotion gate: a policy and a decision, following TFX Evaluator semantics.

Per metric, a policy may set a *value threshold* (lower_bound / upper_bound on the candidate alone) and a
*change threshold* against the champion (direction, absolute, relative). As in TFX, change thresholds are
signed: with ``higher_is_better`` a check passes when ``candidate - champion >= absolute`` and
``(candidate - champion) / |champion| >= relative``; with ``lower_is_better`` when the difference is
``<= absolute`` and the ratio ``<= relative``. So ``absolute: 0`` means "no worse", ``absolute: -0.01``
tolerates a drop of 0.01. On top of that, ``require_improvement`` demands that at least one listed metric is
strictly better (the mission's default), and ``significance`` optionally requires a paired-bootstrap interval
of the gain that excludes zero.

A missing (absent or None) candidate metric fails its checks. Without a champion only value thresholds apply.
The outcome is a `Decision` record ("promote" or "keep"), never an exception.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from modelopsx.errors import UserError

Direction = Literal["higher_is_better", "lower_is_better"]
DIRECTIONS: tuple[str, ...] = ("higher_is_better", "lower_is_better")

# Metric names of DESIGN.md with the direction that counts as better.
METRIC_DIRECTIONS: dict[str, Direction] = {
    "precision": "higher_is_better",
    "recall": "higher_is_better",
    "f1": "higher_is_better",
    "accuracy": "higher_is_better",
    "ap50": "higher_is_better",
    "ap": "higher_is_better",
    "mr2_reasonable": "lower_is_better",
    "mr2_all": "lower_is_better",
    "mr2_heavy": "lower_is_better",
    "mr2_small": "lower_is_better",
}
DEFAULT_METRICS = ("accuracy", "precision", "recall")


class PolicyError(UserError):
    """A gate policy file or string is malformed."""


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


def _bad(message: str) -> PolicyError:
    return PolicyError(
        message,
        hint='a policy looks like {"metrics": {"accuracy": {"value": {"lower_bound": 0.5}, "change": '
        '{"direction": "higher_is_better", "absolute": 0}}}, "require_improvement": ["accuracy"]}',
    )


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"value"}:  # TFX style {"value": x}
        value = value["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"gate policy: {where} must be a finite number, got {value!r}")
    return float(value)


def _check_keys(data: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _bad(f"gate policy: {where} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _bad(f"gate policy: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
    return data


def _metric_name(name: Any, where: str) -> str:
    if name not in METRIC_DIRECTIONS:
        raise _bad(
            f"gate policy: unknown metric {name!r} in {where}; known metrics: {sorted(METRIC_DIRECTIONS)}"
        )
    return str(name)


@dataclass(frozen=True)
class ValueThreshold:
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class ChangeThreshold:
    direction: Direction
    absolute: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class MetricThreshold:
    value: ValueThreshold | None = None
    change: ChangeThreshold | None = None


@dataclass(frozen=True)
class SignificancePolicy:
    metric: str
    n_resamples: int = 1000
    seed: int = 0

    @property
    def direction(self) -> Direction:
        return METRIC_DIRECTIONS[self.metric]


@dataclass(frozen=True)
class GatePolicy:
    metrics: dict[str, MetricThreshold] = field(default_factory=dict)
    require_improvement: tuple[str, ...] = ()
    min_improvement: float = 0.0
    significance: SignificancePolicy | None = None

    @classmethod
    def default(cls) -> GatePolicy:
        """No worse on accuracy, precision and recall, and strictly better on at least one of them."""
        no_worse = {
            m: MetricThreshold(change=ChangeThreshold("higher_is_better", absolute=0.0))
            for m in DEFAULT_METRICS
        }
        return cls(metrics=no_worse, require_improvement=DEFAULT_METRICS)

    @classmethod
    def from_dict(cls, data: Any) -> GatePolicy:
        data = _check_keys(
            data, {"metrics", "require_improvement", "min_improvement", "significance"}, "policy"
        )
        metrics: dict[str, MetricThreshold] = {}
        for name, spec in _check_keys(data.get("metrics") or {}, set(METRIC_DIRECTIONS), "metrics").items():
            where = f"metrics.{name}"
            spec = _check_keys(spec or {}, {"value", "change"}, where)
            value = change = None
            if spec.get("value") is not None:
                v = _check_keys(spec["value"], {"lower_bound", "upper_bound"}, f"{where}.value")
                value = ValueThreshold(
                    _number(v.get("lower_bound"), f"{where}.value.lower_bound"),
                    _number(v.get("upper_bound"), f"{where}.value.upper_bound"),
                )
                if value.lower_bound is None and value.upper_bound is None:
                    raise _bad(f"gate policy: {where}.value needs lower_bound and/or upper_bound")
                if (
                    value.lower_bound is not None
                    and value.upper_bound is not None
                    and value.lower_bound > value.upper_bound
                ):
                    raise _bad(f"gate policy: {where}.value has lower_bound > upper_bound")
            if spec.get("change") is not None:
                c = _check_keys(spec["change"], {"direction", "absolute", "relative"}, f"{where}.change")
                direction = str(c.get("direction") or METRIC_DIRECTIONS[name]).lower()
                if direction not in DIRECTIONS:
                    raise _bad(
                        f"gate policy: {where}.change.direction must be one of {list(DIRECTIONS)}, "
                        f"got {c.get('direction')!r}"
                    )
                absolute = _number(c.get("absolute"), f"{where}.change.absolute")
                relative = _number(c.get("relative"), f"{where}.change.relative")
                if absolute is None and relative is None:
                    absolute = 0.0  # a bare direction means "no worse"
                change = ChangeThreshold(direction, absolute, relative)  # type: ignore[arg-type]
            metrics[name] = MetricThreshold(value, change)
        improve = data.get("require_improvement") or []
        if isinstance(improve, str):
            improve = [improve]
        if not isinstance(improve, list):
            raise _bad("gate policy: require_improvement must be a list of metric names")
        improvement = tuple(_metric_name(m, "require_improvement") for m in improve)
        min_improvement = _number(data.get("min_improvement", 0.0), "min_improvement") or 0.0
        if min_improvement < 0:
            raise _bad("gate policy: min_improvement must be >= 0")
        significance = None
        if data.get("significance") is not None:
            sig = data["significance"]
            if isinstance(sig, str):
                sig = {"metric": sig}
            sig = _check_keys(sig, {"metric", "n_resamples", "seed"}, "significance")
            n_resamples = sig.get("n_resamples", 1000)
            seed = sig.get("seed", 0)
            if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or n_resamples < 10:
                raise _bad("gate policy: significance.n_resamples must be an integer >= 10")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise _bad("gate policy: significance.seed must be an integer")
            significance = SignificancePolicy(
                _metric_name(sig.get("metric"), "significance.metric"), n_resamples, seed
            )
        return cls(metrics, improvement, min_improvement, significance)

    @classmethod
    def from_json_string(cls, text: str) -> GatePolicy:
        """A policy given inline, e.g. as a pipeline parameter; an empty string means the default policy."""
        if not text.strip():
            return cls.default()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(f"gate policy is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: Path) -> GatePolicy:
        """A YAML or JSON policy file (JSON is valid YAML)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise PolicyError(
                f"gate policy file {path} does not exist", hint="pass a YAML or JSON policy file"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise _bad(f"gate policy file {path} is not valid YAML/JSON: {exc}") from exc
        return cls.from_dict(data or {})

    @classmethod
    def load(cls, spec: str | Path | None) -> GatePolicy:
        """None/"" -> default; an inline JSON object string -> parsed; anything else -> a file path."""
        if spec is None or (isinstance(spec, str) and not spec.strip()):
            return cls.default()
        if isinstance(spec, str) and spec.lstrip().startswith("{"):
            return cls.from_json_string(spec)
        return cls.from_file(Path(spec))

    def to_dict(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        for name, t in self.metrics.items():
            entry: dict[str, Any] = {}
            if t.value is not None:
                entry["value"] = {"lower_bound": t.value.lower_bound, "upper_bound": t.value.upper_bound}
            if t.change is not None:
                entry["change"] = {
                    "direction": t.change.direction,
                    "absolute": t.change.absolute,
                    "relative": t.change.relative,
                }
            metrics[name] = entry
        out: dict[str, Any] = {
            "metrics": metrics,
            "require_improvement": list(self.require_improvement),
            "min_improvement": self.min_improvement,
        }
        if self.significance is not None:
            out["significance"] = {
                "metric": self.significance.metric,
                "n_resamples": self.significance.n_resamples,
                "seed": self.significance.seed,
            }
        return out


@dataclass
class Check:
    """One evaluated condition of the policy."""

    metric: str
    kind: Literal["value", "change", "improvement", "significance"]
    passed: bool
    reason: str
    candidate: float | None = None
    champion: float | None = None
    delta: float | None = None
    relative_delta: float | None = None
    threshold: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return _json_safe(
            {
                "metric": self.metric,
                "kind": self.kind,
                "passed": self.passed,
                "reason": self.reason,
                "candidate": self.candidate,
                "champion": self.champion,
                "delta": self.delta,
                "relative_delta": self.relative_delta,
                "threshold": self.threshold,
                "interval": list(self.interval) if self.interval is not None else None,
            }
        )


@dataclass
class Decision:
    decision: Literal["promote", "keep"]
    reason: str
    checks: list[Check]
    candidate_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None] | None
    policy: dict[str, Any]
    candidate: dict[str, Any] = field(default_factory=dict)  # identity/lineage of the challenger
    champion: dict[str, Any] | None = None  # identity/lineage of the champion, None when there is none
    significance: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
            "candidate_metrics": self.candidate_metrics,
            "champion_metrics": self.champion_metrics,
            "candidate": self.candidate,
            "champion": self.champion,
            "significance": self.significance,
            "policy": self.policy,
            "created_at": self.created_at,
        }

    def to_markdown(self) -> str:
        head = "PROMOTE" if self.promote else "KEEP champion"
        lines = [f"# Gate decision: **{head}**", "", f"{self.reason}", ""]
        if self.champion is None and self.champion_metrics is None:
            lines += ["No champion yet: only value thresholds apply.", ""]
        present = set(self.candidate_metrics) | set(self.champion_metrics or {})
        names = [m for m in METRIC_DIRECTIONS if m in present] + sorted(present - set(METRIC_DIRECTIONS))
        lines += ["| metric | candidate | champion | delta |", "|---|---:|---:|---:|"]
        for m in names:
            cand = self.candidate_metrics.get(m)
            champ = (self.champion_metrics or {}).get(m)
            delta = cand - champ if cand is not None and champ is not None else None
            lines.append(f"| {m} | {_fmt(cand)} | {_fmt(champ)} | {_fmt(delta, signed=True)} |")
        lines += ["", "| check | metric | result | detail |", "|---|---|---|---|"]
        for c in self.checks:
            mark = "pass" if c.passed else "**FAIL**"
            lines.append(f"| {c.kind} | {c.metric} | {mark} | {c.reason} |")
        if self.significance:
            s = self.significance
            lines += [
                "",
                f"Paired bootstrap on `{s.get('metric')}`: delta {_fmt(s.get('delta'), signed=True)}, "
                f"interval [{_fmt(s.get('low'), signed=True)}, {_fmt(s.get('high'), signed=True)}]",
            ]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write decision.json and decision.md into out_dir."""
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / "decision.json", out_dir / "decision.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _value_of(metrics: dict[str, Any] | None, name: str) -> float | None:
    if metrics is None:
        return None
    value = metrics.get(name)
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        return None
    return float(value)


def _value_check(name: str, cand: float | None, t: ValueThreshold) -> Check:
    threshold = {"lower_bound": t.lower_bound, "upper_bound": t.upper_bound}
    if cand is None:
        return Check(name, "value", False, f"candidate {name} is missing or undefined", threshold=threshold)
    if t.lower_bound is not None and cand < t.lower_bound:
        return Check(
            name,
            "value",
            False,
            f"{name} {cand:.4f} is below the lower bound {t.lower_bound:.4f}",
            candidate=cand,
            threshold=threshold,
        )
    if t.upper_bound is not None and cand > t.upper_bound:
        return Check(
            name,
            "value",
            False,
            f"{name} {cand:.4f} is above the upper bound {t.upper_bound:.4f}",
            candidate=cand,
            threshold=threshold,
        )
    return Check(name, "value", True, f"{name} {cand:.4f} within bounds", candidate=cand, threshold=threshold)


def _ratio(delta: float, champ: float) -> float:
    if champ != 0:
        return delta / abs(champ)
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


def _change_check(name: str, cand: float | None, champ: float | None, t: ChangeThreshold) -> Check:
    threshold = {"direction": t.direction, "absolute": t.absolute, "relative": t.relative}
    if cand is None:
        return Check(
            name,
            "change",
            False,
            f"candidate {name} is missing or undefined",
            champion=champ,
            threshold=threshold,
        )
    if champ is None:
        # An undefined champion value cannot be compared; a defined candidate value counts as better so that
        # a degenerate champion (no detections -> precision undefined) never blocks every successor.
        return Check(
            name,
            "change",
            True,
            f"champion {name} is undefined; candidate {cand:.4f} counts as better",
            candidate=cand,
            threshold=threshold,
        )
    delta = cand - champ
    rel = _ratio(delta, champ)
    higher = t.direction == "higher_is_better"
    problems = []
    if t.absolute is not None and not (delta >= t.absolute if higher else delta <= t.absolute):
        problems.append(f"change {delta:+.4f} {'<' if higher else '>'} required {t.absolute:+.4f}")
    if t.relative is not None and not (rel >= t.relative if higher else rel <= t.relative):
        problems.append(f"relative change {rel:+.2%} {'<' if higher else '>'} required {t.relative:+.2%}")
    if problems:
        worse = "worse than" if (delta < 0 if higher else delta > 0) else "not enough better than"
        reason = f"{name} {cand:.4f} is {worse} champion {champ:.4f}: " + "; ".join(problems)
        return Check(name, "change", False, reason, cand, champ, delta, rel, threshold)
    return Check(
        name,
        "change",
        True,
        f"{name} {cand:.4f} vs champion {champ:.4f} ({delta:+.4f})",
        cand,
        champ,
        delta,
        rel,
        threshold,
    )


def _improvement_check(policy: GatePolicy, candidate: dict[str, Any], champion: dict[str, Any]) -> Check:
    better: list[str] = []
    for name in policy.require_improvement:
        cand, champ = _value_of(candidate, name), _value_of(champion, name)
        if cand is None:
            continue
        if champ is None:
            better.append(f"{name} (champion undefined)")
            continue
        gain = cand - champ if METRIC_DIRECTIONS[name] == "higher_is_better" else champ - cand
        if gain > policy.min_improvement:
            better.append(f"{name} {gain:+.4f}")
    label = ",".join(policy.require_improvement)
    threshold = {"any_of": list(policy.require_improvement), "min_improvement": policy.min_improvement}
    if better:
        return Check(
            label, "improvement", True, "strictly better on " + ", ".join(better), threshold=threshold
        )
    return Check(
        label,
        "improvement",
        False,
        f"not strictly better than the champion on any of {', '.join(policy.require_improvement)} "
        f"(a tie keeps the champion)",
        threshold=threshold,
    )


def _significance_check(sig_policy: SignificancePolicy, result: SignificanceResult | None) -> Check:
    name = sig_policy.metric
    threshold = {
        "n_resamples": sig_policy.n_resamples,
        "requires": "interval excludes 0 in the better direction",
    }
    if result is None:
        return Check(
            name,
            "significance",
            False,
            "significance required but no paired bootstrap was computed",
            threshold=threshold,
        )
    low, high, delta = float(result.low), float(result.high), float(result.delta)
    if not all(math.isfinite(v) for v in (low, high, delta)):  # the metric is undefined for a model
        why = getattr(result, "reason", None) or f"{name} is undefined for one of the models"
        return Check(name, "significance", False, f"no significance interval: {why}", threshold=threshold)
    interval = (low, high)
    if sig_policy.direction == "higher_is_better":
        ok = low > 0
        reason = f"gain {delta:+.4f}, interval [{low:+.4f}, {high:+.4f}] " + (
            "excludes 0" if ok else "includes 0 or is negative: not significant"
        )
    else:
        ok = high < 0
        reason = f"change {delta:+.4f}, interval [{low:+.4f}, {high:+.4f}] " + (
            "below 0" if ok else "not entirely below 0: not significant"
        )
    return Check(name, "significance", ok, reason, delta=delta, threshold=threshold, interval=interval)


def decide(
    candidate: dict[str, float | None],
    champion: dict[str, float | None] | None,
    policy: GatePolicy,
    significance: SignificanceResult | None = None,
    *,
    candidate_info: dict[str, Any] | None = None,
    champion_info: dict[str, Any] | None = None,
) -> Decision:
    """Apply the policy; both metric dicts must come from the same test split (see registry.compare)."""
    checks: list[Check] = []
    for name, t in policy.metrics.items():
        if t.value is not None:
            checks.append(_value_check(name, _value_of(candidate, name), t.value))
    if champion is not None:
        for name, t in policy.metrics.items():
            if t.change is not None:
                checks.append(
                    _change_check(name, _value_of(candidate, name), _value_of(champion, name), t.change)
                )
        if policy.require_improvement:
            checks.append(_improvement_check(policy, candidate, champion))
        if policy.significance is not None:
            checks.append(_significance_check(policy.significance, significance))
    failed = [c for c in checks if not c.passed]
    if failed:
        verdict: Literal["promote", "keep"] = "keep"
        reason = "keep the champion: " + "; ".join(c.reason for c in failed)
        if champion is None:
            reason = "no champion, but the candidate fails value thresholds: " + "; ".join(
                c.reason for c in failed
            )
    else:
        verdict = "promote"
        if champion is None:
            reason = "no champion yet; " + (
                "value thresholds passed" if checks else "no value thresholds set"
            )
        else:
            passed = [c.reason for c in checks if c.kind in ("improvement", "significance")]
            reason = "candidate beats the champion: " + (
                "; ".join(passed) if passed else "all thresholds passed"
            )
    sig_json = None
    if significance is not None:
        to_json = getattr(significance, "to_json", None)
        sig_json = (
            dict(to_json())
            if callable(to_json)
            else {
                "delta": significance.delta,
                "low": significance.low,
                "high": significance.high,
                "p_value": significance.p_value,
            }
        )
        if policy.significance is not None:
            sig_json.setdefault("metric", policy.significance.metric)
        sig_json = _json_safe(sig_json)
    return Decision(
        verdict,
        reason,
        checks,
        _json_safe(dict(candidate)),
        _json_safe(dict(champion)) if champion is not None else None,
        policy.to_dict(),
        candidate=dict(candidate_info or {}),
        champion=dict(champion_info) if champion_info is not None else None,
        significance=sig_json,
    )


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities become None so the decision is strict JSON."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def metrics_from_json(data: Any) -> dict[str, float | None]:
    """Accept an EvaluationResult.to_json() ({"metrics": {...}}) or a flat {metric: value} mapping."""
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict):
        raise UserError(
            "metrics JSON must be an object of metric -> number",
            hint='e.g. {"accuracy": 0.9, "precision": 0.8, "recall": 0.7} or an evaluation metrics.json',
        )
    out: dict[str, float | None] = {}
    for key, value in data.items():
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            out[str(key)] = None if value is None else float(value)
    return out
