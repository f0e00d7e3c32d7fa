"""The `modelopsx` command. Each area registers its own commands; heavy libraries load lazily inside them."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from modelopsx.errors import UserError

app = typer.Typer(
    name="modelopsx",
    help="MLOps pipeline for pedestrian detection: datasets, training, evaluation, Basin, KFP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """MLOps pipeline for pedestrian detection: datasets, training, evaluation, Basin, KFP."""


def _register_all() -> None:
    """One way to add commands: each area's cli module declares its Typer apps (a named one is a command
    group, an unnamed one holds top-level commands) and lists them in `CLI`."""
    from modelopsx.basin import cli as basin_cli
    from modelopsx.data import cli as data_cli
    from modelopsx.evaluation import cli as evaluation_cli
    from modelopsx.model import cli as model_cli
    from modelopsx.registry import cli as registry_cli
    from modelopsx.storage import cli as storage_cli
    from modelopsx.workflow import cli as workflow_cli

    for module in (data_cli, basin_cli, storage_cli, evaluation_cli, model_cli, registry_cli, workflow_cli):
        for area_app in module.CLI:
            app.add_typer(area_app)


_register_all()


def main() -> None:
    """Console entry point: user errors become one clear message and exit code 2, never a traceback."""
    err = Console(stderr=True, soft_wrap=True)  # a message wrapped mid-path cannot be copied
    try:
        app()  # standalone mode: click reports its own usage errors and exits non-zero
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"  [yellow]hint:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
