"""Commands of this area: `modelopsx sync` and `modelopsx dvc-remote`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

commands = typer.Typer()  # top-level commands of this area


@commands.command("sync")
def sync_command(
    src: str = typer.Argument(..., help="Source store: a folder, file://, s3://, gs:// or basin:// URL."),
    dst: str = typer.Argument(..., help="Destination store URL."),
    workers: int = typer.Option(8, "--workers", min=1, max=128, help="Parallel transfers."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; send nothing."),
    delete: bool = typer.Option(
        False, "--delete", help="Delete destination objects absent from the source (refused on Basin)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Mirror one folder or store into another.

    Incremental by content hash, parallel, retried, verified and resumable.
    """
    from modelopsx.errors import StorageError
    from modelopsx.storage.sync import sync

    summary = sync(src, dst, workers=workers, dry_run=dry_run, delete=delete, quiet=quiet)
    if dry_run and not as_json:
        for item in summary.plan:
            if item.action != "skip":
                typer.echo(f"  {item.action:8} {item.key} ({item.size} bytes)")
    typer.echo(json.dumps(summary.to_json(), indent=1) if as_json else summary.describe())
    if summary.failed:
        for key, message in summary.failures[:20]:
            typer.echo(f"  failed {key}: {message}", err=True)
        raise StorageError(
            f"{summary.failed} of {summary.total} objects were not synced; no manifest written",
            hint="rerun the same command: it resumes and sends only what is missing",
        )


@commands.command("dvc-remote")
def dvc_remote_command(
    store: str = typer.Option(
        "",
        "--store",
        help="Basin store URL (basin://<store>/<prefix>); default "
        "basin://$MODELOPSX_BASIN_STORE, where datasets and models are published.",
    ),
    endpoint: str = typer.Option(
        "", "--endpoint", help="Basin adapter endpoint; default $MODELOPSX_BASIN_ENDPOINT."
    ),
    repo: Path = typer.Option(Path("."), "--repo", help="DVC repository to configure with --apply."),
    apply: bool = typer.Option(
        False, "--apply", help="Write the remote into the repo (keys into .dvc/config.local)."
    ),
) -> None:
    """Print (or apply) the DVC remote config for Basin.

    The config makes Basin a DVC `s3` remote.
    """
    from modelopsx.settings import BasinSettings
    from modelopsx.storage.dvc_remote import apply_remote_config, default_store_url, remote_config

    settings = BasinSettings.from_env()
    config = remote_config(store or default_store_url(settings), endpoint or settings.endpoint)
    if apply:
        apply_remote_config(repo, config)
        typer.echo(f"configured DVC remote {config['name']!r} -> {config['url']} in {repo}")
    else:
        for line in config["commands"]:
            typer.echo(line)


CLI = (commands,)
