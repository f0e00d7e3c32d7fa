"""Bring a git + DVC (+ GTO) repository up to date with the registry: the DVC "data registry" pattern.

The registry in the store stays the source of truth; the repository is a view of it that can always be
rebuilt. Each dataset and model version not yet in the repository becomes one commit (its `.dvc` pointer, and
for a model its metrics, curves and training-data pointer) tagged `<name>@v<N>` (plus GTO's `<name>@vN.0.0`);
each promotion becomes GTO's stage assignment `<name>#prod#<seq>` on the model version's commit. What is done
is read from the tags, so a re-sync reads only listings and commits nothing; a version whose objects are not
in the store, or a damaged record, is reported and left for a later sync while the rest goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelopsx.errors import UserError
from modelopsx.registry.log import Registry
from modelopsx.registry.mirror import layout
from modelopsx.registry.mirror.git import GitRepo, MirrorError
from modelopsx.registry.mirror.objects import ObjectChecker
from modelopsx.registry.records import promoted_version

VERSION_KINDS = ("datasets", "models")
KIND_ORDER = {"datasets": 0, "models": 1, "promotions": 2}
# Files `dvc init` and `dvc remote` write; a repository whose only changes are these is being set up.
SETUP_PATHS = (".dvc/", ".dvcignore")


@dataclass(frozen=True)
class Event:
    """One registry record that the repository does not show yet."""

    kind: str
    name: str
    seq: int
    record: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}/{self.seq}"

    @property
    def time(self) -> int:
        try:
            return int(datetime.fromisoformat(str(self.record.get("created_at"))).timestamp())
        except ValueError:
            return 0

    def order(self) -> tuple[int, int, str, int]:
        return (self.time, KIND_ORDER[self.kind], self.name, self.seq)


@dataclass
class SyncSummary:
    repo: Path
    commits: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pushed_to: str | None = None
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "commits": self.commits,
            "tags": self.tags,
            "skipped": [{"record": k, "reason": r} for k, r in self.skipped],
            "notes": self.notes,
            "pushed_to": self.pushed_to,
            "wall_s": round(self.wall_s, 3),
        }


def _dvc_init(repo: Path) -> None:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        Repo.init(str(repo))
    except DvcException as exc:
        raise MirrorError(f"`dvc init` failed in {repo}: {exc}") from None


def prepare_repository(repo: Path, remote: dict[str, Any], notes: list[str]) -> GitRepo:
    """Create a missing or empty folder as a git + DVC repository; add DVC and the Basin remote where
    missing. A non-empty folder that is not a git repository's top level is refused."""
    from modelopsx.storage.dvc_remote import apply_remote_config

    repo = Path(repo)
    git = GitRepo(repo)
    if repo.exists() and not repo.is_dir():
        raise MirrorError(f"--repo {repo} is a file", hint="pass a folder: a git repository or a new one")
    if not repo.exists() or not any(repo.iterdir()):
        repo.mkdir(parents=True, exist_ok=True)
        git.run("init", "-q", "-b", "main")
        notes.append(f"created a git repository in {repo}")
    elif not git.is_toplevel():
        raise MirrorError(
            f"{repo} is not empty and is not the top folder of a git repository",
            hint="pass a new or empty folder (it becomes the repository), or the top folder of a git "
            "repository (`git init` there first)",
        )
    if not (repo / ".dvc").is_dir():
        _dvc_init(repo)
        notes.append("initialised DVC")
    config = repo / ".dvc" / "config"
    if f'remote "{remote["name"]}"' not in (config.read_text() if config.is_file() else ""):
        apply_remote_config(repo, remote)
        notes.append(
            f"added the default DVC remote {remote['name']!r} -> {remote['url']} ({remote['endpointurl']})"
        )
    return git


def _check_work_tree(git: GitRepo, notes: list[str]) -> None:
    """Refuse a detached HEAD or local changes; commit a pending DVC set-up (dvc init / remote) first."""
    branch = git.branch()
    if branch is None:
        raise MirrorError(
            f"{git.root} has a detached HEAD (a tag or commit is checked out)",
            hint="check the branch out again first, e.g. `git checkout main`, then rerun",
        )
    changes = git.changes()
    foreign = [p for p in changes if not p.startswith(SETUP_PATHS)]
    if foreign:
        shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
        raise MirrorError(
            f"{git.root} has uncommitted changes: {shown}; dvc-sync commits into this repository and would "
            "mix them into its commits",
            hint="commit or stash them (`git stash -u`), or discard them "
            "(`git reset --hard && git clean -fd`), then rerun",
        )
    if changes:
        git.run("add", "-A", "--", *SETUP_PATHS)
        git.run("commit", "-q", "-m", "DVC set-up: Basin as the default remote")
        notes.append("committed the DVC set-up")


class MirrorSync:
    """One sync run against an opened registry and a prepared repository (call `run` under the lock)."""

    def __init__(self, git: GitRepo, registry: Registry, summary: SyncSummary, quiet: bool = True) -> None:
        self.git = git
        self.registry = registry
        self.summary = summary
        self.quiet = quiet
        self.objects = ObjectChecker(registry.store)
        self._evaluations: dict[str, list[dict[str, Any]]] = {}

    def pending(self, tags: set[str]) -> list[Event]:
        names = {kind: self.registry.names(kind) for kind in (*VERSION_KINDS, "promotions")}
        clash = sorted(set(names["datasets"]) & set(names["models"]))
        if clash:
            raise MirrorError(
                f"{', '.join(clash)} names both a dataset and a model; their version tags "
                "would collide in one repository",
                hint="mirror them into separate repositories, or rename one of them",
            )
        for name in sorted(set().union(*names.values())):
            if not layout.gto_compatible(name):
                self.summary.notes.append(
                    f"{name!r} is not a GTO name (letters, digits, '-', '_', '/'): its "
                    "versions are tagged but `gto show` leaves it out"
                )
        events: list[Event] = []
        for kind in (*VERSION_KINDS, "promotions"):
            for name in names[kind]:
                for seq in self.registry.sequence_numbers(kind, name):
                    wanted = (
                        {layout.promotion_tag(name, seq)}
                        if kind == "promotions"
                        else {layout.version_tag(name, seq), layout.version_alias(name, seq)}
                    )
                    if wanted <= tags:
                        continue
                    try:
                        events.append(Event(kind, name, seq, self.registry.get(kind, name, seq)))
                    except UserError as exc:  # a damaged record: named, and the rest is synced
                        self.summary.skipped.append((f"{kind}/{name}/{seq}", exc.message))
        return sorted(events, key=Event.order)

    def run(self) -> None:
        existing = self.git.tags()
        tags = set(existing)
        recorded = self.git.recorded_commits()
        clock = max(existing.values(), default=0)
        events = self.pending(tags)
        iterator: Any = events
        if not self.quiet and events:
            from tqdm import tqdm

            iterator = tqdm(events, desc="dvc-sync", unit="record", leave=False)
        for event in iterator:
            # Strictly increasing dates keep the registry's order in GTO, which orders tags by time.
            date = max(event.time, clock + 1)
            try:
                if event.kind == "promotions":
                    self._promotion(event, tags, date)
                else:
                    self._version(event, tags, recorded, date)
            except UserError as exc:
                self.summary.skipped.append((event.key, exc.message))
                continue
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a record of the wrong shape
                self.summary.skipped.append((event.key, f"damaged record ({type(exc).__name__}: {exc})"))
                continue
            clock = date

    def _version(self, event: Event, tags: set[str], recorded: dict[str, str], date: int) -> None:
        commit = recorded.get(event.key)  # committed by a sync that stopped before tagging
        if commit is None:
            files = self._files(event)
            message = self._message(event)  # everything read from the record before a file is written
            self._write(files)
            commit = self.git.commit(["."], message, event.key, date)
            self.summary.commits.append(message)
        annotation = f"{event.kind[:-1]} {event.name} version {event.seq} (registry {event.key})"
        for tag, text in (
            (layout.version_tag(event.name, event.seq), annotation),
            (layout.version_alias(event.name, event.seq), None),
        ):
            if tag not in tags:
                self.git.tag(tag, commit, text, date)
                tags.add(tag)
                self.summary.tags.append(tag)

    def _promotion(self, event: Event, tags: set[str], date: int) -> None:
        version = promoted_version(event.record)
        target = layout.version_tag(event.name, version)
        if target not in tags:
            raise MirrorError(f"its model version {version} is not in the repository (see above)")
        tag = layout.promotion_tag(event.name, event.seq)
        reason = str(event.record.get("reason") or "")[:200]
        self.git.tag(
            tag,
            f"{target}^{{commit}}",
            f"{event.record.get('action', 'promote')} "
            f"{event.name} v{version} to {layout.PROD_STAGE}: {reason}",
            date,
        )
        tags.add(tag)
        self.summary.tags.append(tag)

    def _files(self, event: Event) -> dict[str, str]:
        record = event.record
        missing = self.objects.missing(str(record.get("dvc_hash") or ""))
        lineage_hash = (
            (record.get("lineage") or {}).get("dataset_dvc_hash") if event.kind == "models" else None
        )
        if lineage_hash:
            missing += self.objects.missing(str(lineage_hash))
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise MirrorError(f"{len(missing)} DVC object(s) missing in {self.registry.url}: {shown}")
        if event.kind == "datasets":
            return layout.dataset_files(event.name, record)
        return layout.model_files(event.name, record, self._plots(event))

    def _plots(self, event: Event) -> dict[str, list[dict[str, float]]]:
        """Curves from the evaluation artifacts the pipeline stored with this model version, if any."""
        from modelopsx.evaluation.curves import CURVES_FILE

        if event.name not in self._evaluations:
            self._evaluations[event.name] = self._readable_evaluations(event.name)
        for evaluation in reversed(self._evaluations[event.name]):
            if evaluation.get("model_version") == event.seq and evaluation.get("artifacts_dvc_hash"):
                data = self.objects.read_file(str(evaluation["artifacts_dvc_hash"]), CURVES_FILE)
                if data is not None:
                    try:
                        plots = json.loads(data)
                    except ValueError:
                        self.summary.notes.append(f"{event.key}: its {CURVES_FILE} is not JSON; no plots")
                        return {}
                    return plots if isinstance(plots, dict) else {}
        return {}

    def _readable_evaluations(self, name: str) -> list[dict[str, Any]]:
        """The evaluation records of `name` (their curves become plots); a damaged one is noted and left out,
        so it costs its plots, not the model versions."""
        records = []
        for seq in self.registry.sequence_numbers("evaluations", name):
            try:
                records.append(self.registry.get("evaluations", name, seq))
            except UserError as exc:
                self.summary.notes.append(f"evaluations/{name}/{seq} left out: {exc.message}")
        return records

    def _write(self, files: dict[str, str]) -> None:
        root = self.git.root
        for rel, text in files.items():
            path = root / rel
            if text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            elif path.exists():
                path.unlink()
        for folder, entries in layout.gitignore_lines(files).items():
            ignore = root / folder / ".gitignore"
            lines = ignore.read_text().splitlines() if ignore.is_file() else []
            ignore.write_text("\n".join(lines + sorted(entries - set(lines))) + "\n")
        datasets = sorted(p.stem for p in (root / layout.DATASETS_DIR).glob("*.dvc"))
        models = sorted(p.parent.name for p in (root / layout.MODELS_DIR).glob("*/model.dvc"))
        (root / "dvc.yaml").write_text(layout.dvc_yaml(models, root))
        (root / "artifacts.yaml").write_text(layout.artifacts_yaml(datasets, models))

    @staticmethod
    def _message(event: Event) -> str:
        record = event.record
        if event.kind == "datasets":
            counts = record.get("counts") or {}
            return (
                f"dataset {event.name} v{event.seq}: {counts.get('images', '?')} images, "
                f"{counts.get('boxes', '?')} boxes"
            )
        metrics = record.get("metrics") or {}
        shown = " ".join(
            f"{k}={metrics[k]:.3f}"
            for k in ("f1", "precision", "recall", "ap50")
            if isinstance(metrics.get(k), int | float)
        )
        lineage = record.get("lineage") or {}
        data = (
            f" (data {lineage.get('dataset_name')} v{lineage.get('dataset_version')})"
            if lineage.get("dataset_name")
            else ""
        )
        return f"model {event.name} v{event.seq}: {shown or 'no metrics'}{data}"


def sync_mirror(
    repo: Path, store_url: str, endpoint: str, *, push: str | None = None, quiet: bool = True
) -> SyncSummary:
    """Bring `repo` up to date with the registry in `store_url` (DVC remote: that store at `endpoint`)."""
    from modelopsx.storage.dvc_remote import remote_config
    from modelopsx.storage.stores import open_store

    started = time.monotonic()
    summary = SyncSummary(repo=Path(repo))
    remote = remote_config(store_url, endpoint)
    registry = Registry(open_store(store_url))
    git = prepare_repository(Path(repo), remote, summary.notes)
    with git.locked():
        _check_work_tree(git, summary.notes)
        MirrorSync(git, registry, summary, quiet=quiet).run()
        if push:
            git.run("push", "-q", push, "HEAD")
            git.run("push", "-q", push, "--tags")
            summary.pushed_to = push
    summary.wall_s = time.monotonic() - started
    return summary
