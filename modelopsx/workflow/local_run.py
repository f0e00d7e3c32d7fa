"""`modelopsx run` (= `make run`): the CPU training pipeline through kfp.local against an embedded Basin.

State that must outlive a run sits under the state dir (`.modelopsx/`): the emulator's data (so the next run
gates against this run's champion), copies of the reports, run logs, the served models. kfp.local's own
pipeline root and workspace are temporary directories elsewhere: kfp.local deletes its workspace after every
run, so it must never point at anything we keep.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# The embedded emulator checks SigV4 like the real adapter with these loopback-only keys.
from modelopsx.basin.local import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY
from modelopsx.errors import DatasetError, PipelineError
from modelopsx.gate.decision import Decision
from modelopsx.gate.verdict import PROMOTE
from modelopsx.settings import DEFAULT_STORE, ENV_PREFIX, env, state_dir

SYNTHETIC_DATASET = "synthetic"
SYNTHETIC_IMAGES = 600
# Each later run of the built-in dataset publishes this many new street scenes as its next version: new data
# arriving, on which the next model is trained from the champion and both are compared.
SYNTHETIC_BATCH = 100

LOCAL_PIPELINES = ("training", "sweep")


def local_pipeline(name: str) -> Any:
    """The CPU variant of a pipeline, as `modelopsx run --pipeline NAME` runs it."""
    if name == "training":
        from modelopsx.pipelines.training_pipeline import build_training_pipeline

        return build_training_pipeline(gpu=False)
    if name == "sweep":
        from modelopsx.pipelines.sweep_pipeline import build_sweep_pipeline

        return build_sweep_pipeline(gpu=False)
    raise PipelineError(f"unknown pipeline {name!r}", hint=f"choose one of: {', '.join(LOCAL_PIPELINES)}")


@dataclass(frozen=True)
class Step:
    """One pipeline task as the run saw it: done (or its failure status), or skipped with the reason."""

    name: str
    status: str
    seconds: float | None = None
    note: str = ""


@dataclass
class LocalRunSummary:
    run_id: str
    dataset: dict[str, Any]
    model_version: int | None
    metrics: dict[str, Any]
    decision: str
    reason: str
    champion_version: int | None
    report: Path | None
    log: Path
    endpoint: str
    wall_s: float
    deployed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    model_name: str = ""
    synthetic_batch: int = 0  # new scenes the next run of the built-in dataset brings (0: none)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the run (components inherit them), then restore the old values."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _basin(state: Path, endpoint: str | None) -> Iterator[str]:
    """Yield the Basin endpoint: the given adapter, or an emulator on a free loopback port."""
    if endpoint:
        from modelopsx.workflow.stages import require_reachable

        require_reachable(endpoint)
        with _environment({ENV_PREFIX + "BASIN_ENDPOINT": endpoint}):
            yield endpoint
        return
    from modelopsx.basin.server import BasinEmulator

    emulator = BasinEmulator(root=state / "basin", access_key=LOCAL_ACCESS_KEY, secret_key=LOCAL_SECRET_KEY)
    emulator.start()
    if emulator.quarantine.entries:
        print(f"warning: {emulator.quarantine.summary()}", file=sys.stderr, flush=True)
    try:
        with _environment(
            {
                ENV_PREFIX + "BASIN_ENDPOINT": emulator.endpoint,
                ENV_PREFIX + "BASIN_ACCESS_KEY": LOCAL_ACCESS_KEY,
                ENV_PREFIX + "BASIN_SECRET_KEY": LOCAL_SECRET_KEY,
                ENV_PREFIX + "BASIN_STORE": env("BASIN_STORE") or DEFAULT_STORE,
            }
        ):
            yield emulator.endpoint
    finally:
        emulator.stop()


def ensure_dataset(
    dataset_dir: Path | None,
    name: str,
    synthetic_images: int,
    quiet: bool,
    say: Any,
    new_batch: int = 0,
) -> dict[str, Any]:
    """Make sure Basin holds the dataset to train on; returns its latest record.

    A user's directory is published (publishing content equal to the latest version adds nothing). The
    synthetic dataset is generated and published when Basin holds none; after that, `new_batch` > 0 publishes
    the next version with that many new scenes (rendering is deterministic per image index, so the earlier
    images stay byte-identical and keep their splits).
    """
    from modelopsx.registry.datasets import publish_dataset
    from modelopsx.workflow.stages import open_basin, open_registry

    registry = open_registry()
    latest: dict[str, Any] | None = registry.latest("datasets", name)
    if dataset_dir is not None:
        record = dict(publish_dataset(dataset_dir, name, open_basin(), quiet=quiet))  # no-op when unchanged
        if not record.get("unchanged"):
            say(f"published {dataset_dir} to Basin as dataset '{name}' v{record.get('version')}")
        return record
    if name != SYNTHETIC_DATASET:
        return latest or {}  # a named dataset must exist already: resolving it reports what does
    if latest is not None and new_batch <= 0:
        return latest
    from modelopsx.data.synth import generate_synthetic

    count = synthetic_images
    if latest is None:
        say(f"Basin holds no dataset '{name}': generating {count} synthetic street scenes")
    else:
        count = int((latest.get("counts") or {}).get("images", synthetic_images)) + new_batch
        say(f"new data: {new_batch} more synthetic street scenes as the next version of '{name}'")
    with tempfile.TemporaryDirectory(prefix="modelopsx-synthetic-") as tmp:
        generate_synthetic(Path(tmp) / name, count, seed=0, quiet=quiet)
        record = dict(publish_dataset(Path(tmp) / name, name, open_basin(), quiet=quiet))
    say(f"published '{name}' v{record.get('version')} ({count} images)")
    return record


def check_run_arguments(dataset_dir: Path | None, dataset_name: str | None, params: dict[str, Any]) -> None:
    """Refuse bad arguments before the emulator starts or anything is published."""
    from modelopsx.data.format import ANNOTATIONS_FILE
    from modelopsx.registry.log import check_name

    if dataset_dir is not None:
        if not dataset_dir.is_dir():
            raise DatasetError(
                f"--dataset {dataset_dir} is not a folder",
                hint="pass a canonical dataset folder (images/ + annotations.json), e.g. the --out of "
                "`modelopsx dataset import`",
            )
        if not (dataset_dir / ANNOTATIONS_FILE).is_file():
            raise DatasetError(
                f"--dataset {dataset_dir} has no {ANNOTATIONS_FILE}",
                hint="convert it first: `modelopsx dataset import SRC --format ... --out DIR`",
            )
    name = dataset_name or (dataset_dir.resolve().name if dataset_dir is not None else None)
    if name is not None:
        check_name(name)
    if "gate_policy" in params:
        from modelopsx.gate.policy import GatePolicy

        GatePolicy.from_json_string(str(params["gate_policy"]))
    if "train_workers" in params:
        from modelopsx.model.distributed import parse_worker_count

        if parse_worker_count(params["train_workers"]) > 1:
            raise PipelineError(
                f"train_workers {params['train_workers']} needs a cluster with Kubeflow Trainer",
                hint="a local run trains in one process: leave train_workers at 1, or submit the pipeline "
                "to a cluster (`modelopsx submit`)",
            )


class _ProgressLog(io.TextIOBase):
    """The pipeline's log goes to a file; task starts and ends are echoed as one line each."""

    def __init__(self, path: Path, console: TextIO | None) -> None:
        self._file = path.open("w", encoding="utf-8")
        self._console = console
        self._started: dict[str, float] = {}
        self.finished: dict[str, tuple[str, float]] = {}  # task -> (status, seconds), in finishing order
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._file.write(text)
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._progress(_strip_ansi(line))
        return len(text)

    def _progress(self, line: str) -> None:
        if (match := re.search(r"Executing task '([\w-]+)'", line)) is not None:
            self._started[match.group(1)] = time.monotonic()
        elif (match := re.search(r"Task '([\w-]+)' finished with status (\w+)", line)) is not None:
            task, status = match.groups()
            took = time.monotonic() - self._started.get(task, time.monotonic())
            mark = "done" if status == "SUCCESS" else status.lower()
            self.finished[task] = (mark, took)
            if self._console is not None:
                print(f"  {task:<22} {mark:<8} {took:6.1f} s", file=self._console, flush=True)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        super().close()
        self._file.close()


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _failure_details(log: Path) -> str:
    """What the user must fix: the step's last library error message (with its hint), else the last
    exception line, else the end of the log."""
    lines = _strip_ansi(log.read_text(errors="replace")).splitlines()
    for pattern in (r"modelopsx\.errors\.\w+: (.*)", r"^\s*((?:[\w.]+\.)?\w*(?:Error|Exception)\w*: .*)"):
        for index in range(len(lines) - 1, -1, -1):
            match = re.search(pattern, lines[index])
            if match:
                hint = [ln.strip() for ln in lines[index + 1 : index + 2] if "hint:" in ln]
                return "\n  ".join([match.group(1), *hint])
    return "\n  ".join(ln.strip() for ln in lines[-5:] if ln.strip())


def run_local(
    dataset_dir: Path | None = None,
    dataset_name: str | None = None,
    basin_endpoint: str | None = None,
    params: dict[str, Any] | None = None,
    synthetic_images: int = SYNTHETIC_IMAGES,
    quiet: bool = False,
    state: Path | None = None,
    new_batch: int = SYNTHETIC_BATCH,
    pipeline: str = "training",
) -> LocalRunSummary:
    """Run the CPU training pipeline end to end through kfp.local; returns what the summary prints.

    With the built-in synthetic dataset and `dataset_version` latest, every run after the first publishes
    `new_batch` new scenes as the next dataset version first (0: train on the latest version again). Each
    run that gets as far as the pipeline leaves a record in `<state>/runs/` (`modelopsx runs` lists them)."""
    params = dict(params or {})
    check_run_arguments(dataset_dir, dataset_name, params)
    pipeline_fn = local_pipeline(pipeline)
    if str(params.get("dataset_version", "latest")) != "latest":
        new_batch = 0  # a pinned version is a rerun on old data, not new data arriving
    started = time.monotonic()
    state = (state or state_dir()).resolve()
    state.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (state / "logs").mkdir(exist_ok=True)
    log_path = state / "logs" / f"run-{run_id}.log"
    console = None if quiet else sys.stderr
    # Progress bars only on a terminal: in a log or a pipe each frame would stay, run into the next line.
    bars_quiet = quiet or console is None or not console.isatty()

    def say(message: str) -> None:
        if console is not None:
            print(message, file=console, flush=True)

    name = str(
        dataset_name
        or params.pop("dataset_name", None)
        or (dataset_dir.name if dataset_dir else SYNTHETIC_DATASET)
    )
    arguments: dict[str, Any] = {"dataset_name": name, "serving_uri": str(state / "serving"), **params}
    with _basin(state, basin_endpoint) as endpoint:
        from modelopsx.registry.datasets import resolve_dataset
        from modelopsx.storage.stores import ensure_store
        from modelopsx.workflow.stages import basin_store_url, open_registry

        say(f"Basin at {endpoint}, store {basin_store_url()}")
        ensure_store(basin_store_url())
        ensure_dataset(dataset_dir, name, synthetic_images, bars_quiet, say, new_batch)
        # Resolve here too, so an unknown name or version fails with the registry's listing, not a step log.
        dataset = dict(
            resolve_dataset(open_registry(), name, str(arguments.get("dataset_version", "latest")))
        )
        say(
            f"dataset '{name}' v{dataset.get('version', dataset.get('seq'))}; running the pipeline "
            f"(log: {log_path})"
        )
        try:
            report, finished = _run_pipeline(
                pipeline_fn, arguments, log_path, console, state / "reports" / run_id
            )
        except PipelineError as exc:
            record_run(state, _failed_run_record(run_id, dataset, exc, log_path, time.monotonic() - started))
            raise
        summary = _summarize(run_id, dataset, arguments, report, log_path, endpoint)
    summary.wall_s = time.monotonic() - started
    summary.steps = pipeline_steps(pipeline_fn, finished, summary)
    summary.synthetic_batch = new_batch if name == SYNTHETIC_DATASET and dataset_dir is None else 0
    if summary.report is not None:
        add_decision_to_report(summary)
    record_run(state, run_record(summary))
    return summary


def _run_pipeline(
    pipeline: Any, arguments: dict[str, Any], log_path: Path, console: TextIO | None, report_dir: Path
) -> tuple[Path | None, dict[str, tuple[str, float]]]:
    """Run the pipeline in a throwaway kfp.local root; copy the HTML report out before it is deleted.
    Returns the report and each finished task's (status, seconds)."""
    import warnings

    from kfp import local

    root = Path(tempfile.mkdtemp(prefix="modelopsx-kfp-"))
    workspace = Path(tempfile.mkdtemp(prefix="modelopsx-kfp-workspace-"))
    progress = _ProgressLog(log_path, console)
    try:
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(root / "outputs"),
            workspace_root=str(workspace),
            raise_on_error=True,
        )
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(progress),
            contextlib.redirect_stderr(progress),
        ):
            warnings.simplefilter("ignore")  # kfp warns that our image name does not contain "python"
            try:
                pipeline(**arguments)
            except RuntimeError as exc:
                failed = re.search(r"Inner task failed: (.*)\.", _strip_ansi(str(exc)))
                step = failed.group(1) if failed else "a step"
                progress.flush()
                raise PipelineError(
                    f"the pipeline failed in {step}: {_failure_details(log_path)}",
                    hint=f"the full log is {log_path}",
                ) from None
        # the evaluated model's report; a sweep's is the selected trial's, inside its evaluation folder
        outputs = root / "outputs"
        reports = sorted(outputs.glob("*/select-best/best_evaluation/report/index.html")) or sorted(
            p for p in outputs.glob("*/evaluate/report") if p.is_file()
        )
        if not reports:
            return None, dict(progress.finished)
        report_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(reports[-1], report_dir / "index.html")), dict(progress.finished)
    finally:
        progress.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workspace, ignore_errors=True)


def _spec_tasks(pipeline: Any) -> list[tuple[str, bool]]:
    """Every task of the pipeline that runs a container, with whether it sits under a condition, in the
    order the spec lists them."""
    spec = pipeline.pipeline_spec
    found: list[tuple[str, bool]] = []

    def walk(dag: Any, conditional: bool) -> None:
        for task_name, task in dag.tasks.items():
            component = spec.components.get(task.component_ref.name)
            inner = conditional or bool(task.trigger_policy.condition)
            if component is not None and component.HasField("dag"):
                walk(component.dag, inner)
            elif all(task_name != name for name, _ in found):
                found.append((task_name, inner))

    walk(spec.root.dag, False)
    return found


def pipeline_steps(
    pipeline: Any, finished: dict[str, tuple[str, float]], summary: LocalRunSummary
) -> list[Step]:
    """Every task: those that ran, in the order they finished, then those that did not, saying why."""
    steps = [Step(name, status, seconds) for name, (status, seconds) in finished.items()]
    for name, conditional in _spec_tasks(pipeline):
        if name in finished:
            continue
        if conditional and summary.decision != PROMOTE:
            note = f"the gate decided {summary.decision}, so there is nothing to deploy"
        elif conditional:
            note = "its condition was not met"
        else:
            note = "did not run"
        steps.append(Step(name, "skipped", None, note))
    return steps


def _summarize(
    run_id: str,
    dataset: dict[str, Any],
    arguments: dict[str, Any],
    report: Path | None,
    log_path: Path,
    endpoint: str,
) -> LocalRunSummary:
    """Read the run's outcome back from the registry: it is the record of truth, not the step logs."""
    from modelopsx.registry.champion import champion as current_champion
    from modelopsx.settings import DEFAULT_MODEL_NAME
    from modelopsx.workflow.stages import open_registry

    model_name = str(arguments.get("model_name", DEFAULT_MODEL_NAME))
    registry = open_registry()
    # The newest gated evaluation, read newest first: a long log is not read whole.
    evaluations = registry.iter_newest("evaluations", model_name)
    evaluation = next((r for r in evaluations if r.get("decision")), {})
    decision = (
        Decision.from_json(evaluation["decision"], where=f"of {model_name} in the registry")
        if evaluation
        else None
    )
    champion = current_champion(registry, model_name)
    champion_version = None if champion is None else int(champion["seq"])
    version = evaluation.get("model_version")
    model: dict[str, Any] = {}
    if version is not None:
        model = registry.get("models", model_name, int(version))
    return LocalRunSummary(
        run_id=run_id,
        dataset=dataset,
        model_version=version,
        metrics=evaluation.get("metrics", {}),
        decision=decision.decision if decision else "unknown",
        reason=decision.reason if decision else "",
        champion_version=champion_version,
        report=report,
        log=log_path,
        endpoint=endpoint,
        wall_s=0.0,
        deployed=champion_version is not None and champion_version == version,
        extra={
            "decision": decision,
            "training": dict(model.get("training") or {}),
            "parameters": dict(model.get("parameters") or {}),
        },
        model_name=model_name,
    )


# --------------------------------------------------------------------------------------------- the summary

SHOWN_METRICS = ("precision", "recall", "f1", "accuracy", "ap50", "ap", "mr2_reasonable")
SUMMARY_WIDTH = 110  # the decision's sentence is wrapped to this; tables and paths are not


def _training_text(training: dict[str, Any]) -> str:
    if not training:
        return "(no training record)"
    text = f"{training.get('epochs_run', '?')} epochs from {training.get('initial_weights', '?')}"
    if training.get("time_limit_hit"):
        text += " (STOPPED BY THE TIME LIMIT: this run is not comparable to one on a quieter machine)"
    return text


def _steps_lines(steps: list[Step]) -> list[str]:
    done = [s.name for s in steps if s.status == "done"]
    lines = [f"steps      {', '.join(done)}: done"] if done else []
    for step in steps:
        if step.status == "done":
            continue
        pad = "steps      " if not lines else "           "
        lines.append(f"{pad}{step.name}: {step.status}" + (f" ({step.note})" if step.note else ""))
    return lines


def _dataset_text(dataset: dict[str, Any]) -> str:
    from modelopsx.hash_labels import CONTENT, DVC, labelled

    images = (dataset.get("counts") or {}).get("images", "?")
    return (
        f"{dataset.get('name', '')} v{_version(dataset)}: {images} images "
        f"({labelled(CONTENT, dataset.get('content_hash'))}, {labelled(DVC, dataset.get('dvc_hash'))})"
    )


def _next_steps(summary: LocalRunSummary) -> list[tuple[str, str]]:
    """What to do next, as (command, what it does)."""
    name = summary.model_name or "pedestrian-detector"
    start = (
        f"champion v{summary.champion_version}"
        if summary.champion_version is not None
        else f"model v{summary.model_version} (no champion yet)"
        if summary.model_version is not None
        else "scratch"
    )
    steps: list[tuple[str, str]] = []
    if summary.synthetic_batch > 0:
        version = _version(summary.dataset)
        upcoming = version + 1 if isinstance(version, int) else "next"
        steps.append(
            (
                "make run",
                f"{summary.synthetic_batch} new scenes arrive as {summary.dataset.get('name')} v{upcoming}; "
                f"train from {start}",
            )
        )
    else:
        steps.append(("make run", f"train again, from {start}"))
    if summary.report is not None:
        steps.append((f"open {summary.report}", "the report: decision, metrics, curves, sample images"))
    if summary.champion_version is not None:
        steps.append(
            (
                "modelopsx predict IMAGE...",
                f"find pedestrians with the champion (v{summary.champion_version})",
            )
        )
    elif summary.model_version is not None:
        steps.append(
            (f"modelopsx predict --model {name}@v{summary.model_version} IMAGE...", "try this model anyway")
        )
    steps.append((f"modelopsx registry list evaluations {name}", "every decision so far, with f1"))
    steps.append(("modelopsx runs", "this run and the ones before it"))
    return steps


def run_decision(summary: LocalRunSummary) -> Decision | None:
    """The run's gate decision, read through Decision (extra may hold its JSON); None when there is none."""
    found = summary.extra.get("decision")
    if not found:
        return None
    return found if isinstance(found, Decision) else Decision.from_json(found)


def format_summary(summary: LocalRunSummary) -> str:
    from modelopsx.gate.render import render_lines
    from modelopsx.hash_labels import TEST_SPLIT, labelled

    metrics = summary.metrics
    decision = run_decision(summary)
    model = (
        f"{summary.model_name} v{summary.model_version}"
        if summary.model_name
        else f"v{summary.model_version}"
    )
    lines = [
        f"run        {summary.run_id} took {summary.wall_s:.0f} s",
        *_steps_lines(summary.steps),
        f"data       {_dataset_text(summary.dataset)}",
        f"model      {model}, trained {_training_text(summary.extra.get('training') or {})}",
        "metrics    "
        + "  ".join(
            f"{k} {metrics[k]:.3f}" if isinstance(metrics.get(k), int | float) else f"{k} n/a"
            for k in SHOWN_METRICS
        ),
        "",
    ]
    if decision is not None:
        sentence, *table = render_lines(decision)
        lines.append(
            textwrap.fill(sentence, SUMMARY_WIDTH, initial_indent="decision   ", subsequent_indent=" " * 11)
        )
        test_split = decision.candidate.get("test_split_hash")
        if table:
            lines += table + [f"  (both scored on the same {labelled(TEST_SPLIT, test_split)})"]
    else:
        lines.append(f"decision   {summary.decision}: {summary.reason or 'no decision on record'}")
    lines += [
        "",
        f"champion   v{summary.champion_version}" + (" (deployed by this run)" if summary.deployed else "")
        if summary.champion_version is not None
        else "champion   none yet (nothing deployed)",
        f"report     {summary.report}" if summary.report else "report     (none)",
        f"log        {summary.log}",
        "",
        "next",
    ]
    steps = _next_steps(summary)
    width = max(len(command) for command, _ in steps)
    lines += [f"  {command:<{width}}  # {what}" for command, what in steps]
    return "\n".join(lines)


def _version(record: dict[str, Any]) -> Any:
    return record.get("version", record.get("seq"))


# ----------------------------------------------------------------------------------------- the HTML report


def add_decision_to_report(summary: LocalRunSummary) -> None:
    """Put the run and its gate decision at the top of the run's copy of the evaluation report."""
    from modelopsx.evaluation.report import insert_run_section, run_section_html

    if summary.report is None or not summary.report.is_file():
        return
    facts = {
        "run": summary.run_id,
        "data": _dataset_text(summary.dataset),
        "model": f"{summary.model_name} v{summary.model_version}, trained "
        + _training_text(summary.extra.get("training") or {}),
        "champion after this run": f"v{summary.champion_version}"
        if summary.champion_version is not None
        else "none yet (nothing deployed)",
    }
    section = run_section_html(facts, run_decision(summary))
    summary.report.write_text(insert_run_section(summary.report.read_text(encoding="utf-8"), section))


# ------------------------------------------------------------------------------------------- past runs

RUNS_DIR = "runs"


def run_record(summary: LocalRunSummary) -> dict[str, Any]:
    from modelopsx.gate.render import plain_sentence

    decision = run_decision(summary)
    return {
        "run_id": summary.run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(summary.wall_s, 1),
        "dataset": {
            "name": summary.dataset.get("name"),
            "version": _version(summary.dataset),
            "content_hash": summary.dataset.get("content_hash"),
        },
        "model": {"name": summary.model_name, "version": summary.model_version},
        "decision": summary.decision,
        "sentence": plain_sentence(decision) if decision is not None else summary.reason,
        "champion_after": summary.champion_version,
        "deployed": summary.deployed,
        "report": str(summary.report) if summary.report else None,
        "log": str(summary.log),
        "steps": [asdict(step) for step in summary.steps],
    }


def _failed_run_record(
    run_id: str, dataset: dict[str, Any], error: PipelineError, log: Path, seconds: float
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "dataset": {"name": dataset.get("name"), "version": _version(dataset)},
        "model": {"name": None, "version": None},
        "decision": "failed",
        "sentence": error.message,
        "champion_after": None,
        "deployed": False,
        "report": None,
        "log": str(log),
        "steps": [],
    }


def record_run(state: Path, record: dict[str, Any]) -> Path:
    """Write <state>/runs/<run id>.json (whole or not at all)."""
    folder = state / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['run_id']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def past_runs(state: Path | None = None) -> list[dict[str, Any]]:
    """The records of past local runs, oldest first; unreadable files are skipped."""
    folder = (state or state_dir()) / RUNS_DIR
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run_id"):
            runs.append(data)
    return runs
