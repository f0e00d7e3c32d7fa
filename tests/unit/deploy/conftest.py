from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"


def render(kustomization_dir: Path) -> list[dict]:
    """Render a kustomization with kubectl's built-in kustomize (offline: no remote bases)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render the manifests (it ships kustomize)")
    out = subprocess.run([kubectl, "kustomize", str(kustomization_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())
