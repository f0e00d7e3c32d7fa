"""Safe extraction of dataset archives (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz).

Archives come from outside, so every member is checked before anything is written: absolute paths, `..`
escapes, and links (symbolic or hard) that point outside the target are refused with a DatasetError that names
the member. Device files and FIFOs are refused too. Size limits are checked on the sizes the archive declares
(zipfile and tarfile never write more than that): too many members, too many bytes in all, more than the
free disk space, or an expansion ratio only a decompression bomb has. A compressed tar is checked header by
header, so a bomb is refused before its data is inflated. Nothing is extracted unless every member and the
totals pass.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelopsx.errors import DatasetError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)


@dataclass(frozen=True)
class ExtractionLimits:
    """What an archive may expand to. The ratio applies once the contents exceed `ratio_floor_bytes`:
    images do not compress, so a real dataset archive expands a few times at most, while a bomb expands
    hundreds or thousands of times (1 MB -> 1 GiB)."""

    max_members: int = 1_000_000
    max_total_bytes: int = 64 << 30
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 32 << 20


DEFAULT_LIMITS = ExtractionLimits()


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


def check_limits(archive: Path, dest: Path, members: int, total_bytes: int, limits: ExtractionLimits) -> None:
    """Refuse, before anything is written, an archive whose declared contents break `limits`."""
    check_declared(archive, members, total_bytes, limits)
    free = shutil.disk_usage(dest).free
    if total_bytes > free:
        raise DatasetError(
            f"{archive}: expands to {_size(total_bytes)} but only {_size(free)} is free at "
            f"{dest}; nothing was extracted",
            hint="free some disk space, or set TMPDIR",
        )


def check_declared(archive: Path, members: int, total_bytes: int, limits: ExtractionLimits) -> None:
    """The count, total and ratio limits on what the members read so far declare."""
    hint = "if the archive is genuine, extract it yourself and import the folder"
    if members > limits.max_members:
        raise DatasetError(
            f"{archive}: holds more than the limit of {limits.max_members} members; nothing was extracted",
            hint=hint,
        )
    if total_bytes > limits.max_total_bytes:
        raise DatasetError(
            f"{archive}: expands to {_size(total_bytes)}, more than the limit of "
            f"{_size(limits.max_total_bytes)}; nothing was extracted",
            hint=hint,
        )
    packed = max(archive.stat().st_size, 1)
    if total_bytes > limits.ratio_floor_bytes and total_bytes > limits.max_ratio * packed:
        raise DatasetError(
            f"{archive}: {_size(packed)} expands to {_size(total_bytes)} "
            f"({total_bytes / packed:.0f}:1, more than {limits.max_ratio:g}:1), as a "
            "decompression bomb does; nothing was extracted",
            hint=hint,
        )


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def _escape_error(archive: Path, member: str, why: str) -> DatasetError:
    return DatasetError(
        f"{archive}: unsafe archive member {member!r} ({why}); nothing was extracted",
        hint="re-create the archive with relative paths that stay inside its folder",
    )


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


def _safe_zip(archive: Path, dest: Path, limits: ExtractionLimits) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            check_limits(archive, dest, len(infos), sum(i.file_size for i in infos), limits)
            for info in infos:
                _check_member_path(archive, info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:  # a symlink stored by Info-ZIP; extract() would write it as a file
                    target = zf.read(info).decode("utf-8", "replace")
                    _check_link_target(archive, info.filename, target, hard=False)
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DatasetError(
            f"{archive}: not a readable zip file ({exc})", hint="check that the download is complete"
        ) from None


def _safe_tar(archive: Path, dest: Path, limits: ExtractionLimits) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = _tar_members(tf, archive, dest, limits)
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
        raise DatasetError(
            f"{archive}: not a readable tar file ({exc})", hint="check that the download is complete"
        ) from None


def _tar_members(
    tf: tarfile.TarFile, archive: Path, dest: Path, limits: ExtractionLimits
) -> list[tarfile.TarInfo]:
    """The members, read header by header and checked at each one: in a compressed tar, reaching the next
    header means inflating this member's data, so a bomb is refused at the header that declares it, before
    that data is inflated (and a bomb of empty entries at the count limit)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    while (member := tf.next()) is not None:
        members.append(member)
        total += member.size
        check_declared(archive, len(members), total, limits)
    check_limits(archive, dest, len(members), total, limits)
    return members


def extract_archive(archive: Path, dest: Path, limits: ExtractionLimits = DEFAULT_LIMITS) -> Path:
    """Extract `archive` into `dest` (created) after checking every member and the limits; returns `dest`."""
    archive = Path(archive)
    if not archive.is_file():
        raise DatasetError(f"{archive}: archive not found")
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(ZIP_SUFFIXES):
        _safe_zip(archive, dest, limits)
    elif name.endswith(TAR_SUFFIXES):
        _safe_tar(archive, dest, limits)
    else:
        raise DatasetError(
            f"{archive}: unsupported archive type",
            hint=f"use a folder, or one of {', '.join(ZIP_SUFFIXES + TAR_SUFFIXES)}",
        )
    return dest


@contextmanager
def source_folder(src: Path, limits: ExtractionLimits = DEFAULT_LIMITS) -> Iterator[Path]:
    """Yield a folder for `src`: the folder itself, or an archive extracted into a temporary folder."""
    src = Path(src)
    if src.is_dir():
        yield src
        return
    if not src.exists():
        raise DatasetError(f"{src}: source not found", hint="pass a folder, a .zip or a .tar(.gz)")
    if not is_archive(src):
        raise DatasetError(
            f"{src}: not a folder or a supported archive",
            hint=f"pass a folder, or one of {', '.join(ZIP_SUFFIXES + TAR_SUFFIXES)}",
        )
    tmp = Path(tempfile.mkdtemp(prefix="modelopsx-extract-"))
    try:
        yield extract_archive(src, tmp, limits)
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
                nxt.extend(
                    p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))
                )
            except OSError:
                continue
        frontier = nxt
    return None
