"""Rendering a gate decision: one rendering of a decision record (its JSON) for the terminal, the KFP UI,
`modelopsx run` and the HTML report: one plain sentence and a table of the compared metrics. The reference is
named for what it is, a champion version or, before there is a champion, the HOG baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from modelopsx.gate.policy import CONFIDENCE
from modelopsx.gate.verdict import PROMOTE, Reference
from modelopsx.metric_spec import METRIC_DIRECTIONS, confidence_label, worst_value


def fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


TABLE_HEADER = (
    "metric",
    "reference",
    "candidate",
    "difference",
    f"{confidence_label(CONFIDENCE)} interval",
    "verdict",
)


class _Record(Protocol):
    """A `gate.decision.Decision`, named by what rendering reads of it (the decision imports rendering)."""

    def to_json(self) -> dict[str, Any]: ...


DecisionLike = Mapping[str, Any] | _Record  # a Decision, or its JSON (decision.json, a registry record)


def _record(decision: DecisionLike) -> Mapping[str, Any]:
    return decision if isinstance(decision, Mapping) else decision.to_json()


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
        reference = fmt3(row.get("champion"))
        if row.get("champion") is None and row.get("candidate") is not None and row.get("delta") is not None:
            reference = f"n/a (as {worst_value(str(row.get('metric'))):g})"
        rows.append(
            [
                str(row.get("metric")),
                reference,
                fmt3(row.get("candidate")),
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
