"""Shared fixtures. Tests never touch the network beyond loopback."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Basin emulator fixtures (basin_emulator, basin_s3, basin_env) for every area's tests.
pytest_plugins = ["tests.fixtures_basin"]
