"""`modelopsx run` (= `make run`): the CPU training pipeline through kfp.local against an embedded Basin.

State that must outlive a run sits under the state dir (`.modelopsx/`): the emulator's data (so the next run
gates against this run's champion), copies of the reports, run logs, the served models. kfp.local's own
pipeline root and workspace are temporary directories elsewhere: kfp.local deletes its workspace after every
run, so it must never point at anything we keep.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from modelopsx.errors import DatasetError, PipelineError
from modelopsx.gate import Comparison
from modelopsx.settings import DEFAULT_STORE, ENV_PREFIX, state_dir

SYNTHETIC_DATASET = "synthetic"
SYNTHETIC_IMAGES = 600
# Each later run of the built-in dataset publishes this many new street scenes as its next version: new data
# arriving, on which the next model is trained from the champion and both are compared.
SYNTHETIC_BATCH = 100
# The embedded emulator checks SigV4 like the real adapter; these keys exist only on loopback.
LOCAL_ACCESS_KEY = "modelopsx-local"
LOCAL_SECRET_KEY = "modelopsx-local-secret"


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
    try:
        with _environment(
            {
                ENV_PREFIX + "BASIN_ENDPOINT": emulator.endpoint,
                ENV_PREFIX + "BASIN_ACCESS_KEY": LOCAL_ACCESS_KEY,
                ENV_PREFIX + "BASIN_SECRET_KEY": LOCAL_SECRET_KEY,
                ENV_PREFIX + "BASIN_STORE": os.environ.get(ENV_PREFIX + "BASIN_STORE") or DEFAULT_STORE,
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
        from modelopsx.gate import GatePolicy

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
        if self._console is None:
            return
        if (match := re.search(r"Executing task '([\w-]+)'", line)) is not None:
            self._started[match.group(1)] = time.monotonic()
        elif (match := re.search(r"Task '([\w-]+)' finished with status (\w+)", line)) is not None:
            task, status = match.groups()
            took = time.monotonic() - self._started.get(task, time.monotonic())
            mark = "done" if status == "SUCCESS" else status.lower()
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
    `new_batch` new scenes as the next dataset version first (0: train on the latest version again)."""
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
        ensure_dataset(dataset_dir, name, synthetic_images, quiet, say, new_batch)
        # Resolve here too, so an unknown name or version fails with the registry's listing, not a step log.
        dataset = dict(
            resolve_dataset(open_registry(), name, str(arguments.get("dataset_version", "latest")))
        )
        say(
            f"dataset '{name}' v{dataset.get('version', dataset.get('seq'))}; running the pipeline "
            f"(log: {log_path})"
        )
        report = _run_pipeline(pipeline_fn, arguments, log_path, console, state / "reports" / run_id)
        summary = _summarize(run_id, dataset, arguments, report, log_path, endpoint)
    summary.wall_s = time.monotonic() - started
    return summary


def _run_pipeline(
    pipeline: Any, arguments: dict[str, Any], log_path: Path, console: TextIO | None, report_dir: Path
) -> Path | None:
    """Run the pipeline in a throwaway kfp.local root; copy the HTML report out before it is deleted."""
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
            return None
        report_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(reports[-1], report_dir / "index.html"))
    finally:
        progress.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workspace, ignore_errors=True)


def _summarize(
    run_id: str,
    dataset: dict[str, Any],
    arguments: dict[str, Any],
    report: Path | None,
    log_path: Path,
    endpoint: str,
) -> LocalRunSummary:
    """Read the run's outcome back from the registry: it is the record of truth, not the step logs."""
    from modelopsx.pipelines.common import DEFAULT_MODEL_NAME
    from modelopsx.registry.champion import champion as current_champion
    from modelopsx.workflow.stages import open_registry

    model_name = str(arguments.get("model_name", DEFAULT_MODEL_NAME))
    registry = open_registry()
    gated = [r for r in registry.records("evaluations", model_name) if r.get("decision")]
    evaluation = gated[-1] if gated else {}
    decision = evaluation.get("decision", {})
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
        decision=str(decision.get("decision", "unknown")),
        reason=str(decision.get("reason", "")),
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
    )


def _training_line(training: dict[str, Any]) -> str:
    if not training:
        return "training   (no record)"
    line = f"training   {training.get('epochs_run', '?')} epochs from {training.get('initial_weights', '?')}"
    if training.get("time_limit_hit"):
        line += " (STOPPED BY THE TIME LIMIT: this run is not comparable to one on a quieter machine)"
    return line


def _decision_lines(summary: LocalRunSummary) -> list[str]:
    decision = summary.extra.get("decision") or {}
    lines = [f"decision   {summary.decision}: {summary.reason}"]
    against = decision.get("champion") or {}
    if against:
        who = (
            f"the {against['baseline']} baseline"
            if against.get("baseline")
            else f"champion v{against.get('model_version')}"
        )
        lines.append(f"           against {who} on the same test split (champion -> candidate):")
    for row in decision.get("comparisons") or []:
        lines.append("           " + Comparison(**row).line())
    return lines


def format_summary(summary: LocalRunSummary) -> str:
    metrics = summary.metrics
    shown = ("precision", "recall", "f1", "accuracy", "ap50", "ap", "mr2_reasonable")
    lines = [
        f"dataset    {summary.dataset.get('name', '')} v{_version(summary.dataset)}"
        f" ({summary.dataset.get('content_hash', '')[:12]}, "
        f"{(summary.dataset.get('counts') or {}).get('images', '?')} images)",
        f"model      v{summary.model_version}",
        _training_line(summary.extra.get("training") or {}),
        "metrics    "
        + "  ".join(
            f"{k}={metrics[k]:.3f}" if isinstance(metrics.get(k), int | float) else f"{k}=n/a" for k in shown
        ),
        *_decision_lines(summary),
        f"champion   v{summary.champion_version}"
        if summary.champion_version is not None
        else "champion   none (nothing deployed)",
        f"report     {summary.report}" if summary.report else "report     (none)",
        f"log        {summary.log}",
        f"took       {summary.wall_s:.0f} s",
    ]
    return "\n".join(lines)


def _version(record: dict[str, Any]) -> Any:
    return record.get("version", record.get("seq"))
