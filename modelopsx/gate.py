"""The promotion gate: a policy and a decision, following TFX Evaluator semantics.

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

Fail closed: evidence the gate cannot trust (missing, non-numeric, NaN/inf or out-of-range metrics) raises
`EvidenceError` before any decision is made. A metric that is legitimately undefined (null, with the
evaluation's reason) fails the candidate's checks, and counts as that metric's worst value for the champion
(0, or 1 for miss rates): a champion that finds nothing is beaten by one that finds something, never
"nothing to beat". Otherwise the outcome is a `Decision` record ("promote" or "keep"), never an exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from modelopsx.errors import UserError
from modelopsx.evaluation.metric_spec import (
    DEFAULT_CONFIDENCE,
    METRIC_DIRECTIONS,
    Direction,
    confidence_label,
    worst_value,
)
from modelopsx.jsonfile import JSONContentError, parse_json

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
Verdict = Literal["promote", "keep"]
PROMOTE: Verdict = "promote"
KEEP: Verdict = "keep"
VERDICTS: tuple[str, ...] = (PROMOTE, KEEP)
DECISION_FILE = "decision.json"  # what `Decision.write` writes and the release path reads, beside decision.md


class PolicyError(UserError):
    """A gate policy file or string is malformed."""


class EvidenceError(UserError):
    """Metrics the release path cannot trust: missing, unreadable, non-numeric, not finite or out of range."""


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


@dataclass(frozen=True)
class Reference:
    """What a candidate was gated against: the champion (version N when known), a baseline (before there is
    a champion, e.g. the HOG baseline), or nothing (no champion and `baseline: none`)."""

    kind: Literal["champion", "baseline", "none"]
    version: int | None = None  # the champion's model version
    baseline: str | None = None  # the baseline's key in BASELINES

    @classmethod
    def of(cls, identity: Mapping[str, Any] | None) -> Reference:
        """From a decision's `champion` field: the champion's identity, {"baseline": "hog"}, or null."""
        if not identity:
            return cls("none")
        if identity.get("baseline"):
            return cls("baseline", baseline=str(identity["baseline"]))
        version = identity.get("model_version")
        return cls(
            "champion", version if isinstance(version, int) and not isinstance(version, bool) else None
        )

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"

    @property
    def noun(self) -> str:
        """ "HOG baseline" or "champion": what the checks' reasons call it, after "the"."""
        if self.baseline is not None:
            return BASELINE_NAMES.get(self.baseline, f"{self.baseline} baseline")
        return "champion"

    @property
    def name(self) -> str:
        """ "champion v3", "the champion", "the HOG baseline" or "no reference"."""
        if self.kind == "none":
            return "no reference"
        if self.kind == "champion" and self.version is not None:
            return f"champion v{self.version}"
        return f"the {self.noun}"


def _optional_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


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

    @classmethod
    def from_json(cls, data: Any, bad: _Refuse) -> Check:
        if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
            raise bad("a check is not an object with a true/false `passed`")
        kind, interval = data.get("kind"), data.get("interval")
        if kind not in ("value", "change", "improvement", "significance"):
            raise bad(f"a check has the unknown kind {kind!r}")
        numbers = ("candidate", "champion", "delta", "relative_delta")
        if not all(_optional_number(data.get(k)) for k in numbers) or not isinstance(
            data.get("threshold", {}), dict
        ):
            raise bad(f"the {kind} check of {data.get('metric')!r} has a malformed value")
        if interval is not None and not (
            isinstance(interval, list) and len(interval) == 2 and all(_optional_number(v) for v in interval)
        ):
            raise bad(f"the {kind} check of {data.get('metric')!r} has a malformed interval")
        return cls(
            str(data.get("metric")),
            kind,
            data["passed"],
            str(data.get("reason", "")),
            candidate=data.get("candidate"),
            champion=data.get("champion"),
            delta=data.get("delta"),
            relative_delta=data.get("relative_delta"),
            threshold=dict(data.get("threshold") or {}),
            interval=None if interval is None else (interval[0], interval[1]),
        )


@dataclass(frozen=True)
class Comparison:
    """One compared metric: champion -> candidate, the difference and its paired-bootstrap interval."""

    metric: str
    champion: float | None
    candidate: float | None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float = CONFIDENCE
    note: str = ""  # e.g. why a value is undefined

    def line(self) -> str:
        """`f1 0.412 -> 0.468 (+0.056, 95% CI +0.011..+0.102)`."""
        text = f"{self.metric} {_fmt3(self.champion)} -> {_fmt3(self.candidate)}"
        details = []
        if self.delta is not None:
            details.append(f"{self.delta:+.3f}")
        if self.low is not None and self.high is not None:
            details.append(f"{self.confidence:.0%} CI {self.low:+.3f}..{self.high:+.3f}")
        if self.note:
            details.append(self.note)
        return text + (f" ({', '.join(details)})" if details else "")

    def to_json(self) -> dict[str, Any]:
        return _json_safe(
            {
                "metric": self.metric,
                "champion": self.champion,
                "candidate": self.candidate,
                "delta": self.delta,
                "low": self.low,
                "high": self.high,
                "confidence": self.confidence,
                "note": self.note,
            }
        )

    @classmethod
    def from_json(cls, data: Any, bad: _Refuse) -> Comparison:
        numbers = ("champion", "candidate", "delta", "low", "high", "confidence")
        if not isinstance(data, dict) or not all(_optional_number(data.get(k)) for k in numbers):
            raise bad("a compared metric is not an object of numbers")
        return cls(
            str(data.get("metric")),
            champion=data.get("champion"),
            candidate=data.get("candidate"),
            delta=data.get("delta"),
            low=data.get("low"),
            high=data.get("high"),
            confidence=float(CONFIDENCE if data.get("confidence") is None else data["confidence"]),
            note=str(data.get("note", "")),
        )


class _Refuse(Protocol):
    def __call__(self, what: str) -> UserError: ...


DECISION_HINT = "use the decision.json the compare step wrote (or run compare again to decide anew)"


@dataclass
class Decision:
    decision: Verdict
    reason: str
    checks: list[Check]
    candidate_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None] | None
    policy: dict[str, Any]
    candidate: dict[str, Any] = field(default_factory=dict)  # identity/lineage of the challenger
    champion: dict[str, Any] | None = None  # identity of the champion (or the baseline), None when neither
    significance: dict[str, Any] | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def promote(self) -> bool:
        return self.decision == PROMOTE

    @property
    def confidence(self) -> float:
        """The confidence of the decision's intervals."""
        return self.comparisons[0].confidence if self.comparisons else CONFIDENCE

    @property
    def reference(self) -> Reference:
        """What the candidate was gated against: a champion version, a baseline, or nothing."""
        return Reference.of(self.champion)

    @classmethod
    def from_json(
        cls, data: Any, error: type[UserError] = EvidenceError, hint: str = DECISION_HINT, where: str = ""
    ) -> Decision:
        """A decision record read back (decision.json, an evaluation record), checked before anything acts on
        it: a verdict other than promote/keep, a check without a true/false `passed`, or any other malformed
        field is `error`, so the release path fails closed (keeps the champion) instead of guessing."""
        label = f"gate decision {where}".rstrip()

        def bad(what: str) -> UserError:
            return error(f"{label}: {what}", hint=hint)

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        verdict = data.get("decision")
        if verdict not in VERDICTS:
            raise bad(f"the verdict is {verdict!r}, neither 'promote' nor 'keep'")
        objects = {"candidate": False, "champion": True, "policy": False, "significance": True}
        for key, nullable in objects.items():
            value = data.get(key, None if nullable else {})
            if not (isinstance(value, dict) or (nullable and value is None)):
                raise bad(f"{key} is not an object")
        for key in ("candidate_metrics", "champion_metrics"):
            values = data.get(key, None if key == "champion_metrics" else {})
            if values is not None and not (
                isinstance(values, dict) and all(_optional_number(v) for v in values.values())
            ):
                raise bad(f"{key} is not an object of numbers")
        version = (data.get("champion") or {}).get("model_version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise bad(f"the champion's model_version {version!r} is not an integer")
        checks, comparisons = data.get("checks"), data.get("comparisons", [])
        if not isinstance(checks, list) or not isinstance(comparisons, list):
            raise bad("checks and comparisons must be lists")
        if not isinstance(data.get("reason"), str) or not isinstance(data.get("created_at", ""), str):
            raise bad("reason and created_at must be text")
        return cls(
            verdict,
            data["reason"],
            [Check.from_json(c, bad) for c in checks],
            dict(data.get("candidate_metrics") or {}),
            None if data.get("champion_metrics") is None else dict(data["champion_metrics"]),
            dict(data.get("policy") or {}),
            candidate=dict(data.get("candidate") or {}),
            champion=None if data.get("champion") is None else dict(data["champion"]),
            significance=None if data.get("significance") is None else dict(data["significance"]),
            comparisons=[Comparison.from_json(c, bad) for c in comparisons],
            created_at=str(data.get("created_at", "")),
        )

    @classmethod
    def read(cls, path: Path, error: type[UserError] = EvidenceError, hint: str = DECISION_HINT) -> Decision:
        """decision.json as written by `write`; missing, unreadable or malformed is `error`."""
        return cls.from_json(read_decision_json(path, error, hint), error, hint, str(path))

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
            "comparisons": [c.to_json() for c in self.comparisons],
            "candidate_metrics": self.candidate_metrics,
            "champion_metrics": self.champion_metrics,
            "candidate": self.candidate,
            "champion": self.champion,
            "significance": self.significance,
            "policy": self.policy,
            "created_at": self.created_at,
        }

    def summary_lines(self) -> list[str]:
        """The decision for a terminal: one plain sentence, then the table of compared metrics."""
        return render_lines(self.to_json())

    def to_markdown(self) -> str:
        """The decision for the KFP UI: the same sentence and table, then every check with its reason."""
        data = self.to_json()
        lines = [f"# Gate decision: **{self.decision}**", "", plain_sentence(data), ""]
        rows = table_rows(data)
        if rows:
            lines += ["| " + " | ".join(table_header(data)) + " |", "|---|---:|---:|---:|---|---|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
        elif self.candidate_metrics:
            lines += ["| metric | candidate |", "|---|---:|"]
            lines += [
                f"| {m} | {_fmt3(v)} |" for m, v in self.candidate_metrics.items() if m in METRIC_DIRECTIONS
            ]
        lines += ["", "| check | metric | result | detail |", "|---|---|---|---|"]
        for check in self.checks:
            mark = "pass" if check.passed else "**fail**"
            lines.append(f"| {check.kind} | {check.metric} | {mark} | {check.reason} |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write decision.json and decision.md into out_dir."""
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / DECISION_FILE, out_dir / "decision.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def read_decision_json(path: Path, error: type[UserError] = EvidenceError, hint: str = DECISION_HINT) -> Any:
    """The content of a decision.json as written (what its digest is taken of); `error` when it is missing or
    not valid JSON. `Decision.from_json` checks the content."""
    from modelopsx.jsonfile import read_json

    return read_json(Path(path), "gate decision", error, hint)


def decision_digest(decision: dict[str, Any]) -> str:
    """SHA-256 of a decision's content (its JSON with sorted keys): what compare records in the registry and
    deploy recomputes from the file it is handed, so an edited file matches no recorded decision."""
    import hashlib

    canonical = json.dumps(decision, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------------------------- rendering
# One rendering of a decision record (its JSON) for the terminal, the KFP UI, `modelopsx run` and the HTML
# report: one plain sentence and a table of the compared metrics. The reference is named for what it is, a
# champion version or, before there is a champion, the HOG baseline.

TABLE_HEADER = (
    "metric",
    "reference",
    "candidate",
    "difference",
    f"{confidence_label(CONFIDENCE)} interval",
    "verdict",
)


DecisionLike = Mapping[str, Any] | Decision  # a Decision, or its JSON (decision.json, a registry record)


def _record(decision: DecisionLike) -> Mapping[str, Any]:
    return decision.to_json() if isinstance(decision, Decision) else decision


def _confidence(decision: DecisionLike) -> float:
    """The confidence of a decision's intervals (each compared metric records it)."""
    rows = _record(decision).get("comparisons") or []
    found = [r.get("confidence") for r in rows if isinstance(r, Mapping)]
    return float(next((c for c in found if isinstance(c, int | float)), CONFIDENCE))


def reference_name(decision: DecisionLike) -> str:
    """ "champion v3", "the HOG baseline", or "no reference" (no champion and no baseline)."""
    return Reference.of(_record(decision).get("champion")).name


def candidate_name(decision: DecisionLike) -> str:
    version = (_record(decision).get("candidate") or {}).get("model_version")
    return "the candidate" if version is None else f"model v{version}"


def _gain(metric: str, delta: float | None) -> float | None:
    """The difference with its sign turned so that positive is better."""
    if delta is None:
        return None
    return -delta if METRIC_DIRECTIONS.get(metric) == "lower_is_better" else delta


def _interval_says(metric: str, low: float | None, high: float | None) -> str:
    """ "gain" or "loss" when the whole interval lies on one side of 0, else "" (could be chance)."""
    if low is None or high is None:
        return ""
    lo, hi = sorted((_gain(metric, low) or 0.0, _gain(metric, high) or 0.0))
    return "gain" if lo > 0 else "loss" if hi < 0 else ""


def _failed(decision: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    return [c for c in decision.get("checks") or [] if c.get("kind") == kind and not c.get("passed")]


def _significance_metric(decision: Mapping[str, Any]) -> str | None:
    significance = (decision.get("policy") or {}).get("significance")
    return (
        str(significance["metric"]) if isinstance(significance, dict) and significance.get("metric") else None
    )


def metric_verdict(decision: DecisionLike, row: Mapping[str, Any]) -> str:
    """A word or two on one compared metric: better, worse or same, and where the row has a paired-bootstrap
    interval, whether the difference is real (the whole interval on one side of 0) or may be chance."""
    decision = _record(decision)
    metric = str(row.get("metric"))
    if row.get("candidate") is None:
        return "undefined"
    gain = _gain(metric, row.get("delta"))
    if gain is None:
        return "n/a"
    failed_threshold = {
        str(c.get("metric")) for c in _failed(decision, "change") + _failed(decision, "value")
    }
    has_interval = row.get("low") is not None and row.get("high") is not None
    real = _interval_says(metric, row.get("low"), row.get("high"))
    if gain > 0:
        if metric in failed_threshold:
            return "not better enough"
        return (
            "better (real gain)" if real == "gain" else "better, may be chance" if has_interval else "better"
        )
    if gain < 0:
        if metric not in failed_threshold and metric != _significance_metric(decision):
            return "worse, within tolerance"
        return "worse, may be chance" if has_interval and real != "loss" else "worse"
    return "same"


def table_rows(decision: DecisionLike) -> list[list[str]]:
    """One row per compared metric, in TABLE_HEADER's order."""
    decision = _record(decision)
    rows = []
    for row in decision.get("comparisons") or []:
        low, high = row.get("low"), row.get("high")
        reference = _fmt3(row.get("champion"))
        if row.get("champion") is None and row.get("candidate") is not None and row.get("delta") is not None:
            reference = f"n/a (as {worst_value(str(row.get('metric'))):g})"
        rows.append(
            [
                str(row.get("metric")),
                reference,
                _fmt3(row.get("candidate")),
                "n/a" if row.get("delta") is None else f"{row['delta']:+.3f}",
                "n/a" if low is None or high is None else f"{low:+.3f} .. {high:+.3f}",
                metric_verdict(decision, row),
            ]
        )
    return rows


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _why_not(decision: Mapping[str, Any]) -> list[str]:
    """The failed checks in plain words."""
    why: list[str] = []
    worse = [
        str(c["metric"])
        for c in _failed(decision, "change")
        if (_gain(str(c["metric"]), c.get("delta")) or 0) < 0
    ]
    short = [str(c["metric"]) for c in _failed(decision, "change") if str(c["metric"]) not in worse]
    if worse:
        why.append(f"worse on {_and(worse)}")
    if short:
        why.append(f"not better enough on {_and(short)}")
    for check in _failed(decision, "value"):
        why.append(f"{check['metric']} is outside its required range")
    for check in _failed(decision, "improvement"):
        metrics = (check.get("threshold") or {}).get("any_of") or [check.get("metric")]
        why.append(f"better on none of {_and([str(m) for m in metrics])}")
    for check in _failed(decision, "significance"):
        metric = str(check.get("metric"))
        interval = check.get("interval")
        if not interval:
            why.append(f"{metric} could not be compared image by image")
        elif _interval_says(metric, interval[0], interval[1]) == "loss":
            if metric not in worse:
                why.append(f"{metric} is worse")
        elif (_gain(metric, check.get("delta")) or 0) > 0:
            why.append(f"its {metric} gain is too small to rule out chance")
        else:
            why.append(f"{metric} is not better")
    return why


def plain_sentence(decision: DecisionLike) -> str:
    """The decision in one sentence a newcomer can read."""
    decision = _record(decision)
    cand, ref = candidate_name(decision), reference_name(decision)
    promote = decision.get("decision") == PROMOTE
    why = _why_not(decision)
    because = f" ({'; '.join(why)})" if why else ""
    if not decision.get("champion"):
        if promote:
            return f"Promote: {cand} passes the value thresholds and becomes the champion (no reference)."
        return f"Keep: {cand} fails the value thresholds{because}, so it does not become the champion."
    baseline = Reference.of(decision.get("champion")).is_baseline
    if promote:
        rows = decision.get("comparisons") or []
        better = [str(r["metric"]) for r in rows if (_gain(str(r["metric"]), r.get("delta")) or 0) > 0]
        gains = f": better on {_and(better)}" if better else ""
        sig = _significance_metric(decision)
        if sig and any(str(r.get("metric")) == sig for r in rows):
            gains += f", and the {sig} gain is real"
        if baseline:
            return f"Promote: {cand} beats {ref}{gains}, so it becomes the first champion."
        return f"Promote: {cand} beats {ref}{gains}, so it becomes the new champion."
    if baseline:
        return f"Keep: {cand} does not beat {ref} yet{because}, so there is no champion yet."
    stays = "the champion stays" if ref == "the champion" else f"{ref} stays the champion"
    return f"Keep: {cand} does not beat {ref}{because}, so {stays}."


def text_table(header: Iterable[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """A plain text table with columns padded to their widest cell."""
    table = [list(header), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]


def table_header(decision: DecisionLike) -> list[str]:
    """TABLE_HEADER with the reference and the candidate named, e.g. "HOG baseline" and "model v1"."""
    ref = reference_name(decision).removeprefix("the ")
    ref = "reference" if ref == "no reference" else ref
    interval = f"{confidence_label(_confidence(decision))} interval"
    return [
        "metric",
        ref,
        candidate_name(decision).removeprefix("the "),
        TABLE_HEADER[3],
        interval,
        TABLE_HEADER[5],
    ]


def render_lines(decision: DecisionLike) -> list[str]:
    """The sentence, then the table of compared metrics."""
    decision = _record(decision)
    lines = [plain_sentence(decision)]
    rows = table_rows(decision)
    if rows:
        lines += ["", *text_table(table_header(decision), rows)]
    return lines


# ------------------------------------------------------------------------------------------------ evidence


def metrics_from_json(
    data: Any, who: str = "metrics", required: Iterable[str] = ()
) -> dict[str, float | None]:
    """The gate's view of a metrics JSON: an evaluation (`{"metrics": {...}, "undefined": {...}}`) or a flat
    `{metric: value}` mapping, checked strictly (see `check_evidence`)."""
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    return check_evidence(data, who, required)


def check_evidence(metrics: Any, who: str, required: Iterable[str] = ()) -> dict[str, float | None]:
    """Validate metric values before any decision: every known metric is null (undefined) or a finite number
    in [0, 1]; every `required` metric is present. Anything else raises EvidenceError, naming it."""
    hint = (
        f"the {who} must be an evaluation's metrics.json (or {{metric: value}}) with every metric the policy "
        "compares as a number in [0, 1] or null when undefined; re-run the evaluation that produced it"
    )
    if not isinstance(metrics, dict):
        raise EvidenceError(
            f"{who}: expected an object of metric -> number, got {type(metrics).__name__}", hint=hint
        )
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        name = str(key)
        if name not in METRIC_DIRECTIONS:
            continue  # counts, the operating threshold and unknown extras are not gate metrics
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvidenceError(f"{who}: {name} must be a number or null, got {value!r}", hint=hint)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise EvidenceError(f"{who}: {name} = {value!r} is not a finite number in [0, 1]", hint=hint)
        out[name] = float(value)
    missing = [m for m in required if m not in out]
    if missing:
        found = ", ".join(sorted(out)) or "none"
        raise EvidenceError(f"{who}: missing metric(s) {', '.join(missing)} (found: {found})", hint=hint)
    return out


# -------------------------------------------------------------------------------------------------- checks


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
        _json_safe(dict(candidate)),
        _json_safe(dict(champion)) if champion is not None else None,
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
    return _json_safe(data)


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities become None so the decision is strict JSON."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}
