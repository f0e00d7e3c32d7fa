"""`dataset import URL`: a real HTTP server on loopback serving a Penn-Fudan-format archive, with range
requests and what a download meets: a dropped connection, 404, timeout, a web page, a wrong checksum."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli
from tests.unit.data.importers.test_pennfudan import build_pennfudan


class Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    drop_first: set[str]  # paths whose first answer is cut off halfway
    requests: list[tuple[str, str | None]]


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Range")))
        if self.path == "/slow.zip":
            threading.Event().wait(3)
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in self.server.drop_first:
            self.server.drop_first.discard(self.path)
            self.wfile.write(body[start : len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Server]]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files, httpd.drop_first, httpd.requests = {}, set(), []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def pennfudan_zip(tmp_path: Path) -> bytes:
    build_pennfudan(
        tmp_path / "src" / "PennFudanPed",
        {"FudanPed00001": [(5, 6, 30, 60)], "PennPed00002": [(1, 1, 40, 80)]},
    )
    archive = shutil.make_archive(str(tmp_path / "PennFudanPed"), "zip", root_dir=tmp_path / "src")
    return Path(archive).read_bytes()


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own temporary folder (CLI subprocesses included), so "nothing left behind" is checked
    without seeing the downloads of tests running beside it on another worker."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))


def leftovers() -> list[str]:
    return [p.name for p in Path(tempfile.gettempdir()).glob("modelopsx-download-*")]


def test_import_from_url_resumes_a_dropped_download_and_checks_the_sha256(
    tmp_path: Path, server: tuple[str, Server], pennfudan_zip: bytes
) -> None:
    url, httpd = server
    httpd.files["/PennFudanPed.zip"] = pennfudan_zip
    httpd.drop_first.add("/PennFudanPed.zip")
    before = leftovers()
    digest = hashlib.sha256(pennfudan_zip).hexdigest()
    done = run_cli(
        "dataset",
        "import",
        f"{url}/PennFudanPed.zip",
        "--format",
        "pennfudan",
        "--out",
        tmp_path / "out",
        "--sha256",
        digest,
        "-q",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [a["bbox"] for a in data["annotations"]] == [[4, 5, 26, 55], [0, 0, 40, 80]]
    ranges = [r for path, r in httpd.requests if path == "/PennFudanPed.zip"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(pennfudan_zip) // 2}-"  # resumed, not restarted
    assert leftovers() == before


def test_an_archive_url_without_a_suffix_is_recognised_by_its_content(
    tmp_path: Path, server: tuple[str, Server], pennfudan_zip: bytes
) -> None:
    url, httpd = server
    httpd.files["/download?id=42"] = pennfudan_zip
    done = run_cli(
        "dataset", "import", f"{url}/download?id=42", "--format", "pennfudan", "--out", tmp_path / "out", "-q"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "images" / "PennPed00002.png").is_file()


@pytest.mark.parametrize(
    ("path", "extra", "message"),
    [
        ("/missing.zip", [], "answered HTTP 404"),
        ("/page.html", [], "is not an archive"),
        ("/PennFudanPed.zip", ["--sha256", "0" * 64], "SHA-256 is"),
        ("/PennFudanPed.zip", ["--sha256", "abc"], "is not a SHA-256 hex digest"),
    ],
)
def test_bad_downloads_fail_clearly_and_leave_nothing(
    tmp_path: Path,
    server: tuple[str, Server],
    pennfudan_zip: bytes,
    path: str,
    extra: list[str],
    message: str,
) -> None:
    url, httpd = server
    httpd.files["/PennFudanPed.zip"] = pennfudan_zip
    httpd.files["/page.html"] = b"<html><body>Download the dataset here</body></html>"
    before = leftovers()
    done = run_cli(
        "dataset", "import", f"{url}{path}", "--format", "pennfudan", "--out", tmp_path / "out", "-q", *extra
    )
    assert_clean_failure(done, message)
    assert done.returncode == 2 and not (tmp_path / "out").exists() and leftovers() == before


def test_a_server_that_never_answers_times_out_after_retries(
    tmp_path: Path, server: tuple[str, Server]
) -> None:
    from modelopsx.data.download import download
    from modelopsx.errors import DatasetError

    url, httpd = server
    with pytest.raises(DatasetError, match="in 2 attempts: .*timed out"):
        download(f"{url}/slow.zip", tmp_path, timeout=0.5, attempts=2, backoff_s=0.01)
    assert [p for p, _ in httpd.requests] == ["/slow.zip", "/slow.zip"]


def test_an_archive_that_would_expand_past_the_limit_is_refused(
    tmp_path: Path, server: tuple[str, Server]
) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("PennFudanPed/zeros.bin", "w") as f:
        for _ in range(256):
            f.write(bytes(1 << 20))
    url, httpd = server
    httpd.files["/bomb.zip"] = bomb.read_bytes()
    before = leftovers()
    done = run_cli("dataset", "import", f"{url}/bomb.zip", "--format", "pennfudan", "--out", tmp_path / "out")
    assert_clean_failure(done, "expands to 256 MiB", "decompression bomb", "nothing was extracted")
    assert not (tmp_path / "out").exists() and leftovers() == before
