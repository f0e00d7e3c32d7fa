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
