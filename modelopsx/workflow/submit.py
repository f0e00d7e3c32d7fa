"""`modelopsx submit`: upload a compiled pipeline to a Kubeflow Pipelines host and start a run or a schedule.

The pipeline is uploaded once by name; later submits add a version named by the YAML's content hash (the same
YAML is never uploaded twice). Parameters are checked against the pipeline's own inputs first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelopsx.errors import PipelineError
from modelopsx.netcheck import connect_error, http_host_port

PIPELINES = ("training", "sweep")


@dataclass
class SubmitResult:
    pipeline_name: str
    pipeline_id: str
    version_id: str
    version_name: str
    experiment: str
    run_id: str | None = None
    recurring_run_id: str | None = None


def compiled_pipeline(pipeline: str, cpu: bool, out_dir: Path) -> Path:
    """Compile the chosen pipeline afresh (so a submit never sends stale YAML); returns its path."""
    from modelopsx.workflow.compile import SWEEP, TRAINING_CPU, TRAINING_GPU, pipeline_builders

    if pipeline not in PIPELINES:
        raise PipelineError(f"unknown pipeline {pipeline!r}", hint=f"choose one of: {', '.join(PIPELINES)}")
    if pipeline == "sweep" and cpu:
        raise PipelineError(
            "the sweep pipeline has no CPU variant",
            hint="submit the sweep to a cluster with GPU nodes, or run the training pipeline --cpu",
        )
    name = SWEEP if pipeline == "sweep" else (TRAINING_CPU if cpu else TRAINING_GPU)
    from kfp import compiler

    path = out_dir / name
    compiler.Compiler().compile(pipeline_builders()[name](), str(path))
    return path


def load_pipeline_spec(package: Path) -> dict[str, Any]:
    """The PipelineSpec document (the file may hold a second one: the Kubernetes platform spec)."""
    docs = [d for d in yaml.safe_load_all(package.read_text()) if d]
    return next(d for d in docs if "pipelineInfo" in d)


def pipeline_parameters(package: Path) -> dict[str, dict[str, Any]]:
    """name -> {"parameterType", "defaultValue"?} from the compiled pipeline's root inputs."""
    spec = load_pipeline_spec(package)
    params: dict[str, dict[str, Any]] = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return params


def parse_params(items: list[str], spec: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn `k=v` strings into typed pipeline arguments; unknown names and bad values are user errors."""
    valid = ", ".join(sorted(spec))
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PipelineError(f"--param {item!r} is not NAME=VALUE", hint=f"valid names: {valid}")
        if key not in spec:
            raise PipelineError(
                f"--param {key!r} names no parameter of this pipeline", hint=f"valid names: {valid}"
            )
        out[key] = _typed(key, raw, spec[key].get("parameterType", "STRING"))
    if "train_workers" in out:
        from modelopsx.model.distributed import parse_worker_count

        parse_worker_count(out["train_workers"])
    if "trials" in out:
        from modelopsx.model.sweep import validate_trials

        validate_trials(out["trials"])
    if "selection_metric" in out:
        from modelopsx.model.sweep import check_selection_metric

        check_selection_metric(out["selection_metric"])
    return out


def _typed(key: str, raw: str, kind: str) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(raw)
        if kind == "NUMBER_DOUBLE":
            return float(raw)
        if kind == "BOOLEAN":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("true", "1", "yes")
        if kind in ("STRUCT", "LIST"):
            value = json.loads(raw)
            expected = dict if kind == "STRUCT" else list
            if not isinstance(value, expected):
                raise ValueError(raw)
            return value
    except (ValueError, json.JSONDecodeError):
        kinds = {
            "NUMBER_INTEGER": "an integer",
            "NUMBER_DOUBLE": "a number",
            "BOOLEAN": "true or false",
            "STRUCT": "a JSON object",
            "LIST": "a JSON list",
        }
        raise PipelineError(
            f"--param {key}={raw!r} is not {kinds[kind]}",
            hint=f"e.g. --param {key}="
            + {
                "NUMBER_INTEGER": "8",
                "NUMBER_DOUBLE": "0.001",
                "BOOLEAN": "true",
                "STRUCT": '\'{"k": "v"}\'',
                "LIST": "'[{\"learning_rate\": 0.001}]'",
            }[kind],
        ) from None
    return raw


def cron_for_kfp(expression: str) -> str:
    """KFP schedules take 6-field cron (seconds first); accept the usual 5-field form too."""
    fields = expression.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise PipelineError(
        f"--schedule {expression!r} is not a cron expression",
        hint="use 5 fields (minute hour day month weekday), e.g. '0 3 * * *' for 03:00 daily",
    )


def check_host(host: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the host, when nothing listens there (kfp.Client would dump a traceback)."""
    address = http_host_port(host if "://" in host else f"http://{host}")
    if address is None:
        raise PipelineError(
            f"--host {host!r} is not an http(s) URL", hint="e.g. --host http://localhost:8080"
        )
    reason = connect_error(*address, timeout=timeout)
    if reason is not None:
        raise PipelineError(
            f"Kubeflow Pipelines host {host} is unreachable ({reason})",
            hint="check the URL; for kind: `kubectl -n kubeflow port-forward "
            "svc/ml-pipeline-ui 8080:80` and use --host http://localhost:8080",
        )


def submit(
    host: str,
    pipeline: str = "training",
    cpu: bool = False,
    experiment: str = "modelopsx",
    params: list[str] | None = None,
    schedule: str | None = None,
    run_name: str | None = None,
) -> SubmitResult:
    """Upload (or add a version of) the pipeline, then create a run or, with `schedule`, a recurring run."""
    with tempfile.TemporaryDirectory(prefix="modelopsx-submit-") as tmp:
        package = compiled_pipeline(pipeline, cpu, Path(tmp))
        arguments = parse_params(params or [], pipeline_parameters(package))
        cron = cron_for_kfp(schedule) if schedule else None
        check_host(host)
        return _upload_and_run(host, package, experiment, arguments, cron, run_name)


def _upload_and_run(
    host: str,
    package: Path,
    experiment: str,
    arguments: dict[str, Any],
    cron: str | None,
    run_name: str | None,
) -> SubmitResult:
    import warnings

    import kfp

    spec = load_pipeline_spec(package)
    name = spec["pipelineInfo"]["name"]
    version_name = f"{name}-{hashlib.sha256(package.read_bytes()).hexdigest()[:12]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            client = kfp.Client(host=host)
            pipeline_id = client.get_pipeline_id(name)
            if pipeline_id is None:
                pipeline_id = client.upload_pipeline(
                    str(package), pipeline_name=name, description=spec["pipelineInfo"].get("description")
                ).pipeline_id
            version_id = _find_version(client, pipeline_id, version_name)
            if version_id is None:
                version_id = client.upload_pipeline_version(
                    str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
                ).pipeline_version_id
            experiment_id = client.create_experiment(name=experiment).experiment_id
            job = run_name or f"{name}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
            result = SubmitResult(name, pipeline_id, version_id, version_name, experiment)
            if cron:
                recurring = client.create_recurring_run(
                    experiment_id,
                    job,
                    cron_expression=cron,
                    params=arguments,
                    pipeline_id=pipeline_id,
                    version_id=version_id,
                )
                result.recurring_run_id = recurring.recurring_run_id
            else:
                run = client.run_pipeline(
                    experiment_id, job, params=arguments, pipeline_id=pipeline_id, version_id=version_id
                )
                result.run_id = run.run_id
            return result
        except PipelineError:
            raise
        except Exception as exc:  # the server's answer (auth, validation) is what the user needs to see
            reason = getattr(exc, "reason", None) or type(exc).__name__
            body = getattr(exc, "body", None) or str(exc)
            raise PipelineError(
                f"Kubeflow Pipelines at {host} refused the request: {reason}: {str(body)[:500]}",
                hint="check the host URL, your access to it and the pipeline parameters",
            ) from None


def _find_version(client: Any, pipeline_id: str, version_name: str) -> str | None:
    flt = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": version_name}]}
    )
    response = client.list_pipeline_versions(pipeline_id, filter=flt)
    for version in response.pipeline_versions or []:
        if version.display_name == version_name:
            return str(version.pipeline_version_id)
    return None
