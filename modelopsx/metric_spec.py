"""The metrics, once: each one's name, which direction is better, its worst value and what it measures, and
the confidence of the bootstrap intervals shown beside them.

Everything that names, ranks, documents or gates a metric reads it here: the evaluation itself, the
bootstrap, the report, the gate and the sweep. Kept free of heavy imports so the gate can read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher_is_better", "lower_is_better"]

# Every bootstrap interval (the report's, the `evaluate` command's, the gate's) is at this confidence unless
# a caller passes another; texts name it through `confidence_label`, never as a literal.
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: Direction
    description: str

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower_is_better"

    @property
    def worst(self) -> float:
        """Every metric is a share in [0, 1]: 0 is the worst rate, 1 the worst miss rate."""
        return 1.0 if self.lower_is_better else 0.0


def _miss_rate(name: str, rule: str) -> MetricSpec:
    return MetricSpec(
        name, "lower_is_better", f"Log-average miss rate over FPPI 1e-2..1e0, {rule} (lower is better)."
    )


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "precision",
        "higher_is_better",
        "Share of detections at or above the score threshold that match a pedestrian (IoU >= 0.5).",
    ),
    MetricSpec(
        "recall",
        "higher_is_better",
        "Share of pedestrians matched by a detection at or above the score threshold (IoU >= 0.5).",
    ),
    MetricSpec("f1", "higher_is_better", "Harmonic mean of precision and recall at the score threshold."),
    MetricSpec(
        "accuracy",
        "higher_is_better",
        "Share of images correctly called pedestrian-present / pedestrian-absent at the threshold.",
    ),
    MetricSpec(
        "ap50",
        "higher_is_better",
        "COCO average precision at IoU 0.5 (101-point interpolation, 100 detections per image).",
    ),
    MetricSpec(
        "ap",
        "higher_is_better",
        "COCO average precision over IoU 0.50:0.05:0.95 (101-point, 100 detections/image), = pycocotools.",
    ),
    _miss_rate("mr2_reasonable", "pedestrians >= 50 px, visibility >= 0.65"),
    _miss_rate("mr2_all", "pedestrians >= 20 px, visibility >= 0.2"),
    _miss_rate("mr2_heavy", "pedestrians >= 50 px, visibility 0.2..0.65"),
    _miss_rate("mr2_small", "pedestrians 50..75 px, visibility >= 0.65"),
)
METRIC_SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
# The quality metrics in their canonical order: what the gate can compare and a sweep can select by.
QUALITY_METRICS: tuple[str, ...] = tuple(METRIC_SPECS)
METRIC_DIRECTIONS: dict[str, Direction] = {spec.name: spec.direction for spec in METRICS}
LOWER_IS_BETTER = frozenset(spec.name for spec in METRICS if spec.lower_is_better)

# An evaluation also reports its operating threshold beside the metrics (no direction: not a quality).
SCORE_THRESHOLD_DOC = "Detections scoring at or above this count as predictions (max-F1 on validation)."
METRIC_DOCS: dict[str, str] = {
    **{spec.name: spec.description for spec in METRICS},
    "score_threshold": SCORE_THRESHOLD_DOC,
}
METRIC_NAMES: tuple[str, ...] = tuple(METRIC_DOCS)


def worst_value(metric: str) -> float:
    """The metric's worst value (what an undefined value counts as); 0 for a name that is not a metric."""
    spec = METRIC_SPECS.get(metric)
    return spec.worst if spec is not None else 0.0


def confidence_label(confidence: float = DEFAULT_CONFIDENCE) -> str:
    """ "95%" for 0.95: how every interval's confidence is written."""
    return f"{confidence:.0%}"
