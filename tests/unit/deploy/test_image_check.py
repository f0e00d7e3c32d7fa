"""`make image-check`'s own logic, without building anything: what it reads from the compiled pipeline and
the rendered manifests, how it carries the host's pip settings into the build, and how it skips."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import image_check as ic
from tests.unit.deploy.conftest import ROOT


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
        [sys.executable, "-m", "tests.image_check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "SKIPPED: podman is not installed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


class EngineAPI(http.server.ThreadingHTTPServer):
    """The few Docker Engine API calls a kfp.local step makes, served on loopback for one container whose
    fate the test sets: `exit_code` is what `wait` reads, or None when the container was removed once started
    (auto-remove) before anyone read its code, as podman does for a step that exits quickly."""

    exit_code: int | None
    calls: list[str]
    started: bool


IMAGE = {"Id": "sha256:1", "RepoTags": ["step:latest"], "RepoDigests": []}


class EngineHandler(http.server.BaseHTTPRequestHandler):
    server: EngineAPI

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        path = self.path.split("?")[0]
        path = path.split("/", 2)[2] if path.startswith("/v1.") else path.lstrip("/")
        self.server.calls.append(f"{method} {path}")
        if int(self.headers.get("Content-Length") or 0):
            self.rfile.read(int(self.headers["Content-Length"]))
        gone = self.server.exit_code is None and self.server.started
        if path == "version":
            self._answer(200, {"ApiVersion": "1.41", "Version": "20.10.0"})
        elif path == "info":
            self._answer(200, {"SecurityOptions": []})
        elif path == "images/json":
            self._answer(200, [IMAGE])
        elif path == "images/sha256:1/json":
            self._answer(200, IMAGE)
        elif path == "containers/create":
            self._answer(201, {"Id": "c0ffee", "Warnings": []})
        elif path == "containers/c0ffee/start":
            self.server.started = True
            self._answer(204)
        elif gone:
            self._answer(404, {"message": "no such container: c0ffee"})
        elif path == "containers/c0ffee/json":
            self._answer(200, {"Id": "c0ffee", "Name": "/step", "Config": {"Tty": False}, "State": {}})
        elif path == "containers/c0ffee/logs":
            self._answer(200)
        elif path == "containers/c0ffee/wait":
            self._answer(200, {"StatusCode": self.server.exit_code, "Error": None})
        elif path == "containers/c0ffee" and method == "DELETE":
            self._answer(204)
        else:
            self._answer(500, {"message": f"unexpected {method} {path}"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


@pytest.mark.parametrize(
    ("exit_code", "status"), [(None, "FAILURE"), (3, "FAILURE"), (0, "SUCCESS")], ids=["gone", "3", "0"]
)
def test_a_step_whose_exit_code_was_never_read_counts_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int | None, status: str
) -> None:
    """kfp.local's DockerRunner took a container that auto-remove took before `wait` for a success."""
    from kfp import local
    from kfp.local import docker_task_handler

    engine = EngineAPI(("127.0.0.1", 0), EngineHandler)
    engine.exit_code, engine.calls, engine.started = exit_code, [], False
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{engine.server_address[1]}")
        monkeypatch.setattr(docker_task_handler, "run_docker_container", ic.run_step_container)
        handler = docker_task_handler.DockerTaskHandler(
            image="step", full_command=["python", "-c", "pass"], pipeline_root=str(tmp_path),
            runner=local.DockerRunner(),
        )  # fmt: skip
        assert handler.run().name == status
    finally:
        engine.shutdown()
        engine.server_close()
    assert "POST containers/create" in engine.calls and "POST containers/c0ffee/wait" in engine.calls
    assert engine.calls[-1] == "DELETE containers/c0ffee"  # removed only once its code was read (or not)
