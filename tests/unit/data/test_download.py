"""`dataset import URL`: a real HTTP server on loopback serving a Penn-Fudan-format archive, with range
requests and what a download meets: a dropped connection, 404, timeout, a web page, a wrong checksum."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli
from tests.unit.data.importers.test_pennfudan import build_pennfudan


class Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    drop_first: set[str]  # paths whose first answer is cut off halfway
    changes: dict[str, bytes]  # the file at that path is replaced by this right after the cut
    quirk: str  # "": RFC 9110 ranges; "ignore-if-range": 206 whatever If-Range says; "wrong-range": from 0
    no_length: bool  # close-delimited bodies without Content-Length
    requests: list[tuple[str, str | None, str | None]]  # path, Range, If-Range
    stop: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-body (as a refused download does) is expected here: the default
        report would print a traceback into the stderr of the command under test, which runs in-process."""


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
        if self.path == "/slow.zip":
            threading.Event().wait(3)
            return
        if self.path == "/stall.zip":  # sends a little, then nothing until the test ends
            self.send_response(200)
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            self.wfile.write(b"PK\x03\x04" + bytes(3 << 19))  # more than one read of the client
            self.wfile.flush()
            server.stop.wait(60)
            return
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        if start and server.quirk == "" and self.headers.get("If-Range") not in (None, etag_of(body)):
            start = 0  # the file changed: the whole new version, as RFC 9110 says
        if start and server.quirk == "wrong-range":
            start = 0
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
        elif start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("ETag", etag_of(body))
        if not server.no_length:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in server.drop_first:
            server.drop_first.discard(self.path)
            self.wfile.write(body[start : len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            if self.path in server.changes:
                server.files[self.path] = server.changes.pop(self.path)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Server]]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files, httpd.drop_first, httpd.changes, httpd.requests = {}, set(), {}, []
    httpd.quirk, httpd.no_length, httpd.stop = "", False, threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.stop.set()
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
    ranges = [(r, if_range) for path, r, if_range in httpd.requests if path == "/PennFudanPed.zip"]
    assert ranges[0] == (None, None)
    assert ranges[1] == (f"bytes={len(pennfudan_zip) // 2}-", etag_of(pennfudan_zip))  # resumed, same file
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
    assert [p for p, _, _ in httpd.requests] == ["/slow.zip", "/slow.zip"]


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


@pytest.mark.parametrize("quirk", ["", "ignore-if-range", "wrong-range"])
def test_a_file_that_changed_during_a_resume_is_never_spliced(
    tmp_path: Path, server: tuple[str, Server], quirk: str
) -> None:
    """The connection drops halfway through version A; then the server holds version B. Whether the server
    honours If-Range (a 200 with B), ignores it (a 206 of B, with B's ETag) or answers another range, the
    result is the whole of B, never A's first half followed by B's second."""
    from modelopsx.data.download import download

    url, httpd = server
    old, new = b"A" * 300_000, b"B" * 300_000
    httpd.files["/data.zip"] = old
    httpd.drop_first.add("/data.zip")
    httpd.changes["/data.zip"] = new
    httpd.quirk = quirk
    result = download(f"{url}/data.zip", tmp_path, backoff_s=0.01)
    assert result.read_bytes() == new
    resumed = httpd.requests[1]
    assert resumed[1:] == (f"bytes={len(old) // 2}-", etag_of(old))  # Range guarded by the first ETag


@pytest.mark.parametrize("no_length", [False, True], ids=["content-length", "streamed"])
def test_a_download_past_the_size_limit_is_refused(
    tmp_path: Path, server: tuple[str, Server], no_length: bool
) -> None:
    from modelopsx.data.download import download
    from modelopsx.errors import DatasetError

    url, httpd = server
    httpd.files["/big.zip"] = bytes(3 << 20)
    httpd.no_length = no_length
    message = "the server sent more than" if no_length else "the server announces 3 MiB"
    with pytest.raises(DatasetError, match=f"{message}.*more than the download limit of 1 MiB"):
        download(f"{url}/big.zip", tmp_path, max_bytes=1 << 20, backoff_s=0.01)
    before = leftovers()
    done = run_cli(
        "dataset", "import", f"{url}/big.zip", "-f", "pennfudan", "-o", tmp_path / "out",
        "--max-download-size", "1M", "-q",
    )  # fmt: skip
    assert_clean_failure(done, "more than the download limit of 1 MiB")
    assert done.returncode == 2 and leftovers() == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_download_stopped_by_a_signal_leaves_nothing_behind(
    tmp_path: Path, server: tuple[str, Server], signum: int
) -> None:
    url, _ = server
    temp = tmp_path / "tmp"  # this process's own temporary folder: no other test's download is seen
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "modelopsx.cli", "dataset", "import", f"{url}/stall.zip",
         "-f", "pennfudan", "-o", str(tmp_path / "out"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)},
        # as from a terminal: a suite started in the background inherits SIGINT ignored, and so would the CLI
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        for _ in range(600):  # until part of the file is on disk
            if any(p.stat().st_size for p in temp.glob("modelopsx-download-*/*")):
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the download never started")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert list(temp.iterdir()) == [] and not (tmp_path / "out").exists(), stderr


def test_an_ftp_url_is_an_unsupported_scheme(tmp_path: Path) -> None:
    done = run_cli("dataset", "import", "ftp://example.org/data.zip", "-f", "voc", "-o", tmp_path / "out")
    assert_clean_failure(done, "unsupported scheme ftp://", "only http:// and https://")
    assert done.returncode == 2


def test_a_url_import_records_the_url_and_names_it_in_errors(
    tmp_path: Path, server: tuple[str, Server], pennfudan_zip: bytes
) -> None:
    url, httpd = server
    httpd.files["/PennFudanPed.zip"] = pennfudan_zip
    done = run_cli("dataset", "import", f"{url}/PennFudanPed.zip", "-f", "pennfudan", "-o", tmp_path / "ok")
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "ok" / "annotations.json").read_text())["info"]
    assert info["source"] == f"{url}/PennFudanPed.zip"

    build_pennfudan(tmp_path / "broken" / "PennFudanPed", {"FudanPed00001": [(30, 6, 5, 60)]})
    archive = shutil.make_archive(str(tmp_path / "broken"), "zip", root_dir=tmp_path / "broken")
    httpd.files["/broken.zip"] = Path(archive).read_bytes()
    done = run_cli("dataset", "import", f"{url}/broken.zip", "-f", "pennfudan", "-o", tmp_path / "out")
    assert_clean_failure(done, f"{url}/broken.zip/PennFudanPed/Annotation/FudanPed00001.txt:", "Xmax < Xmin")
    assert "modelopsx-" not in done.stderr and done.returncode == 2
