"""The one rule for file names that come from inside a dataset or a source's annotations.

A name an annotation file gives (COCO `file_name`, a VOC `<filename>`, a canonical dataset's image entry) is
data, not a path to follow: it must be relative and stay inside its folder, also after symbolic links are
resolved. Otherwise an import or a split could read any file the user can read and copy it into a dataset.
A folder copied as a whole (a model folder at register, deploy and rollback) follows the same rule:
`check_links_inside` refuses a symbolic link in it that leads outside.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from modelopsx.errors import DatasetError, UserError


def relative_name_problem(name: object) -> str | None:
    """Why `name` cannot name a file inside a folder, or None when it can (no file system access)."""
    if not isinstance(name, str) or not name.strip():
        return f"file name {name!r} must be a non-empty string"
    posix = name.replace("\\", "/")
    if "\x00" in name:
        return f"file name {name!r} contains a NUL character"
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return f"file name {name!r} is an absolute path; it must be relative to its folder"
    if ".." in PurePosixPath(posix).parts:
        return f"file name {name!r} climbs out of its folder with '..'"
    return None


def resolve_inside(folder: Path, name: object, what: str = "file") -> Path:
    """`folder / name`, or a DatasetError if the name is not relative or leads outside `folder`.

    Checked twice: on the text (absolute, `..`) and on the resolved path, so a symbolic link inside the folder
    that points elsewhere is refused too."""
    problem = relative_name_problem(name)
    if problem is not None:
        raise DatasetError(
            f"{what}: {problem}; nothing is read outside {folder}",
            hint="file names in annotations must be relative paths inside the images folder",
        )
    assert isinstance(name, str)
    path = folder / name.replace("\\", "/")
    base = folder.resolve()
    if not path.resolve().is_relative_to(base):
        raise DatasetError(
            f"{what}: file name {name!r} leads outside {folder} (through a symbolic link); "
            "nothing was read from there",
            hint="replace the link by the file itself, inside the images folder",
        )
    return path


def check_links_inside(folder: Path, what: str, error: type[UserError] = DatasetError) -> None:
    """Refuse (`error`, naming the link) a symbolic link anywhere under `folder` that resolves outside it, or
    nowhere; a link that stays inside is kept. Linked folders are judged, not entered."""
    folder = Path(folder)
    base = folder.resolve()
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.is_relative_to(base) or not target.exists():
                where = f"outside {folder}" if target.exists() else "missing"
                raise error(
                    f"{what}: {path.relative_to(folder).as_posix()} is a symbolic link to "
                    f"{os.readlink(path)}, which is {where}; nothing was read from there",
                    hint="replace the link by the file itself, inside the folder",
                )
