"""`modelopsx run | compile | submit`: the pipeline locally, compiled for KFP, or sent to a cluster."""

from __future__ import annotations

from pathlib import Path

import typer

commands = typer.Typer()  # top-level commands of this area


@commands.command()
def run(
    dataset: Path | None = typer.Option(
        None,
        "--dataset",
        help="Canonical dataset folder to train on "
        "(published to Basin first). Default: the synthetic dataset.",
    ),
    dataset_name: str | None = typer.Option(
        None, "--dataset-name", help="Registry name for --dataset (default: its folder name)."
    ),
    basin_endpoint: str | None = typer.Option(
        None,
        "--basin-endpoint",
        help="A real Basin S3 adapter (keys and store from "
        "MODELOPSX_BASIN_*). Default: the embedded emulator.",
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter NAME=VALUE (repeatable)."),
    images: int = typer.Option(600, "--images", min=8, help="Size of the synthetic dataset when generated."),
    pipeline: str = typer.Option(
        "training", "--pipeline", help="training, or sweep (trials from --param trials='[...]')."
    ),
    new_batch: int = typer.Option(
        100,
        "--new-batch",
        min=0,
        help="On every run after the first, publish this many new synthetic scenes as the next "
        "dataset version (0: train on the latest version again).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print the summary."),
) -> None:
    """Run the whole pipeline locally and print what happened.

    The training pipeline runs through kfp.local against Basin (an embedded emulator by default). The summary
    names every step, the gate's decision and the champion, what to do next, and the HTML report's path;
    `modelopsx runs` lists past runs.
    """
    import tempfile

    from modelopsx.workflow.local_run import format_summary, local_pipeline, run_local
    from modelopsx.workflow.submit import parse_params, pipeline_parameters

    arguments = {}
    if param:
        from kfp import compiler

        with tempfile.TemporaryDirectory() as tmp:
            package = Path(tmp) / "pipeline.yaml"
            compiler.Compiler().compile(local_pipeline(pipeline), str(package))
            arguments = parse_params(param, pipeline_parameters(package))
    summary = run_local(
        dataset_dir=dataset,
        dataset_name=dataset_name,
        basin_endpoint=basin_endpoint,
        params=arguments,
        synthetic_images=images,
        quiet=quiet,
        new_batch=new_batch,
        pipeline=pipeline,
    )
    typer.echo(format_summary(summary))


@commands.command("runs")
def runs_command(
    as_json: bool = typer.Option(False, "--json", help="Print the run records as JSON."),
) -> None:
    """List past local runs, oldest first.

    Each `make run` (or `modelopsx run`) in this folder: when it finished, the data and model versions, the
    gate's decision, the champion after it, and its report.
    """
    import json

    from modelopsx.gate.render import text_table
    from modelopsx.settings import state_dir
    from modelopsx.workflow.local_run import past_runs

    runs = past_runs()
    if as_json:
        typer.echo(json.dumps(runs, indent=2))
        return
    if not runs:
        typer.echo(f"no local runs recorded in {state_dir()} yet: start one with `make run`")
        return
    rows = []
    for run in runs:
        data, model = run.get("dataset") or {}, run.get("model") or {}
        champion = run.get("champion_after")
        rows.append(
            [
                str(run.get("finished_at", ""))[:16].replace("T", " "),
                f"{data.get('name')} v{data.get('version')}",
                "-" if model.get("version") is None else f"v{model['version']}",
                str(run.get("decision", "")),
                "none" if champion is None else f"v{champion}",
                str(run.get("report") or run.get("log") or ""),
            ]
        )
    header = ["finished (UTC)", "data", "model", "decision", "champion after", "report"]
    typer.echo("\n".join(text_table(header, rows, indent="")))


@commands.command(name="compile")
def compile_command(
    out: Path = typer.Option(Path("pipelines/compiled"), "--out", help="Folder for the YAML files."),
) -> None:
    """Compile the pipelines to KFP YAML.

    The training pipeline (GPU and CPU variants) and the sweep pipeline.
    """
    from modelopsx.workflow.compile import compile_pipelines

    for path in compile_pipelines(out):
        typer.echo(str(path))


@commands.command()
def submit(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API/UI URL, e.g. http://localhost:8080"),
    cpu: bool = typer.Option(False, "--cpu", help="Submit the CPU fallback (no GPU requests), e.g. on kind."),
    pipeline: str = typer.Option("training", "--pipeline", help="training or sweep."),
    experiment: str = typer.Option("modelopsx", "--experiment", help="KFP experiment to run in."),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter NAME=VALUE (repeatable)."),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Cron expression: create a recurring run instead of one run."
    ),
    run_name: str | None = typer.Option(None, "--run-name", help="Name of the run (default: timestamped)."),
) -> None:
    """Send the pipeline to Kubeflow Pipelines and start a run.

    Uploads the compiled pipeline (a new version if it exists) and starts a run, or a recurring run with
    --schedule.
    """
    from modelopsx.workflow.submit import submit as submit_pipeline

    result = submit_pipeline(
        host,
        pipeline=pipeline,
        cpu=cpu,
        experiment=experiment,
        params=param,
        schedule=schedule,
        run_name=run_name,
    )
    typer.echo(f"pipeline   {result.pipeline_name} ({result.pipeline_id}), version {result.version_name}")
    if result.recurring_run_id:
        typer.echo(f"recurring  {result.recurring_run_id} in experiment {result.experiment}")
    else:
        typer.echo(f"run        {result.run_id} in experiment {result.experiment}")


CLI = (commands,)
