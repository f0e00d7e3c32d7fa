"""Download a dataset archive from an http(s) URL for `dataset import`: progress bar, resume after a dropped
connection (HTTP Range), retries with backoff, a size limit, optional SHA-256 check.

A resume continues the same file only: the request carries `If-Range` with the first answer's strong ETag (or
its Last-Modified date), and a 206 answer must say, in Content-Range, that it starts where the partial file
ends. A file that changed on the server, or a server that can name no version, restarts the download from
byte 0, so two versions are never spliced into one archive. The size limit is checked against Content-Length
before anything is written and again while streaming. `temporary_download` owns the folder the file lands
in and removes it on every way out, SIGTERM and Ctrl-C included.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import re
import shutil
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlsplit

from modelopsx.data.archive import TAR_SUFFIXES, ZIP_SUFFIXES
from modelopsx.errors import DatasetError
from modelopsx.retry import RetryPolicy

CHUNK = 1 << 20
# The same ceiling the archive extraction applies to what an archive may expand to.
DEFAULT_MAX_BYTES = 64 << 30
SCHEMES = ("http", "https")
# Magic bytes of the archive kinds the importers extract, for URLs whose name does not say.
_MAGIC = (
    (b"PK\x03\x04", ".zip"),
    (b"\x1f\x8b", ".tar.gz"),
    (b"BZh", ".tar.bz2"),
    (b"\xfd7zXZ\x00", ".tar.xz"),
)
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def is_url(text: str) -> bool:
    """`scheme://...`, whatever the scheme: an unsupported one is refused by name, not looked up as a path."""
    return _URL.match(text) is not None


def check_url(url: str) -> None:
    match = _URL.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in SCHEMES:
        raise DatasetError(
            f"{url}: unsupported scheme {scheme + '://' if scheme else '(none)'}; only http:// and https:// "
            "URLs are downloaded",
            hint="download the archive yourself and pass its local path, or use an http(s) URL",
        )


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


class _Restart(Exception):
    """The partial file cannot be continued (the server's file changed, or it answered another range)."""


def _name_from_url(url: str) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "download"


def _archive_suffix(path: Path) -> str | None:
    head = path.read_bytes()[:512] if path.stat().st_size < 512 else path.open("rb").read(512)
    for magic, suffix in _MAGIC:
        if head.startswith(magic):
            return suffix
    if head[257:262] == b"ustar":
        return ".tar"
    return None


def _validator(headers: Message) -> str | None:
    """What names this version of the file for If-Range: a strong ETag, else the Last-Modified date."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):  # a weak ETag cannot guard a range (RFC 9110, 13.1.5)
        return etag
    return headers.get("Last-Modified")


class _Download:
    def __init__(self, url: str, target: Path, timeout: float, quiet: bool, max_bytes: int) -> None:
        self.url, self.target, self.timeout, self.quiet = url, target, timeout, quiet
        self.max_bytes = max_bytes
        self.total: int | None = None
        self.validator: str | None = None  # the version of the file the partial target holds

    def _too_large(self, size: int, how: str) -> DatasetError:
        return DatasetError(
            f"{self.url}: {how} {_size(size)}, more than the download limit of {_size(self.max_bytes)}; "
            "nothing imported",
            hint="check the URL; for a genuine archive this large, raise the limit with --max-download-size",
        )

    def _continues(self, response: http.client.HTTPResponse, have: int) -> bool:
        """Whether `response` to a ranged request is the rest of the same file (True), or the whole of a
        possibly newer one (False); _Restart when it is neither."""
        if response.status != 206:
            return False  # If-Range did not match (the file changed), or the server ignores ranges
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
        if match is None or int(match.group(1)) != have:
            answered = response.headers.get("Content-Range")
            raise _Restart(f"asked for the bytes from {have}, the server answered {answered!r}")
        total = match.group(3)
        etag = response.headers.get("ETag")
        if (total != "*" and self.total is not None and int(total) != self.total) or (
            etag and self.validator and self.validator.startswith('"') and etag != self.validator
        ):
            raise _Restart("the file changed on the server since the download started")
        return True

    def attempt(self) -> bool:
        """Fetch what is missing; True when the file is complete."""
        have = self.target.stat().st_size if self.target.exists() else 0
        if have and self.validator is None:  # nothing would prove the server still has the same file
            have = 0
        request = urllib.request.Request(self.url, headers={"User-Agent": "modelopsx"})
        if have:
            request.add_header("Range", f"bytes={have}-")
            request.add_header("If-Range", str(self.validator))
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            try:
                resumed = bool(have) and self._continues(response, have)
            except _Restart:
                self.target.unlink(missing_ok=True)
                self.validator, self.total = None, None
                raise
            length = response.headers.get("Content-Length")
            length = int(length) if length is not None and length.isdigit() else None
            if not resumed:
                have = 0
                self.validator = _validator(response.headers)
                self.total = length
            if length is not None and have + length > self.max_bytes:
                raise self._too_large(have + length, "the server announces")
            bar = None
            if not self.quiet:
                from tqdm import tqdm

                bar = tqdm(
                    total=self.total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    leave=False,
                    desc=f"download {self.target.name}",
                )
            try:
                size = have
                with self.target.open("ab" if resumed else "wb") as out:
                    while chunk := response.read(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self._too_large(size, "the server sent more than")
                        out.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        return self.total is None or self.target.stat().st_size >= self.total


def download(
    url: str,
    folder: Path,
    *,
    sha256: str | None = None,
    timeout: float = 30.0,
    attempts: int = 5,
    backoff_s: float = 1.0,
    quiet: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download `url` into `folder` and return the file, named so that the importers recognise the archive.

    A dropped or timed-out transfer resumes from the bytes already received when the server proves it is the
    same file; 4xx answers fail at once.
    """
    check_url(url)
    expected = (sha256 or "").strip().lower()
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise DatasetError(f"--sha256 {sha256!r} is not a SHA-256 hex digest", hint="64 hex digits")
    target = Path(folder) / _name_from_url(url)
    job = _Download(url, target, timeout, quiet, max_bytes)
    last = ""
    backoff = RetryPolicy(attempts, base_s=backoff_s, cap_s=math.inf, jitter=False)  # 1 s, 2 s, 4 s, ...
    for attempt in range(1, attempts + 1):
        try:
            if job.attempt():
                break
            last = f"the connection closed after {target.stat().st_size} of {job.total} bytes"
        except _Restart as exc:
            last = f"restarted from byte 0: {exc}"
            continue  # nothing wrong with the connection: start over at once
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRYABLE_STATUS:
                raise DatasetError(
                    f"{url} answered HTTP {exc.code} {exc.reason}",
                    hint="check the URL (and that it needs no login)",
                ) from None
            last = f"HTTP {exc.code} {exc.reason}"
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        if attempt < attempts:
            time.sleep(backoff.delay(attempt - 1))
    else:
        raise DatasetError(
            f"could not download {url} in {attempts} attempts: {last}",
            hint="check the network and the URL, then rerun",
        )
    if expected:
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise DatasetError(
                f"{url}: SHA-256 is {digest.hexdigest()}, expected {expected}; nothing imported",
                hint="the file differs from the one you expect: check the URL and --sha256",
            )
    if target.name.lower().endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        return target
    suffix = _archive_suffix(target)
    if suffix is None:
        raise DatasetError(
            f"{url} is not an archive (zip or tar); nothing imported",
            hint="pass the URL of the dataset's .zip or .tar(.gz) itself, not a web page",
        )
    return target.rename(target.with_name(target.name + suffix))


@contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """SIGTERM raises SystemExit (as Ctrl-C raises KeyboardInterrupt), so `finally` blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def temporary_download(
    url: str,
    *,
    sha256: str | None = None,
    quiet: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 30.0,
) -> Iterator[Path]:
    """Download `url` into a new temporary folder and yield the archive; the folder is removed when the block
    ends, however it ends: an error, Ctrl-C or SIGTERM."""
    check_url(url)
    with _exit_on_sigterm():
        folder = Path(tempfile.mkdtemp(prefix="modelopsx-download-"))
        try:
            yield download(url, folder, sha256=sha256, quiet=quiet, max_bytes=max_bytes, timeout=timeout)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
