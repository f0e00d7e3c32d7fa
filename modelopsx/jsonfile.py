"""Read JSON that something depends on: missing or unreadable is an error of the caller's type, never an
empty value that would let the caller carry on as if there were nothing to check.

`parse_json` is stricter than `json.loads` where the standard library would give a traceback or a silent
choice: an object with the same key twice (which value counts is ambiguous, so neither is taken), nesting
deeper than the parser's recursion limit, and an integer longer than Python converts (4300 digits) are all a
`JSONContentError` (a ValueError) saying what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelopsx.errors import UserError


class JSONContentError(ValueError):
    """JSON text a reader must not take: a duplicate key, too deep nesting, too long a number."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONContentError(
                    f"key {key!r} appears more than once in one object, so which value counts is ambiguous"
                )
            seen.add(key)
    return obj


def parse_json(text: str | bytes) -> Any:
    """`json.loads` that refuses duplicate keys, too deep nesting and over-long integers (JSONContentError);
    malformed text is json.JSONDecodeError as usual. Both are ValueErrors."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise JSONContentError("arrays or objects are nested too deeply to read") from None
    except JSONContentError:
        raise
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise JSONContentError("a number has more digits than can be read (the limit is 4300)") from None
        raise


def read_json(path: Path, what: str, error: type[UserError], hint: str | None = None) -> Any:
    """The parsed content of `path`; `error(f"{what} ...")` when it is missing or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist", hint=hint)
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is not valid JSON ({exc})", hint=hint) from None
