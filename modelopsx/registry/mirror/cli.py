"""`modelopsx dvc-sync`: bring a git + DVC (+ GTO) repository up to date with the registry."""

from __future__ import annotations

import json
from pathlib import Path

import typer

commands = typer.Typer()  # top-level commands of this area


@commands.command("dvc-sync")
def dvc_sync_cmd(
    repo: Path = typer.Option(
        ...,
        "--repo",
        help="The mirror: a git repository's top folder, or a new or "
        "empty folder (it becomes one, with DVC and the Basin remote).",
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Registry store URL; default $MODELOPSX_REGISTRY_URL or basin://$MODELOPSX_BASIN_STORE.",
    ),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="Basin endpoint the repository's DVC remote "
        "uses when dvc-sync adds it; default $MODELOPSX_BASIN_ENDPOINT.",
    ),
    push: str | None = typer.Option(
        None, "--push", help="Afterwards push the branch and the tags to this git remote (name or URL)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Mirror the registry into a git + DVC + GTO repository.

    One commit per new dataset or model version (its .dvc pointer; a model's metrics, curves and training
    data), tagged <name>@v<N>, and GTO stage tags <name>#prod#<n> for promotions. Incremental and idempotent.
    """
    from modelopsx.basin.local import endpoint_for_dvc
    from modelopsx.errors import StorageError
    from modelopsx.registry.mirror.sync import sync_mirror
    from modelopsx.registry.store import default_store_url, open_registry_store

    store_url = store or default_store_url()
    open_registry_store(store_url)  # after `make run`: serves its local store when nothing else answers
    summary = sync_mirror(repo, store_url, endpoint or endpoint_for_dvc(), push=push, quiet=quiet)
    if as_json:
        typer.echo(json.dumps(summary.to_json(), indent=1))
    else:
        for note in summary.notes:
            typer.echo(note)
        for message in summary.commits:
            typer.echo(f"  committed {message}")
        versions = sum(1 for t in summary.tags if "@v" in t and t.count(".") < 2)
        stages = sum(1 for t in summary.tags if "#" in t)
        typer.echo(
            f"{repo}: {len(summary.commits)} new commit(s), {versions} version tag(s), {stages} stage "
            f"assignment(s) in {summary.wall_s:.1f} s"
            + (f"; pushed to {summary.pushed_to}" if summary.pushed_to else "")
        )
    if summary.skipped:
        for key, reason in summary.skipped:
            typer.echo(f"  skipped {key}: {reason}", err=True)
        raise StorageError(
            f"{len(summary.skipped)} registry record(s) were not mirrored; everything else is up to date",
            hint="restore the missing objects in the store (e.g. publish the folder again), then rerun: "
            "dvc-sync picks them up; a damaged record is never rewritten, so it stays skipped",
        )
