"""Commands of this area; `register` adds them to the root `modelopsx` app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command()
    def run() -> None:
        """Run the whole pipeline locally on the embedded default dataset."""
        typer.echo("pipeline not built yet: `modelopsx run` will run the training pipeline once it lands.")
