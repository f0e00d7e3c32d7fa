"""Safe extraction of dataset archives (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz).

Archives come from outside, so every member is checked before anything is written: absolute paths, `..`
escapes, and links (symbolic or hard) that point outside the target are refused with a DatasetError that names
the member. Device files and FIFOs are refused too. Nothing is extracted unless every member passes.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from modelopsx.errors import DatasetError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def _escape_error(archive: Path, member: str, why: str) -> DatasetError:
    return DatasetError(f"{archive}: unsafe archive member {member!r} ({why}); nothing was extracted",
                        hint="re-create the archive with relative paths that stay inside its folder")


def _check_member_path(archive: Path, name: str) -> PurePosixPath:
    """A member name must be relative and stay inside the target once normalised."""
    if not name or "\x00" in name:
        raise _escape_error(archive, name, "empty or NUL in name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise _escape_error(archive, name, "absolute path")
    parts: list[str] = []
    for part in PurePosixPath(posix).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise _escape_error(archive, name, "path escapes the target with '..'")
            parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _check_link_target(archive: Path, member: str, link_target: str, hard: bool) -> None:
    """A link must resolve inside the target; symlink targets are relative to the member's folder."""
    target = link_target.replace("\\", "/")
    if target.startswith("/"):
        raise _escape_error(archive, member, f"link to absolute path {link_target!r}")
    base = PurePosixPath(".") if hard else PurePosixPath(member.replace("\\", "/")).parent
    try:
        _check_member_path(archive, str(base / target))
    except DatasetError:
        raise _escape_error(archive, member, f"link to {link_target!r} points outside the target") from None


def _safe_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_member_path(archive, info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:  # a symlink stored by Info-ZIP; extract() would write it as a file
                    target = zf.read(info).decode("utf-8", "replace")
                    _check_link_target(archive, info.filename, target, hard=False)
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive}: not a readable zip file ({exc})",
                           hint="check that the download is complete") from None


def _safe_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member_path(archive, m.name)
                if m.issym() or m.islnk():
                    _check_link_target(archive, m.name, m.linkname, hard=m.islnk())
                elif not (m.isfile() or m.isdir()):
                    raise _escape_error(archive, m.name, "device, FIFO or other special file")
            # The stdlib "data" filter re-checks all of the above and strips unsafe permission bits.
            tf.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        member = exc.tarinfo.name if getattr(exc, "tarinfo", None) is not None else "?"
        raise _escape_error(archive, member, str(exc)) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"{archive}: not a readable tar file ({exc})",
                           hint="check that the download is complete") from None


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract `archive` into `dest` (created) after checking every member; returns `dest`."""
    archive = Path(archive)
    if not archive.is_file():
        raise DatasetError(f"{archive}: archive not found")
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(ZIP_SUFFIXES):
        _safe_zip(archive, dest)
    elif name.endswith(TAR_SUFFIXES):
        _safe_tar(archive, dest)
    else:
        raise DatasetError(f"{archive}: unsupported archive type",
                           hint=f"use a folder, or one of {', '.join(ZIP_SUFFIXES + TAR_SUFFIXES)}")
    return dest


@contextmanager
def source_folder(src: Path) -> Iterator[Path]:
    """Yield a folder for `src`: the folder itself, or an archive extracted into a temporary folder."""
    src = Path(src)
    if src.is_dir():
        yield src
        return
    if not src.exists():
        raise DatasetError(f"{src}: source not found", hint="pass a folder, a .zip or a .tar(.gz)")
    if not is_archive(src):
        raise DatasetError(f"{src}: not a folder or a supported archive",
                           hint=f"pass a folder, or one of {', '.join(ZIP_SUFFIXES + TAR_SUFFIXES)}")
    tmp = Path(tempfile.mkdtemp(prefix="modelopsx-extract-"))
    try:
        yield extract_archive(src, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def descend_single_folder(root: Path, markers: tuple[str, ...], max_depth: int = 4) -> Path | None:
    """Find the folder under `root` (root itself first, breadth first) that holds all `markers`."""
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for folder in sorted(frontier):
            if all((folder / m).exists() for m in markers):
                return folder
            try:
                nxt.extend(p for p in folder.iterdir()
                           if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
            except OSError:
                continue
        frontier = nxt
    return None

