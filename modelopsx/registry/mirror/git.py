"""The few git operations the registry mirror needs, through the real `git` CLI.

Commits and tags carry a fixed identity and dates taken from the registry records, so rebuilding the mirror
from the same registry gives the same commits; an exclusive lock keeps concurrent syncs from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from modelopsx.errors import UserError

IDENTITY = {
    "GIT_AUTHOR_NAME": "ModelOpsX registry",
    "GIT_AUTHOR_EMAIL": "registry@modelopsx.invalid",
    "GIT_COMMITTER_NAME": "ModelOpsX registry",
    "GIT_COMMITTER_EMAIL": "registry@modelopsx.invalid",
}
LOCK_FILE = "modelopsx-dvc-sync.lock"
TRAILER = "Registry-Record"


class MirrorError(UserError):
    """The mirror repository cannot be used as it is (not a repo, local changes, detached HEAD, ...)."""


def git_executable() -> str:
    found = shutil.which("git")
    if found is None:
        raise MirrorError("`git` is not installed", hint="install git (e.g. `apt-get install git`)")
    return found


class GitRepo:
    """A git work tree at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def run(self, *args: str, date: int | None = None, check: bool = True, stdin: str | None = None) -> str:
        env = os.environ | IDENTITY
        if date is not None:
            env |= {"GIT_AUTHOR_DATE": f"{date} +0000", "GIT_COMMITTER_DATE": f"{date} +0000"}
        done = subprocess.run(
            [git_executable(), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise MirrorError(
                f"`git {' '.join(args[:3])}` failed in {self.root}: "
                f"{(done.stderr or done.stdout).strip()[-400:]}"
            )
        return done.stdout

    def is_toplevel(self) -> bool:
        done = subprocess.run(
            [git_executable(), "rev-parse", "--show-toplevel"],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode == 0 and Path(done.stdout.strip()).resolve() == self.root.resolve()

    def has_commits(self) -> bool:
        return bool(self.run("rev-parse", "--verify", "-q", "HEAD", check=False).strip())

    def branch(self) -> str | None:
        name = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False).strip()
        return name or None

    def changes(self) -> list[str]:
        """Paths with uncommitted changes (staged, unstaged or untracked but not ignored)."""
        out = self.run("status", "--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def tags(self) -> dict[str, int]:
        """Every tag with its date (tagger date of annotated tags, commit date of lightweight ones)."""
        out = self.run(
            "for-each-ref", "--format=%(refname:short) %(taggerdate:unix) %(committerdate:unix)", "refs/tags"
        )
        tags = {}
        for line in out.splitlines():
            name, *dates = line.split()
            tags[name] = int(next((d for d in dates if d.isdigit()), "0"))
        return tags

    def recorded_commits(self) -> dict[str, str]:
        """Registry record key -> the commit whose message names it (finds commits a crash left untagged)."""
        if not self.has_commits():
            return {}
        out = self.run("log", f"--format=%H %(trailers:key={TRAILER},valueonly,separator=%x2C)")
        found: dict[str, str] = {}
        for line in out.splitlines():
            commit, _, keys = line.partition(" ")
            for key in filter(None, (k.strip() for k in keys.split(","))):
                found.setdefault(key, commit)
        return found

    def commit(self, paths: list[str], message: str, record_key: str, date: int) -> str:
        self.run("add", "-A", "--", *paths)
        self.run("commit", "-q", "--allow-empty", "-m", f"{message}\n\n{TRAILER}: {record_key}", date=date)
        return self.run("rev-parse", "HEAD").strip()

    def tag(self, name: str, target: str, message: str | None, date: int) -> None:
        """An annotated tag (what GTO reads) when `message` is given, else a lightweight alias."""
        if message is None:
            self.run("tag", name, target)
        else:
            self.run("tag", "-a", name, "-m", message, target, date=date)

    @contextlib.contextmanager
    def locked(self, wait_s: float = 300.0) -> Iterator[None]:
        """Hold an exclusive lock in .git for the whole sync; a second sync waits, then has nothing to do."""
        git_dir = Path(self.run("rev-parse", "--absolute-git-dir").strip())
        with open(git_dir / LOCK_FILE, "a+") as handle:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise MirrorError(
                            f"another dvc-sync has held {self.root} for over {wait_s:.0f} s",
                            hint="wait for it to finish, then rerun",
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
