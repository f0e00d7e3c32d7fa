"""The `modelopsx` command. Each area registers its own commands; heavy libraries load lazily inside them."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from modelopsx.errors import UserError

app = typer.Typer(
    name="modelopsx",
    help="Pedestrian detection MLOps: datasets, training, evaluation, the promotion gate, Basin and KFP.",
    epilog="Start with `modelopsx run` (or `make run`); `modelopsx COMMAND --help` describes each command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help, as git, dvc and kubectl print it: flags without a value placeholder, text re-wrapped to the
    # terminal, nothing cut off at 80 columns (tests/unit/test_cli.py checks every command).
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        import modelopsx

        typer.echo(f"modelopsx {modelopsx.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        envvar="MODELOPSX_VERBOSE",
        help="Show TensorFlow's start-up logging, which is hidden by default (also: MODELOPSX_VERBOSE=1).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Pedestrian detection MLOps: datasets, training, evaluation, the promotion gate, Basin and KFP."""
    if not verbose:
        from modelopsx.tensorflow_logging import quiet_tensorflow

        quiet_tensorflow()  # before any command imports TensorFlow


def _register_all() -> None:
    """One way to add commands: each area's cli module declares its Typer apps (a named one is a command
    group, an unnamed one holds top-level commands) and lists them in `CLI`."""
    from modelopsx.basin import cli as basin_cli
    from modelopsx.data import cli as data_cli
    from modelopsx.evaluation import cli as evaluation_cli
    from modelopsx.model import cli as model_cli
    from modelopsx.registry import cli as registry_cli
    from modelopsx.registry import predict_cli
    from modelopsx.storage import cli as storage_cli
    from modelopsx.workflow import cli as workflow_cli

    # Dataset commands that need the registry live in its layer; they join the dataset group here.
    for name, command in registry_cli.DATASET_COMMANDS.items():
        data_cli.dataset_app.command(name)(command)
    # The order of `modelopsx --help`: a first run and its outcome first, the building blocks after.
    for module in (
        workflow_cli,
        model_cli,
        predict_cli,
        registry_cli,
        data_cli,
        evaluation_cli,
        storage_cli,
        basin_cli,
    ):
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
