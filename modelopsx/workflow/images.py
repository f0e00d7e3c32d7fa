"""Container images the KFP components run in; one setting each, so the images work and the pipelines agree.

The value is read when the component modules are imported (the decorator bakes it into the compiled YAML), so
`modelopsx compile` with MODELOPSX_IMAGE set writes pipelines for that image.
"""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/modelopsx/modelopsx:0.1.0"

MODELOPSX_IMAGE = os.environ.get("MODELOPSX_IMAGE") or DEFAULT_IMAGE
MODELOPSX_GPU_IMAGE = os.environ.get("MODELOPSX_GPU_IMAGE") or f"{MODELOPSX_IMAGE}-gpu"
