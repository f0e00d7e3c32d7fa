"""A quick TCP probe of an http(s) endpoint, so commands fail with a clear message, not a traceback."""

from __future__ import annotations

import socket
from urllib.parse import urlparse


def http_host_port(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, or None when it is not one."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def connect_error(host: str, port: int, timeout: float) -> str | None:
    """Why nothing accepts a TCP connection at host:port, or None when something does."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)
