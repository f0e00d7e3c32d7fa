"""The gate's verdicts, and what a candidate is gated against (the champion, a baseline or nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelopsx.gate.policy import BASELINE_NAMES

Verdict = Literal["promote", "keep"]
PROMOTE: Verdict = "promote"
KEEP: Verdict = "keep"
VERDICTS: tuple[str, ...] = (PROMOTE, KEEP)


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
