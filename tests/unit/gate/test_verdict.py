"""What a candidate is gated against, and its one name per kind."""

from __future__ import annotations

from modelopsx.gate.verdict import Reference


def test_the_reference_has_one_name_per_kind() -> None:
    assert Reference.of({"model_name": "m", "model_version": 3}).name == "champion v3"
    assert Reference.of({"model_name": "m"}).name == "the champion"
    assert Reference.of({"baseline": "hog"}).noun == "HOG baseline"
    assert Reference.of(None).name == Reference.of({}).name == "no reference"
    assert Reference.of({"model_version": True}).version is None  # not a version number
