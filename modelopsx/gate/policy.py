"""The gate's policy: what a candidate must do to be promoted, following TFX Evaluator semantics.

Per metric, a policy may set a *value threshold* (lower_bound / upper_bound on the candidate alone) and a
*change threshold* against the champion (direction, absolute, relative). As in TFX, change thresholds are
signed: with ``higher_is_better`` a check passes when ``candidate - champion >= absolute`` and
``(candidate - champion) / |champion| >= relative``; with ``lower_is_better`` when the difference is
``<= absolute`` and the ratio ``<= relative``. So ``absolute: 0`` means "no worse", ``absolute: -0.01``
tolerates a drop of 0.01. On top of that, ``require_improvement`` demands that at least one listed metric is
strictly better, and ``significance`` requires the paired-bootstrap interval of the gain on one metric to
exclude zero. The default policy is the promotion rule plus that significance test on f1. The promotion rule:
a candidate is no worse than its reference (the champion, or before there is one the HOG baseline) on
accuracy, precision and recall, and strictly better on at least one of them; the significance test adds that
its f1 gain is real.

With no champion the candidate is gated against a reference (``baseline: hog``, the default: OpenCV's HOG
people detector scored on the same test split) with the same checks; ``baseline: none`` applies only value
thresholds then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelopsx.errors import UserError
from modelopsx.jsonfile import JSONContentError, parse_json
from modelopsx.metric_spec import DEFAULT_CONFIDENCE, METRIC_DIRECTIONS, Direction

DIRECTIONS: tuple[str, ...] = ("higher_is_better", "lower_is_better")
DEFAULT_METRICS = ("accuracy", "precision", "recall")  # the promotion rule's metrics (see above)
# The primary metric of the default significance test: at each model's own operating threshold, like the
# promotion rule's three metrics, and sensitive to both of them (precision and recall).
DEFAULT_SIGNIFICANCE_METRIC = "f1"
DEFAULT_N_RESAMPLES = 1000
# Bootstrap work and memory grow with resamples x test images; beyond this the interval no longer gets
# tighter in any way that matters, while 10^8 takes minutes and gigabytes.
N_RESAMPLES_RANGE = (10, 100_000)
CONFIDENCE = DEFAULT_CONFIDENCE  # of the paired-bootstrap intervals the gate asks for and shows
BASELINES = ("hog", "none")
DEFAULT_BASELINE = "hog"
# The one name of each baseline, in every sentence, table and record a decision is shown in.
BASELINE_NAMES = {"hog": "HOG baseline"}


class PolicyError(UserError):
    """A gate policy file or string is malformed."""


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


def _significance(sig: Any) -> SignificancePolicy | None:
    """`significance`: a metric name, a mapping, or null / false / "off" to turn the test off."""
    if sig is None or sig is False or (isinstance(sig, str) and sig.strip().lower() in ("off", "none", "")):
        return None
    if isinstance(sig, str):
        sig = {"metric": sig}
    sig = _check_keys(sig, {"metric", "n_resamples", "seed"}, "significance")
    n_resamples = sig.get("n_resamples", DEFAULT_N_RESAMPLES)
    seed = sig.get("seed", 0)
    low, high = N_RESAMPLES_RANGE
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or not low <= n_resamples <= high:
        raise _bad(
            f"gate policy: significance.n_resamples must be an integer in {low}..{high:,}, "
            f"got {n_resamples!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _bad("gate policy: significance.seed must be an integer")
    return SignificancePolicy(
        _metric_name(sig.get("metric", DEFAULT_SIGNIFICANCE_METRIC), "significance.metric"), n_resamples, seed
    )


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
    n_resamples: int = DEFAULT_N_RESAMPLES
    seed: int = 0

    @property
    def direction(self) -> Direction:
        return METRIC_DIRECTIONS[self.metric]


@dataclass(frozen=True)
class GatePolicy:
    metrics: dict[str, MetricThreshold] = field(default_factory=dict)
    require_improvement: tuple[str, ...] = ()
    min_improvement: float = 0.0
    significance: SignificancePolicy | None = field(
        default_factory=lambda: SignificancePolicy(DEFAULT_SIGNIFICANCE_METRIC)
    )
    baseline: str = DEFAULT_BASELINE  # the reference with no champion yet: "hog" or "none"

    @classmethod
    def default(cls) -> GatePolicy:
        """No worse on accuracy, precision and recall, strictly better on at least one of them, and a f1 gain
        whose paired-bootstrap interval (at CONFIDENCE) excludes zero; the first champion must beat the HOG
        baseline."""
        no_worse = {
            m: MetricThreshold(change=ChangeThreshold("higher_is_better", absolute=0.0))
            for m in DEFAULT_METRICS
        }
        return cls(metrics=no_worse, require_improvement=DEFAULT_METRICS)

    def compared_metrics(self) -> tuple[str, ...]:
        """Every metric a check reads, in the gate's canonical order."""
        used = set(self.metrics) | set(self.require_improvement)
        if self.significance is not None:
            used.add(self.significance.metric)
        return tuple(m for m in METRIC_DIRECTIONS if m in used)

    @classmethod
    def from_dict(cls, data: Any) -> GatePolicy:
        data = _check_keys(
            data,
            {"metrics", "require_improvement", "min_improvement", "significance", "baseline"},
            "policy",
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
        # Absent, the two fail-closed guards keep their defaults; they are turned off only explicitly.
        significance: SignificancePolicy | None = SignificancePolicy(DEFAULT_SIGNIFICANCE_METRIC)
        if "significance" in data:
            significance = _significance(data["significance"])
        baseline = data.get("baseline", DEFAULT_BASELINE)
        baseline = "none" if baseline is None or baseline is False else baseline
        if baseline not in BASELINES:
            raise _bad(f"gate policy: baseline must be one of {list(BASELINES)}, got {baseline!r}")
        if not metrics and not improvement and significance is None:
            raise _bad(
                "gate policy: it checks nothing, so it would promote any model; add metrics thresholds, "
                "require_improvement or significance"
            )
        return cls(metrics, improvement, min_improvement, significance, str(baseline))

    @classmethod
    def from_json_string(cls, text: str) -> GatePolicy:
        """A policy given inline, e.g. as a pipeline parameter; an empty string means the default policy."""
        if not text.strip():
            return cls.default()
        try:
            data = parse_json(text)
        except ValueError as exc:
            raise _bad(f"gate policy is not valid JSON: {exc}") from None
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
        text = path.read_text(encoding="utf-8")
        try:
            data = parse_json(text)  # JSON first, strictly: duplicate keys are refused, never one taken
        except JSONContentError as exc:
            raise _bad(f"gate policy file {path}: {exc}") from None
        except ValueError:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise _bad(f"gate policy file {path} is not valid YAML/JSON: {exc}") from None
            except RecursionError:
                raise _bad(f"gate policy file {path} is nested too deeply to read") from None
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
        out["significance"] = None
        if self.significance is not None:
            out["significance"] = {
                "metric": self.significance.metric,
                "n_resamples": self.significance.n_resamples,
                "seed": self.significance.seed,
            }
        out["baseline"] = self.baseline
        return out
