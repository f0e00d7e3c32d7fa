"""Shared fixtures. Tests never touch the network beyond loopback."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Caches (TFRecord shards, file hashes) go to a throwaway folder, never to the user's ~/.cache.
os.environ.setdefault("MODELOPSX_CACHE_DIR", tempfile.mkdtemp(prefix="modelopsx-test-cache-"))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Basin emulator fixtures (basin_emulator, basin_s3, basin_env) for every area's tests.
pytest_plugins = ["tests.fixtures_basin"]
