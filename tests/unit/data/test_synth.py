from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.synth import (
    MIN_BOX_HEIGHT,
    _jpeg,
    file_name,
    generate_synthetic,
    is_person_free,
    render_frame,
)
from modelopsx.errors import DatasetError

SIZE = (160, 112)


def _frames(n: int, seed: int = 3, size: tuple[int, int] = SIZE):
    return [(i, render_frame(seed, i, size)) for i in range(n)]


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a", 5, seed=11, size=SIZE)
    b = generate_synthetic(tmp_path / "b", 5, seed=11, size=SIZE)
    c = generate_synthetic(tmp_path / "c", 5, seed=12, size=SIZE)
    for img in a.images:
        assert (a.image_path(img)).read_bytes() == (b.image_path(img)).read_bytes()
    assert (tmp_path / "a/annotations.json").read_bytes() == (tmp_path / "b/annotations.json").read_bytes()
    differing = [img for img in a.images if a.image_path(img).read_bytes() != c.image_path(img).read_bytes()]
    assert len(differing) == len(a.images)


@pytest.mark.parametrize("parallel", ["process", "thread"])
def test_parallel_generation_matches_single_image_rendering(tmp_path: Path, parallel: str) -> None:
    if parallel == "process" and "tensorflow" in sys.modules:
        # Forking after TensorFlow loaded can deadlock (why `auto` picks threads then): a test that ran
        # before in this process loaded it, so the forking generator runs in a fresh interpreter.
        script = (
            "import sys; from pathlib import Path; from modelopsx.data.synth import generate_synthetic; "
            "generate_synthetic(Path(sys.argv[1]), 64, seed=5, size=(96, 64), parallel='process')"
        )
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "p")], check=True, timeout=300)
        ds = load_dataset(tmp_path / "p")
    else:
        ds = generate_synthetic(tmp_path / "p", 64, seed=5, size=(96, 64), parallel=parallel)  # 64: pooled
    for index in (0, 37, 63):
        expected = _jpeg(render_frame(5, index, (96, 64)), 5, index)
        assert (tmp_path / "p/images" / file_name(index)).read_bytes() == expected
    assert len(ds.images) == 64


def test_dataset_is_canonical_with_groups(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 9, seed=1, size=SIZE)
    ds = load_dataset(tmp_path / "d")
    assert len(ds.images) == 9
    assert all(img.width == SIZE[0] and img.height == SIZE[1] for img in ds.images)
    groups = [img.group for img in ds.images]
    assert groups[0] == groups[3] != groups[4]  # sequences of four frames share a group
    assert all(ds.image_path(img).read_bytes()[:2] == b"\xff\xd8" for img in ds.images)  # JPEG
    data = json.loads((tmp_path / "d/annotations.json").read_text())
    assert data["categories"][0]["name"] == "pedestrian"


def test_boxes_are_inside_and_tight_to_drawn_pixels() -> None:
    checked = 0
    for _, frame in _frames(24):
        h, w = frame.id_map.shape
        for person in frame.people:
            x, y, bw, bh = (int(v) for v in person["bbox"])
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
            own = frame.id_map[y : y + bh, x : x + bw] == person["sprite"]
            # every edge of the box touches the person's own pixels, and nothing of it lies outside the box
            assert own[0].any() and own[-1].any() and own[:, 0].any() and own[:, -1].any()
            assert int(own.sum()) == int((frame.id_map == person["sprite"]).sum())
            checked += 1
    assert checked > 20


def test_visibility_occlusion_heights_and_empty_images() -> None:
    frames = _frames(40, size=(192, 128))
    people = [p for _, f in frames for p in f.people]
    vis = np.array([p["visibility"] for p in people])
    assert ((vis > 0) & (vis <= 1)).all()
    assert (vis < 0.9).any() and (vis == 1).any()
    heights = [p["height"] for p in people if not p["ignore"]]
    assert min(heights) < 30 and max(heights) > 0.5 * 128
    assert all(p["height"] >= p["bbox"][3] for p in people)  # full height is never below the visible box
    for p in people:
        if p["ignore"] == 0:
            assert p["visibility"] >= 0.2 and p["bbox"][3] >= MIN_BOX_HEIGHT
    for index, frame in frames:
        if is_person_free(index):
            assert frame.people == []
    assert any(is_person_free(i) for i, _ in frames)


def test_refuses_to_overwrite_and_rejects_bad_arguments(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "d", 2, seed=0, size=SIZE)
    before = (tmp_path / "d/annotations.json").read_bytes()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        generate_synthetic(tmp_path / "d", 2, seed=1, size=SIZE)
    assert (tmp_path / "d/annotations.json").read_bytes() == before
    with pytest.raises(DatasetError):
        generate_synthetic(tmp_path / "e", 0)
    with pytest.raises(DatasetError):
        generate_synthetic(tmp_path / "f", 2, size=(10, 10))
