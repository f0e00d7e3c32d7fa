"""`modelopsx registry ...`, `modelopsx gate` and `modelopsx dataset publish|list`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from modelopsx.errors import UserError
from modelopsx.registry.store import open_registry_store
from modelopsx.settings import REGISTRY_STORE_HELP

commands = typer.Typer()  # top-level commands of this area
registry_app = typer.Typer(
    name="registry",
    help="Records of datasets, models, evaluations and promotions. The registry is an append-only log in "
    "the store: a record is never changed or removed.",
    no_args_is_help=True,
)

STORE_HELP = REGISTRY_STORE_HELP


def _registry(store_url: str | None) -> Any:
    from modelopsx.registry.log import Registry

    return Registry(open_registry_store(store_url))


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "n/a"


def _decision_cell(decision: dict[str, Any] | None) -> str:
    """`keep vs HOG baseline`, `promote vs champion v1`, or "-" when never gated."""
    from modelopsx.gate.render import reference_name

    if not decision:
        return "-"
    return f"{decision.get('decision', '?')} vs {reference_name(decision).removeprefix('the ')}"


def _columns(kind: str) -> list[str]:
    from modelopsx.hash_labels import CONTENT, DVC, TEST_SPLIT

    if kind == "datasets":
        return ["version", "created", "images", "boxes", f"{CONTENT} hash", f"{DVC} hash"]
    if kind == "models":
        return ["version", "created", "data", "f1", "precision", "recall", "decision", f"{TEST_SPLIT} hash"]
    if kind == "evaluations":
        from modelopsx.gate.policy import CONFIDENCE
        from modelopsx.metric_spec import confidence_label

        return [
            "seq",
            "created",
            "model",
            "f1",
            f"f1 difference ({confidence_label(CONFIDENCE)} interval)",
            "decision",
            f"{TEST_SPLIT} hash",
        ]
    return ["version", "created", "summary"]


def _row(kind: str, record: dict[str, Any], decisions: dict[int, dict[str, Any]]) -> list[str]:
    """One table row; `decisions` maps a model version to its latest gate decision (for the models table)."""
    from modelopsx.hash_labels import short_hash

    created = str(record.get("created_at", ""))[:16].replace("T", " ")
    metrics = record.get("metrics") or {}
    if kind == "datasets":
        counts = record.get("counts") or {}
        return [
            str(record["seq"]),
            created,
            str(counts.get("images", "?")),
            str(counts.get("boxes", "?")),
            short_hash(record.get("content_hash")),
            short_hash(record.get("dvc_hash")),
        ]
    if kind == "models":
        lineage = record.get("lineage") or {}
        data = (
            f"{lineage.get('dataset_name')} v{lineage.get('dataset_version')}"
            if lineage.get("dataset_name")
            else "?"
        )
        return [
            str(record["seq"]),
            created,
            data,
            _number(metrics.get("f1")),
            _number(metrics.get("precision")),
            _number(metrics.get("recall")),
            _decision_cell(decisions.get(int(record["seq"]))),
            short_hash(record.get("test_split_hash")),
        ]
    if kind == "evaluations":
        decision = record.get("decision") or {}
        f1: dict[str, Any] = next(
            (c for c in decision.get("comparisons") or [] if c.get("metric") == "f1"), {}
        )
        difference = "-"
        if f1.get("delta") is not None:
            difference = f"{f1['delta']:+.3f}"
            if f1.get("low") is not None and f1.get("high") is not None:
                difference += f" ({f1['low']:+.3f} .. {f1['high']:+.3f})"
        return [
            str(record["seq"]),
            created,
            f"v{record.get('model_version')}",
            _number(metrics.get("f1")),
            difference,
            _decision_cell(decision),
            short_hash(record.get("test_split_hash")),
        ]
    summary = f"{record.get('action')} -> model v{record.get('model_version')}: {record.get('reason')}"
    return [str(record["seq"]), created, summary]


@registry_app.command("list")
def list_records(
    kind: str = typer.Argument(..., help="datasets, models, evaluations or promotions"),
    name: str | None = typer.Argument(None, help="name; omit to list the names of this kind"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the records as JSON lines, one per record"),
    # Annotated, so that `dataset list` can call this function with plain defaults
    limit: Annotated[
        int, typer.Option("--limit", help="show at most this many versions; 0 shows all of them")
    ] = 20,
    since: Annotated[
        int | None,
        typer.Option("--since", help="show the versions after this one, oldest first (default: the newest)"),
    ] = None,
) -> None:
    """List the names of a kind, or the versions of one name.

    The newest 20 versions unless --limit or --since say otherwise.
    """
    import warnings

    from modelopsx.registry.log import RegistryGapWarning, check_kind, describe_versions

    check_kind(kind)
    if limit < 0:
        raise UserError(f"--limit must be 0 (all) or more, not {limit}")
    if since is not None and since < 0:
        raise UserError(f"--since must be a version number (0 or more), not {since}")
    registry = _registry(store)
    if name is None:
        names = registry.names(kind)
        if as_json:
            _print_json(names)
        elif not names:
            typer.echo(f"no {kind} records yet")
        else:
            typer.echo("\n".join(names))
        return
    page = None
    with warnings.catch_warnings(record=True) as gaps:  # a gap is a note for the user, not a traceback line
        warnings.simplefilter("always", RegistryGapWarning)
        if limit == 0:  # everything, streamed a block at a time
            records: Iterator[dict[str, Any]] = registry.iter_records(kind, name, since)
        else:
            page = registry.page(kind, name, since, limit)
            records = iter(page.records)
    for gap in gaps:
        typer.echo(f"note: {gap.message}", err=True)
    shown = 0
    if as_json:
        for record in records:
            typer.echo(json.dumps(record, sort_keys=True, default=str))
            shown += 1
    else:
        shown = _print_table(registry, kind, name, records)
    if page is not None and page.missing:
        missing = describe_versions(page.missing)
        typer.echo(f"note: versions {missing} are missing (deleted by hand?)", err=True)
    if as_json:
        return
    if page is None or page.head == 0:
        if not shown:
            typer.echo(f"no {kind} records for {name!r}" + (f" after version {since}" if since else ""))
    elif page.first > page.last:
        typer.echo(f"no versions after {since}; the newest is {page.head}")
    elif page.first > 1 or page.last < page.head:
        typer.echo(
            f"versions {page.first}-{page.last} of {page.head}; "
            "page with --since N --limit M (--limit 0: all)"
        )


def _decisions(registry: Any, name: str, models: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The gate's decision for each shown model version, from the evaluations compare recorded; only the
    newest evaluations are read (about two per model version shown), never the whole log."""
    versions = {int(r["seq"]) for r in models}
    if not versions:
        return {}
    decisions: dict[int, dict[str, Any]] = {}
    for evaluation in registry.page("evaluations", name, None, max(2 * len(versions), 20)).records:
        version = evaluation.get("model_version")
        if evaluation.get("decision") and version is not None and int(version) in versions:
            decisions[int(version)] = evaluation["decision"]
    return decisions


def _print_table(registry: Any, kind: str, name: str, records: Iterator[dict[str, Any]]) -> int:
    from rich.console import Console
    from rich.table import Table

    shown = list(records)
    decisions = _decisions(registry, name, shown) if kind == "models" else {}

    table = Table(title=f"{kind}/{name}")
    for col in _columns(kind):
        table.add_column(col, overflow="fold")
    for r in shown:
        table.add_row(*_row(kind, r, decisions))
    if table.row_count:
        Console().print(table)
    return table.row_count


@registry_app.command("champion")
def show_champion(
    name: str = typer.Argument(..., help="model name"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the record as JSON"),
) -> None:
    """Show the current champion of a model.

    The champion is the model version of the latest promotion (or rollback).
    """
    from modelopsx.hash_labels import DVC, TEST_SPLIT, labelled
    from modelopsx.registry.champion import champion

    record = champion(_registry(store), name)
    if record is None:
        if as_json:
            _print_json(None)
        else:
            typer.echo(f"model {name!r} has no champion yet (no promotion recorded)")
        return
    if as_json:
        _print_json(record)
        return
    promo = record["promotion"]
    typer.echo(
        f"champion of {name}: model version {record['seq']} (promotion {promo['seq']}, {promo['action']}: "
        f"{promo['reason']})"
    )
    files, split = labelled(DVC, record.get("dvc_hash")), labelled(TEST_SPLIT, record.get("test_split_hash"))
    typer.echo(f"  files {files}, scored on {split}")
    for metric, value in (record.get("metrics") or {}).items():
        typer.echo(f"  {metric}: {value}")


@registry_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="model name"),
    to: int = typer.Option(..., "--to", help="model version to make champion again"),
    reason: str = typer.Option(..., "--reason", help="why (stored in the promotion record)"),
    serving_uri: str | None = typer.Option(
        None, "--serving-uri", help="redeploy there as a new serving version"
    ),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Make an older model version the champion again.

    Appends a new promotion record; with --serving-uri the model is also redeployed there.
    """
    from modelopsx.registry.champion import rollback

    record = rollback(_registry(store), name, to, reason, serving_uri)
    typer.echo(f"rolled back {name} to model version {to} (promotion {record['seq']})")
    if serving_uri:
        typer.echo(f"deployed to {serving_uri.rstrip('/')}/{name}/{record['seq']}")
    else:
        typer.echo(f"serving not updated; deploy with `modelopsx registry repair {name} --serving-uri URI`")


@registry_app.command("repair")
def repair_cmd(
    name: str = typer.Argument(..., help="model name"),
    serving_uri: str = typer.Option(..., "--serving-uri", help="serving root to check and repair"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Finish interrupted deploys.

    Catches the serving folder up with the registry's champion.
    """
    from modelopsx.registry.deploy import repair_serving

    version = repair_serving(_registry(store), serving_uri, name)
    typer.echo(
        f"serving was up to date for {name}" if version is None else f"repaired: deployed version {version}"
    )


def _read_json_file(path: Path, what: str) -> Any:
    from modelopsx.gate.evidence import EvidenceError
    from modelopsx.jsonfile import read_json

    return read_json(path, f"{what} file", EvidenceError, "pass a metrics JSON written by evaluation")


def _threshold_of(data: Any, what: str) -> float:
    from modelopsx.registry.compare import operating_threshold

    metrics = (
        data.get("metrics") if isinstance(data, dict) and isinstance(data.get("metrics"), dict) else data
    )
    value = (metrics or {}).get("score_threshold") if isinstance(metrics, dict) else None
    return operating_threshold(value, f"the {what} (metrics.score_threshold)")


@commands.command("gate")
def gate_cmd(
    candidate: Path = typer.Option(..., "--candidate", help="candidate metrics JSON (an evaluation's)"),
    champion_name: str | None = typer.Option(
        None, "--champion", help="model name whose registry champion to compare with"
    ),
    champion_metrics: Path | None = typer.Option(
        None, "--champion-metrics", help="champion metrics JSON (instead of --champion)"
    ),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="test split (dir or annotations.json) both models were scored on"
    ),
    candidate_detections: Path | None = typer.Option(
        None, "--candidate-detections", help="candidate's COCO detections on that split"
    ),
    champion_detections: Path | None = typer.Option(
        None, "--champion-detections", help="champion's COCO detections on that split"
    ),
    policy: str | None = typer.Option(None, "--policy", help="policy file (YAML/JSON) or inline JSON"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    out: Path | None = typer.Option(None, "--out", help="write decision.json and decision.md here"),
    as_json: bool = typer.Option(False, "--json", help="print the decision as JSON"),
) -> None:
    """Decide whether a candidate model replaces the champion.

    Promote and keep are both normal outcomes (exit 0); metrics it cannot trust exit 2.

    The default policy needs a paired bootstrap: pass --annotations with both --*-detections (each model
    scored at the score_threshold in its metrics file); without them the decision is keep. With --champion
    the champion's recorded metrics are used as they are; the pipeline's compare step re-scores the champion
    on the current test split.
    """
    from modelopsx.gate.decide import decide
    from modelopsx.gate.evidence import metrics_from_json
    from modelopsx.gate.policy import GatePolicy

    gate_policy = GatePolicy.load(policy)
    required = gate_policy.compared_metrics()
    if champion_metrics is not None and champion_name is not None:
        raise UserError("pass either --champion or --champion-metrics, not both")
    cand_data = _read_json_file(candidate, "candidate metrics")
    cand = metrics_from_json(cand_data, f"candidate metrics {candidate}", required)
    champ_data: Any = None
    info: dict[str, Any] | None = None
    if champion_metrics is not None:
        champ_data = _read_json_file(champion_metrics, "champion metrics")
        info = {"metrics_file": str(champion_metrics)}
    elif champion_name is not None:
        from modelopsx.registry.champion import champion

        record = champion(_registry(store), champion_name)
        if record is not None:
            champ_data = {"metrics": dict(record.get("metrics") or {}), "score_threshold": None}
            info = {
                "model_name": champion_name,
                "model_version": record["seq"],
                "test_split_hash": record.get("test_split_hash"),
            }
    champ = None if champ_data is None else metrics_from_json(champ_data, "champion metrics", required)
    bootstrap = None
    given = [candidate_detections, champion_detections, annotations]
    if any(given) and not all(given):
        raise UserError(
            "a paired bootstrap needs --annotations, --candidate-detections and --champion-detections "
            "together"
        )
    if all(given) and champ_data is not None:
        from modelopsx.registry.compare import gate_bootstrap, load_detections

        bootstrap = gate_bootstrap(
            gate_policy,
            Path(str(annotations)),
            load_detections(Path(str(champion_detections)), "champion"),
            _threshold_of(champ_data, "champion metrics"),
            load_detections(Path(str(candidate_detections)), "candidate"),
            _threshold_of(cand_data, "candidate metrics"),
        )
    decision = decide(cand, champ, gate_policy, bootstrap, champion_info=info)
    if out is not None:
        decision.write(out)
    if as_json:
        _print_json(decision.to_json())
    else:
        typer.echo("\n".join(decision.summary_lines()))


def _mirror_commands() -> typer.Typer:
    from modelopsx.registry.mirror.cli import commands as mirror

    return mirror


# `modelopsx dataset publish|list`: commands of the dataset group (modelopsx.data.cli), which sits below the
# registry and so cannot import them; the top-level command mounts them there under these names.
def publish_cmd(
    dataset_dir: Path = typer.Argument(..., help="canonical dataset directory"),
    name: str = typer.Option(..., "--name", help="dataset name in the registry"),
    store: str | None = typer.Option(None, "--store", help=REGISTRY_STORE_HELP),
    description: str | None = typer.Option(None, "--description", help="free text for the record"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Publish a dataset folder as a new registry version.

    Validates it, pushes it to the store (DVC layout), records a new version and prints it.
    """
    from modelopsx.registry.datasets import publish_dataset

    if not dataset_dir.is_dir():
        raise UserError(
            f"{dataset_dir} is not a directory", hint="pass a dataset dir (images/ + annotations.json)"
        )
    from modelopsx.hash_labels import CONTENT, DVC, labelled

    record = publish_dataset(
        dataset_dir, name, open_registry_store(store), quiet=quiet, description=description
    )
    if record.get("unchanged"):
        typer.echo(f"{name}: unchanged, still version {record['version']}")
    else:
        hashes = f"{labelled(CONTENT, record.get('content_hash'))}, {labelled(DVC, record.get('dvc_hash'))}"
        typer.echo(f"published {name} version {record['version']} ({hashes})")


def dataset_list_cmd(
    name: str | None = typer.Argument(None, help="dataset name; omit to list all datasets"),
    store: str | None = typer.Option(None, "--store", help=REGISTRY_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print records as JSON"),
) -> None:
    """List datasets, or the versions of one dataset."""
    list_records("datasets", name, store, as_json)


DATASET_COMMANDS: dict[str, Callable[..., None]] = {"publish": publish_cmd, "list": dataset_list_cmd}

CLI = (registry_app, commands, _mirror_commands())
