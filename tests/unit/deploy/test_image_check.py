"""`make image-check`'s own logic, without building anything: what it reads from the compiled pipeline and
the rendered manifests, how it carries the host's pip settings into the build, and how it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelopsx.workflow import image_check as ic

from .conftest import ROOT


def test_reads_steps_image_and_secret_env_from_the_compiled_yaml() -> None:
    images = ic.compiled_images(ic.COMPILED_CPU)
    assert images and all(":" in image for image in images)
    secret = {"endpoint": "http://e", "access-key": "a", "secret-key": "s", "store": "t"}
    env = ic.compiled_secret_env(ic.COMPILED_CPU, secret)
    assert env == {
        "MODELOPSX_BASIN_ENDPOINT": "http://e",
        "MODELOPSX_BASIN_ACCESS_KEY": "a",
        "MODELOPSX_BASIN_SECRET_KEY": "s",
        "MODELOPSX_BASIN_STORE": "t",
    }
    # the tiny run only passes parameters the compiled pipeline declares
    assert set(ic.TINY_PARAMS) <= ic.pipeline_parameters(ic.COMPILED_CPU)


def test_container_env_and_command_resolve_like_kubernetes() -> None:
    basin = ic.render("basin/overlays/emulator")
    container = ic.pod_containers(ic.find(basin, "Deployment", "basin-s3"))["basin-s3"]
    env = ic.container_env(container, basin)
    secret = ic._data(ic.find(basin, "Secret", "modelopsx-basin"))
    assert env["MODELOPSX_BASIN_STORE"] == secret["store"] and env["HOME"] == "/home/basin"
    argv = ic.command_line(container, env)
    assert argv[:3] == ["modelopsx", "basin", "serve"]
    assert f"--create-store={secret['store']}" in argv  # $(MODELOPSX_BASIN_STORE) expanded
    assert ic.expand("$$(KEEP) $(NOPE) $(HOME)", env) == "$(KEEP) $(NOPE) /home/basin"


def test_default_base_comes_from_the_dockerfile() -> None:
    assert ic.dockerfile_default_base(ROOT / "images" / "Dockerfile").startswith("python:3.11")


def test_host_pip_settings_are_carried_into_the_build(tmp_path: Path) -> None:
    index = tmp_path / "pypi" / "simple"
    index.mkdir(parents=True)
    links = tmp_path / "wheels"
    links.mkdir()
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    listing = (
        f"global.extra-index-url='file://{index} https://mirror.example/simple'\n"
        f"global.find-links='{links}'\n:env:.cert='{cert}'\nglobal.timeout='60'\n"
    )
    settings = ic.pip_settings(listing, {"PIP_INDEX_URL": "https://pypi.example/simple", "HOME": "/root"})
    assert settings.build_args == {
        "PIP_EXTRA_INDEX_URL": f"file://{index} https://mirror.example/simple",
        "PIP_FIND_LINKS": str(links),
        "PIP_CERT": ic.CERT_IN_BUILD,
        "PIP_INDEX_URL": "https://pypi.example/simple",
    }
    assert sorted(settings.mounts) == sorted(
        [f"{index.parent}:{index.parent}:ro", f"{links}:{links}:ro", f"{cert}:{ic.CERT_IN_BUILD}:ro"]
    )
    assert ic.pip_settings("", {}).build_args == {}  # nothing configured: pip's defaults in the build


def test_step_results_are_read_from_the_runner_log() -> None:
    lines = [
        "10:00:01.500 - INFO - Executing task 'ingest'",
        "10:00:04.000 - INFO - Task 'ingest' finished with status SUCCESS",
        "10:00:04.100 - INFO - Executing task 'split'",
        "10:00:05.100 - ERROR - Task 'split' finished with status FAILURE",
    ]
    results = ic._step_results(lines)
    assert [(r.name, r.status) for r in results] == [("ingest", "SUCCESS"), ("split", "FAILURE")]
    assert abs(results[0].seconds - 2.5) < 1e-6


def test_skips_with_a_clear_message_without_podman(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty PATH: no podman, no kubectl
    result = subprocess.run(
        [sys.executable, "-m", "modelopsx.workflow.image_check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "SKIPPED: podman is not installed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
