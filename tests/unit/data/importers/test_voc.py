import shutil
from pathlib import Path

import pytest

from modelopsx.data.format import load_dataset
from modelopsx.data.importers import import_dataset
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli, write_image

OBJECT = """  <object>
    <name>{name}</name><pose>Left</pose><truncated>{truncated}</truncated><difficult>{difficult}</difficult>
    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>
  </object>
"""


def voc_xml(stem: str, objects: list[dict[str, object]], size: tuple[int, int] = (80, 60)) -> str:
    body = "".join(OBJECT.format(**{"truncated": 0, "difficult": 0, **o}) for o in objects)
    return (
        f"<annotation>\n  <folder>VOC2007</folder>\n  <filename>{stem}.jpg</filename>\n"
        "  <source><database>The VOC2007 Database</database></source>\n"
        f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>\n"
        f"  <segmented>0</segmented>\n{body}</annotation>\n"
    )


def build_voc(root: Path, annotations: dict[str, list[dict[str, object]]]) -> Path:
    """VOCdevkit/VOC2007 with Annotations/, JPEGImages/ and ImageSets/Main/."""
    voc = root / "VOCdevkit" / "VOC2007"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    for k, (stem, objects) in enumerate(annotations.items()):
        write_image(voc / "JPEGImages" / f"{stem}.jpg", 80, 60, seed=k)
        (voc / "Annotations" / f"{stem}.xml").write_text(voc_xml(stem, objects))
    (voc / "ImageSets" / "Main" / "val.txt").write_text(f"{list(annotations)[-1]}\n")
    return root


def test_person_only_difficult_is_ignore_one_based_pixels(tmp_path: Path) -> None:
    src = build_voc(
        tmp_path / "voc",
        {
            "000005": [
                {"name": "person", "xmin": 1, "ymin": 1, "xmax": 10, "ymax": 20, "truncated": 1},
                {"name": "chair", "xmin": 30, "ymin": 30, "xmax": 50, "ymax": 50},
                {"name": "person", "xmin": 41, "ymin": 11, "xmax": 60, "ymax": 59, "difficult": 1},
            ],
            "000007": [{"name": "car", "xmin": 2, "ymin": 2, "xmax": 40, "ymax": 30}],
        },
    )
    import_dataset(src, "voc", tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    assert [img.file_name for img in ds.images] == ["000005.jpg", "000007.jpg"]
    assert [b.bbox for b in ds.annotations] == [[0, 0, 10, 20], [40, 10, 20, 49]]
    assert [b.ignore for b in ds.annotations] == [0, 1]
    assert [b.truncation for b in ds.annotations] == [1.0, 0.0]


def test_split_list_and_tar(tmp_path: Path) -> None:
    build_voc(
        tmp_path / "src",
        {
            "000001": [{"name": "person", "xmin": 5, "ymin": 5, "xmax": 20, "ymax": 40}],
            "000002": [{"name": "person", "xmin": 6, "ymin": 5, "xmax": 20, "ymax": 40}],
        },
    )
    archive = shutil.make_archive(str(tmp_path / "VOCtrainval"), "tar", root_dir=tmp_path / "src")
    result = run_cli(
        "dataset", "import", archive, "--format", "voc", "--split", "val", "--out", tmp_path / "out", "-q"
    )
    assert result.returncode == 0, result.stderr
    ds = load_dataset(tmp_path / "out")
    assert [img.file_name for img in ds.images] == ["000002.jpg"]
    assert ds.annotations[0].bbox == [5, 4, 15, 36]


def test_broken_xml_and_unknown_split(tmp_path: Path) -> None:
    src = build_voc(
        tmp_path / "voc", {"000001": [{"name": "person", "xmin": 5, "ymin": 5, "xmax": 20, "ymax": 40}]}
    )
    with pytest.raises(DatasetError, match="no image list for split 'nope'"):
        import_dataset(src, "voc", tmp_path / "out", split="nope")
    (src / "VOCdevkit" / "VOC2007" / "Annotations" / "000001.xml").write_text("<annotation><object>")
    result = run_cli("dataset", "import", src, "--format", "voc", "--out", tmp_path / "out")
    assert_clean_failure(result, "000001.xml: not valid XML")


@pytest.mark.parametrize("entry", ["../../../../outside", "ABSOLUTE"])
def test_image_set_entries_outside_the_dataset_are_refused_and_not_read(tmp_path: Path, entry: str) -> None:
    """A val.txt line once read any XML it pointed at and imported its boxes."""
    src = build_voc(
        tmp_path / "voc", {"000005": [{"name": "person", "xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}]}
    )
    outside = tmp_path / "outside.xml"
    outside.write_text(voc_xml("000005", [{"name": "person", "xmin": 5, "ymin": 5, "xmax": 70, "ymax": 50}]))
    line = str(tmp_path / "outside") if entry == "ABSOLUTE" else entry
    listing = src / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "val.txt"
    listing.write_text(f"{line}\n")
    with pytest.raises(DatasetError, match=r"val\.txt:1: file name .*(absolute path|climbs out)"):
        import_dataset(src, "voc", tmp_path / "out", split="val")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tag", ["difficult", "truncated"])
def test_a_flag_other_than_0_or_1_is_an_error_never_false(tmp_path: Path, tag: str) -> None:
    src = build_voc(
        tmp_path / "voc",
        {"000005": [{"name": "person", "xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9, tag: "yes"}]},
    )
    result = run_cli("dataset", "import", src, "--format", "voc", "--out", tmp_path / "out")
    assert_clean_failure(result, f"000005.xml: object[0]: <{tag}> is 'yes'; expected 0 or 1")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
