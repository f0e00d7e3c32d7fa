"""The gate's evidence checks: fail closed.

Evidence the gate cannot trust (missing, non-numeric, NaN/inf or out-of-range metrics) raises `EvidenceError`
before any decision is made. A metric that is legitimately undefined (null, with the evaluation's reason) is
kept as null: the decision counts it against the candidate, or as the worst value for the champion.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from modelopsx.errors import UserError
from modelopsx.metric_spec import METRIC_DIRECTIONS


class EvidenceError(UserError):
    """Metrics the release path cannot trust: missing, unreadable, non-numeric, not finite or out of range."""


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
