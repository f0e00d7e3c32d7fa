"""Download a dataset archive from an http(s) URL for `dataset import`: progress bar, resume after a dropped
connection (HTTP Range), retries with backoff, optional SHA-256 check. The file lands in a folder the caller
owns and deletes, so a failed download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelopsx.data.archive import TAR_SUFFIXES, ZIP_SUFFIXES
from modelopsx.errors import DatasetError

CHUNK = 1 << 20
# Magic bytes of the archive kinds the importers extract, for URLs whose name does not say.
_MAGIC = (
    (b"PK\x03\x04", ".zip"),
    (b"\x1f\x8b", ".tar.gz"),
    (b"BZh", ".tar.bz2"),
    (b"\xfd7zXZ\x00", ".tar.xz"),
)
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


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


class _Download:
    def __init__(self, url: str, target: Path, timeout: float, quiet: bool) -> None:
        self.url, self.target, self.timeout, self.quiet = url, target, timeout, quiet
        self.total: int | None = None

    def attempt(self) -> bool:
        """Fetch what is missing; True when the file is complete."""
        have = self.target.stat().st_size if self.target.exists() else 0
        request = urllib.request.Request(self.url, headers={"User-Agent": "modelopsx"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if have and response.status != 206:  # the server ignored the range: start again
                have = 0
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit():
                self.total = have + int(length)
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
                with self.target.open("ab" if have else "wb") as out:
                    while chunk := response.read(CHUNK):
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
) -> Path:
    """Download `url` into `folder` and return the file, named so that the importers recognise the archive.

    A dropped or timed-out transfer resumes from the bytes already received; 4xx answers fail at once.
    """
    if not is_url(url):
        raise DatasetError(f"{url!r} is not an http(s) URL", hint="pass https://... or a local path")
    expected = (sha256 or "").strip().lower()
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise DatasetError(f"--sha256 {sha256!r} is not a SHA-256 hex digest", hint="64 hex digits")
    target = Path(folder) / _name_from_url(url)
    job = _Download(url, target, timeout, quiet)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            if job.attempt():
                break
            last = f"the connection closed after {target.stat().st_size} of {job.total} bytes"
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
            time.sleep(backoff_s * 2 ** (attempt - 1))
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
