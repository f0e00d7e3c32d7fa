"""The staging writer every importer shares."""

import math
from pathlib import Path

import pytest

from modelopsx.data.importers.common import DatasetWriter
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import write_image


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_coordinate_is_an_error_not_a_full_image_box(tmp_path: Path, bad: float) -> None:
    write_image(tmp_path / "a.png", 64, 48, seed=1)
    with DatasetWriter(tmp_path / "out", {}) as writer:
        image = writer.add_image_file(tmp_path / "a.png")
        for box in ([bad, 0, 10, 10], [0, bad, 10, 10], [0, 0, bad, 10], [0, 0, 10, bad]):
            with pytest.raises(DatasetError, match="not a finite number"):
                writer.add_box(image, *box, where="label_2/000001.txt line 3")
        assert writer.dataset.annotations == []
        writer.abort()


def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path: Path) -> None:
    from tests.unit.data.data_io_fixtures import png_declaring

    bomb = tmp_path / "src" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(png_declaring(50_000, 50_000))
    with DatasetWriter(tmp_path / "out", {}) as writer, pytest.raises(DatasetError) as exc:
        writer.add_image_file(bomb)
    assert exc.value.message.startswith(f"{bomb}: the image header declares more than")
    assert "refused before decoding" in exc.value.message
