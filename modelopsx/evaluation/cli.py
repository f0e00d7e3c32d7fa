"""`modelopsx evaluate`: score COCO-format detections against a canonical ground truth."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from modelopsx.errors import UserError
from modelopsx.metric_spec import DEFAULT_CONFIDENCE, confidence_label

commands = typer.Typer()  # top-level commands of this area


def _refuse_overwrite(path: Path, overwrite: bool, what: str) -> None:
    if overwrite:
        return
    if path.is_file() or (path.is_dir() and any(path.iterdir())):
        raise UserError(
            f"{path} already exists; refusing to overwrite the {what}",
            hint="choose another path or pass --overwrite",
        )


def _print_table(result: Any, baseline: Any | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from modelopsx.metric_spec import METRIC_DOCS, METRIC_NAMES

    table = Table(title="Evaluation", show_lines=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    if baseline is not None:
        table.add_column("baseline", justify="right")
    table.add_column("meaning", style="dim", overflow="fold")
    for name in METRIC_NAMES:
        value = result.metrics.get(name)
        shown = f"{value:.4f}" if value is not None else f"[yellow]n/a[/] ({result.undefined.get(name, '')})"
        row = [name, shown]
        if baseline is not None:
            base = baseline.metrics.get(name)
            row.append("n/a" if base is None else f"{base:.4f}")
        row.append(METRIC_DOCS[name])
        table.add_row(*row)
    console = Console()
    console.print(table)
    c = result.confusion
    console.print(
        f"image-level confusion: tp={c['tp']} fp={c['fp']} fn={c['fn']} tn={c['tn']}   "
        f"threshold source: {result.score_threshold_source}",
        highlight=False,
    )


@commands.command("evaluate")
def evaluate_command(
    annotations: Path = typer.Option(
        ..., "--annotations", "-a", help="Ground truth: canonical annotations.json or its folder."
    ),
    detections: Path = typer.Option(..., "--detections", "-d", help="Detections, COCO results JSON."),
    score_threshold: float | None = typer.Option(
        None,
        "--score-threshold",
        "-t",
        min=0.0,
        help="Operating threshold (from validation); default: the max-F1 threshold of these detections.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the metrics JSON here."),
    report: Path | None = typer.Option(
        None, "--report", help="Write an HTML report (with PNGs) into this folder."
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Baseline detections (e.g. HOG) for a comparison column."
    ),
    baseline_threshold: float | None = typer.Option(
        None, "--baseline-threshold", min=0.0, help="Score threshold for the baseline."
    ),
    bootstrap: int = typer.Option(
        0,
        "--bootstrap",
        min=0,
        help=f"Add {confidence_label()} bootstrap intervals from this many image resamples.",
    ),
    title: str = typer.Option("Pedestrian detection evaluation", "--title", help="Report title."),
    drop_unknown_images: bool = typer.Option(
        False, "--drop-unknown-images", help="Drop (and count) detections on images not in the annotations."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing --out file or --report folder."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, no progress."),
) -> None:
    """Score COCO-format detections against a ground truth.

    Precision, recall, F1, accuracy, AP50, AP and the miss rates; prints a table, writes JSON.
    """
    from rich.console import Console

    from modelopsx.evaluation.inputs import load_detections, load_ground_truth
    from modelopsx.evaluation.metrics import evaluate_prepared, prepare

    if out is not None:
        _refuse_overwrite(out, overwrite, "metrics file")
    if report is not None:
        _refuse_overwrite(report, overwrite, "report folder")
    status = Console(stderr=True).status("evaluating", spinner="dots")
    if not quiet:
        status.start()
    try:
        gt = load_ground_truth(annotations)
        dets = load_detections(detections)
        result = evaluate_prepared(prepare(gt, dets, drop_unknown_images), score_threshold)
        base_result = None
        if baseline is not None:
            base_prep = prepare(gt, load_detections(baseline), drop_unknown_images)
            base_result = evaluate_prepared(base_prep, baseline_threshold)
        payload: dict[str, Any] = result.to_json()
        if baseline is not None and base_result is not None:
            payload["baseline"] = base_result.to_json()
        if bootstrap:
            from modelopsx.evaluation.bootstrap import bootstrap_intervals

            if drop_unknown_images:
                known = {img.id for img in gt.images}
                dets = [d for d in dets if not isinstance(d, dict) or d.get("image_id") in known]
            payload["intervals"] = {
                k: list(v)
                for k, v in bootstrap_intervals(
                    gt,
                    dets,
                    n_resamples=bootstrap,
                    confidence=DEFAULT_CONFIDENCE,
                    score_threshold=result.metrics["score_threshold"],
                ).items()
            }
        html_path = None
        if report is not None:
            from modelopsx.evaluation.report import write_report

            shown = {k: (v[0], v[1]) for k, v in payload.get("intervals", {}).items()} if bootstrap else None
            html_path = write_report(
                result,
                gt,
                dets,
                report,
                title=title,
                baseline=base_result,
                intervals=shown,
                confidence=DEFAULT_CONFIDENCE,
            )
    finally:
        status.stop()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, out)
    if not quiet:
        _print_table(result, base_result)
        if "intervals" in payload:
            for name, (low, high) in payload["intervals"].items():
                typer.echo(f"  {name}: {confidence_label()} interval [{low:.4f}, {high:.4f}]")
        if out is not None:
            typer.echo(f"metrics written to {out}")
        if html_path is not None:
            typer.echo(f"report written to {html_path}")


CLI = (commands,)
