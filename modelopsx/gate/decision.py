"""The gate's decision record: its checks and compared metrics, written as decision.json and decision.md and
read back, checked, before anything acts on it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from modelopsx.errors import UserError
from modelopsx.gate.evidence import EvidenceError
from modelopsx.gate.policy import CONFIDENCE
from modelopsx.gate.render import fmt3, plain_sentence, render_lines, table_header, table_rows
from modelopsx.gate.verdict import PROMOTE, VERDICTS, Reference, Verdict
from modelopsx.metric_spec import METRIC_DIRECTIONS

DECISION_FILE = "decision.json"  # what `Decision.write` writes and the release path reads, beside decision.md


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
        return json_safe(
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
        text = f"{self.metric} {fmt3(self.champion)} -> {fmt3(self.candidate)}"
        details = []
        if self.delta is not None:
            details.append(f"{self.delta:+.3f}")
        if self.low is not None and self.high is not None:
            details.append(f"{self.confidence:.0%} CI {self.low:+.3f}..{self.high:+.3f}")
        if self.note:
            details.append(self.note)
        return text + (f" ({', '.join(details)})" if details else "")

    def to_json(self) -> dict[str, Any]:
        return json_safe(
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
                f"| {m} | {fmt3(v)} |" for m, v in self.candidate_metrics.items() if m in METRIC_DIRECTIONS
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


def json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities become None so the decision is strict JSON."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}
