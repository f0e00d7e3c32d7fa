"""Evaluation curves as DVC plots data: small JSON tables (lists of points) that `dvc plots diff` can draw.

The full curves have one point per detection; a few hundred evenly spaced points keep the files small enough
to commit to git for every model version while drawing the same shape.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

CURVES_FILE = "curves.json"
PRECISION_RECALL = "precision_recall"
MISS_RATE_FPPI = "miss_rate_fppi"
MAX_POINTS = 200
# The CityPersons setup the design names first (mr2_reasonable); the plot shows that one.
MR_SETUP = "reasonable"


def _thin(columns: dict[str, Any], max_points: int) -> list[dict[str, float]]:
    arrays = {name: np.asarray(values, dtype=float).ravel() for name, values in columns.items()}
    length = min((len(a) for a in arrays.values()), default=0)
    if length == 0:
        return []
    index = np.unique(np.linspace(0, length - 1, min(length, max_points)).round().astype(int))
    rows = []
    for i in index:
        row = {name: float(a[i]) for name, a in arrays.items()}
        if all(math.isfinite(v) for v in row.values()):
            rows.append({name: round(v, 6) for name, v in row.items()})
    return rows


def plot_tables(curves: dict[str, Any], max_points: int = MAX_POINTS) -> dict[str, list[dict[str, float]]]:
    """{"precision_recall": [{recall, precision}], "miss_rate_fppi": [{fppi, miss_rate}]} from the curves
    of an EvaluationResult; a curve that is absent (no positives) is left out."""
    tables: dict[str, list[dict[str, float]]] = {}
    pr = curves.get("pr") or {}
    if len(pr.get("recall", ())) and len(pr.get("precision", ())):
        tables[PRECISION_RECALL] = _thin({"recall": pr["recall"], "precision": pr["precision"]}, max_points)
    mr = (curves.get("mr_fppi") or {}).get(MR_SETUP) or {}
    if len(mr.get("fppi", ())) and len(mr.get("miss_rate", ())):
        tables[MISS_RATE_FPPI] = _thin({"fppi": mr["fppi"], "miss_rate": mr["miss_rate"]}, max_points)
    return {name: rows for name, rows in tables.items() if rows}


def write_curves(curves: dict[str, Any], path: Path) -> Path:
    """Write the plot tables (see plot_tables) as one JSON file, e.g. beside evaluation.json."""
    path.write_text(json.dumps(plot_tables(curves), sort_keys=True))
    return path
