"""The one number parser of the emulator's request layer.

Headers, query parameters and chunk sizes come from the network, so `int()` is too lenient for them: it
accepts Unicode digits (`²` passes `str.isdigit()` and then fails `int()`), signs, spaces and underscores.
Only plain ASCII digits count here, and a value longer than any real size is refused rather than parsed.
"""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")


def decimal_or_none(text: str | None) -> int | None:
    """The value of a string of ASCII digits (at most 19 of them), or None for anything else."""
    if text is None or _DECIMAL.fullmatch(text) is None:
        return None
    return int(text)


def hex_or_none(raw: bytes) -> int | None:
    """The value of ASCII hex digits (an HTTP or aws-chunked chunk size), or None for anything else."""
    if _HEX.fullmatch(raw) is None:
        return None
    return int(raw, 16)
