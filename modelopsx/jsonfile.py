"""Read a JSON file that something depends on: missing or unreadable is an error of the caller's type, never
an empty value that would let the caller carry on as if there were nothing to check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelopsx.errors import UserError


def read_json(path: Path, what: str, error: type[UserError], hint: str | None = None) -> Any:
    """The parsed content of `path`; `error(f"{what} ...")` when it is missing or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist", hint=hint)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is not valid JSON ({exc})", hint=hint) from None
