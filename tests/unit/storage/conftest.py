"""Keep the CID cache of storage tests out of the user's home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_cid_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPSX_CACHE_DIR", str(tmp_path / "cid-cache"))
