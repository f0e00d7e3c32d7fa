"""The one type check of annotation entries, shared by `validate`, `split` and the evaluation loader.

Python's `int()` and `float()` accept what a schema must not (`int(1.5)`, `float("nan")`, `float(True)`,
`int("7")`), so a value that one command silently converts could make another fail later. Here every
field has one rule: ids are JSON integers, box values and measures are finite JSON numbers, flags are 0/1
(or true/false), file names follow the dataset path rule. Ranges and geometry (a box inside its image,
visibility in 0..1) are `validate`'s business, which reports them with context and can repair some.
"""

from __future__ import annotations

import math
from typing import Any

from modelopsx.data.paths import relative_name_problem


def is_integer(value: Any) -> bool:
    """A JSON integer (not a bool, not a float such as 1.0, not a numeric string)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A finite JSON number (not a bool, not NaN or Infinity, not a numeric string)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_flag(value: Any) -> bool:
    return isinstance(value, bool) or (is_integer(value) and value in (0, 1))


def _field_problems(entry: dict[str, Any], rules: dict[str, tuple[Any, str, bool]]) -> list[str]:
    problems = []
    for name, (check, expected, required) in rules.items():
        if name not in entry:
            if required:
                problems.append(f"'{name}' is missing ({expected})")
            continue
        value = entry[name]
        if not check(value):
            problems.append(f"'{name}' must be {expected}, got {value!r}")
    return problems


_IMAGE_RULES: dict[str, tuple[Any, str, bool]] = {
    "id": (is_integer, "an integer", True),
    "file_name": (lambda v: relative_name_problem(v) is None, "a relative path inside images/", True),
    "width": (is_integer, "an integer number of pixels", True),
    "height": (is_integer, "an integer number of pixels", True),
    "group": (lambda v: v is None or isinstance(v, str), "a string", False),
}


def _optional_number(value: Any) -> bool:
    return value is None or is_finite_number(value)


_BOX_RULES: dict[str, tuple[Any, str, bool]] = {
    "id": (is_integer, "an integer", True),
    "image_id": (is_integer, "an integer image id", True),
    "bbox": (
        lambda v: isinstance(v, list) and len(v) == 4 and all(is_finite_number(x) for x in v),
        "four finite numbers [x, y, w, h]",
        True,
    ),
    "category_id": (is_integer, "an integer", False),
    "iscrowd": (is_flag, "0 or 1", False),
    "ignore": (is_flag, "0 or 1", False),
    "visibility": (is_finite_number, "a finite number (0..1)", False),
    "height": (_optional_number, "a finite number of pixels", False),
    "truncation": (_optional_number, "a finite number (0..1) or null", False),
    "area": (_optional_number, "a finite number", False),
}


def image_entry_problems(entry: Any) -> list[str]:
    """What is wrong with the types of one `images[]` entry (empty when nothing is)."""
    if not isinstance(entry, dict):
        return [f"entry must be an object, got {type(entry).__name__}"]
    return _field_problems(entry, _IMAGE_RULES)


def annotation_entry_problems(entry: Any) -> list[str]:
    """What is wrong with the types of one `annotations[]` entry (empty when nothing is)."""
    if not isinstance(entry, dict):
        return [f"entry must be an object, got {type(entry).__name__}"]
    return _field_problems(entry, _BOX_RULES)
