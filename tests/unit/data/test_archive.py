import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelopsx.data.archive import extract_archive, source_folder
from modelopsx.errors import DatasetError
from tests.unit.data.data_io_fixtures import assert_clean_failure, run_cli


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def test_zip_and_tar_extract_inside_target(tmp_path: Path) -> None:
    members = {"root/a.txt": b"a", "root/sub/b.txt": b"b"}
    for archive in (_zip(tmp_path / "ok.zip", members), _tar(tmp_path / "ok.tar.gz", members)):
        dest = tmp_path / f"out-{archive.name}"
        extract_archive(archive, dest)
        assert (dest / "root" / "sub" / "b.txt").read_bytes() == b"b"


@pytest.mark.parametrize("member", ["../../evil", "/abs/evil", "a/../../evil", "..\\..\\evil"])
def test_zip_escape_is_refused_and_nothing_written(tmp_path: Path, member: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"good.txt": b"ok", member: b"pwned"})
    dest = tmp_path / "sandbox" / "dest"
    with pytest.raises(DatasetError, match="unsafe archive member"):
        extract_archive(archive, dest)
    assert not (dest / "good.txt").exists()
    assert not list(tmp_path.rglob("evil"))


def test_tar_symlink_escaping_target_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "link.tar.gz", {"data/a.txt": b"a"}, links={"data/link": "../../etc/passwd"})
    with pytest.raises(DatasetError, match="points outside"):
        extract_archive(archive, tmp_path / "dest")
    inside = _tar(tmp_path / "inner.tar.gz", {"data/a.txt": b"a"}, links={"data/link": "a.txt"})
    dest = extract_archive(inside, tmp_path / "dest2")
    assert (dest / "data" / "link").read_bytes() == b"a"


def test_tar_dotdot_member_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "dots.tar.gz", {"../evil.txt": b"x"})
    with pytest.raises(DatasetError, match="escapes"):
        extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        extract_archive(bad, tmp_path / "dest")


def test_source_folder_cleans_up_its_temporary_extraction(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"x/y.txt": b"y"})
    with source_folder(archive) as folder:
        assert (folder / "x" / "y.txt").is_file()
    assert not folder.exists()


def test_cli_import_of_evil_zip_fails_cleanly(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "PennFudanPed.zip", {"PennFudanPed/PNGImages/a.png": b"", "../../evil": b"pwned"}
    )
    out = tmp_path / "out"
    result = run_cli("dataset", "import", archive, "--format", "pennfudan", "--out", out)
    assert_clean_failure(result, "unsafe archive member '../../evil'")
    assert not out.exists()
    assert not list(tmp_path.parent.rglob("evil"))


def _zeros_zip(path: Path, megabytes: int) -> Path:
    """A real decompression bomb: `megabytes` MiB of zeros, deflated about 1000:1."""
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        for _ in range(megabytes):
            fh.write(block)
    return path


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = _zeros_zip(tmp_path / "bomb.zip", 64)
    assert bomb.stat().st_size < 1 << 20
    dest = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"expands to 64 MiB \(\d+:1, more than 100:1\), as a decomp"):
        extract_archive(bomb, dest)
    assert not any(dest.iterdir())


def test_zip_declaring_a_gibibyte_from_a_megabyte_is_refused(tmp_path: Path) -> None:
    # The sizes a zip declares are what zipfile will write at most (it stops and fails a CRC beyond them),
    # so the check reads them: here a 1 MiB member whose headers claim 1 GiB.
    path = _zip(tmp_path / "claims.zip", {"data.bin": bytes(range(256)) * 4096})
    raw = bytearray(path.read_bytes())
    gib = (1 << 30).to_bytes(4, "little")
    raw[22:26] = gib  # local file header: uncompressed size
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = gib  # central directory: uncompressed size
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"expands to 1 GiB"):
        extract_archive(path, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_tar_bomb_and_member_count_limits(tmp_path: Path) -> None:
    from modelopsx.data.archive import ExtractionLimits

    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 << 20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(DatasetError, match="as a decompression bomb does"):
        extract_archive(bomb, tmp_path / "a")
    many = _tar(tmp_path / "many.tar", {f"f{i}.txt": b"x" for i in range(20)})
    with pytest.raises(DatasetError, match="more than the limit of 10 members"):
        extract_archive(many, tmp_path / "b", ExtractionLimits(max_members=10))
    with pytest.raises(DatasetError, match="more than the limit of 10 bytes"):
        extract_archive(many, tmp_path / "c", ExtractionLimits(max_total_bytes=10))
    assert not any((tmp_path / "b").iterdir()) and not any((tmp_path / "c").iterdir())
    assert len(list(extract_archive(many, tmp_path / "d").iterdir())) == 20  # the defaults let it through


def test_a_tar_gz_bomb_is_refused_at_its_header_before_its_data_is_inflated(tmp_path: Path) -> None:
    """The member's header declares 1 GiB; the gzip stream holds the header and only the start of the data.
    Refused at the header, the data is never inflated; reading on to the next header, as before, inflates
    all of it (here: runs into the cut and fails as "not a readable tar file" instead)."""
    import gzip

    info = tarfile.TarInfo("PennFudanPed/zeros.bin")
    info.size = 1 << 30
    stream = gzip.compress(info.tobuf() + bytes(1 << 20))
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(stream[: len(stream) // 2])
    with pytest.raises(
        DatasetError, match=r"expands to 1 GiB \(\d+:1, more than 100:1\), as a decompression bomb"
    ):
        extract_archive(bomb, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())
