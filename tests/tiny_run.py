"""The tiny local run: the sizes and gate policy the end-to-end tests and `make image-check` share.

Tiny on purpose (a couple dozen small images, one epoch, 64x96 input): a run with these parameters proves the
wiring, the records and the release loop, not the model. It is no user-facing preset for that reason: a model
trained this way is of no use beyond checking that every step ran.
"""

from __future__ import annotations

import json
from typing import Any

# Synthetic scenes the first dataset version holds.
IMAGES = 24
# Pipeline parameters (names as the compiled pipelines declare them).
PARAMS: dict[str, Any] = {
    "epochs": 1,
    "input_height": 64,
    "input_width": 96,
    "batch_size": 4,
    "augment_copies": 1,
    "train_overrides": {"alpha": 0.35, "neck_channels": 16, "head_channels": 16, "lr_warmup_steps": 1},
}
# A one-epoch model does not beat the HOG floor of the default gate: without the floor the first model is
# promoted, so deploy (and, in the image, the model puller) run too.
NO_FLOOR: dict[str, Any] = {"require_improvement": ["recall"], "significance": None, "baseline": "none"}


def promoting(params: dict[str, Any] = PARAMS) -> dict[str, Any]:
    """`params` under the gate policy without the baseline floor."""
    return {**params, "gate_policy": json.dumps(NO_FLOOR)}
