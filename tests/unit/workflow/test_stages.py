"""The workflow glue that needs no KFP and no training: trials, selection, configs, reports, lineage."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from modelopsx.errors import PipelineError
from modelopsx.workflow import stages
from modelopsx.workflow.compile import stable_header
from modelopsx.workflow.submit import cron_for_kfp


def test_validate_trials_accepts_json_text_and_lists() -> None:
    trials = [{"learning_rate": 0.001}, {"epochs": 3, "alpha": 0.35}]
    assert stages.validate_trials(trials) == trials
    assert stages.validate_trials(json.dumps(trials)) == trials


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ("not json", "trials is not valid JSON"),
        ({"learning_rate": 0.1}, "trials must be a non-empty list"),
        ([{"batch_size": True}], "trials[0].batch_size must be a positive number"),
        ([{"epochs": 2}, {"colour": "red"}], "trials[1] has unknown key(s): colour"),
    ],
)
def test_validate_trials_names_the_problem(trials: object, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        stages.validate_trials(trials)
    assert message in info.value.message
    assert "valid keys" in (info.value.hint or "")


def test_best_trial_respects_metric_direction_and_missing_values() -> None:
    results = [{"f1": 0.5, "mr2_all": 0.4}, {"f1": 0.7, "mr2_all": 0.6}, {"mr2_all": 0.3}]
    assert stages.best_trial(results, "f1") == 1
    assert stages.best_trial(results, "mr2_all") == 2  # a miss rate: lower is better
    assert stages.best_trial(results, "ap") == 0  # undefined everywhere: the first goes on to the gate
    with pytest.raises(PipelineError, match="selection_metric 'F1' is not a metric"):
        stages.best_trial(results, "F1")


def test_train_config_layers_preset_parameters_overrides() -> None:
    from modelopsx.model.config import TrainConfig

    local = TrainConfig.local_default()
    # named parameters at 0 / empty keep the preset's values
    config = stages.train_config(
        {"epochs": 0, "backbone": "", "input_height": 0, "weights": ""}, None, "local"
    )
    assert config == local
    # set ones win, then overrides (a trial included); KFP's floats become integers again
    config = stages.train_config(
        {"epochs": 4, "input_height": 64, "input_width": 96, "weights": "none"},
        {"epochs": 2.0, "neck_channels": 48.0, "learning_rate": 0.01},
        "local",
    )
    assert config.epochs == 2 and isinstance(config.epochs, int)
    assert config.neck_channels == 48 and isinstance(config.neck_channels, int)
    assert config.input_size == (64, 96) and config.weights is None and config.learning_rate == 0.01
    assert config.time_limit_s == local.time_limit_s  # untouched preset fields stay
    with pytest.raises(PipelineError, match="unknown training setting"):
        stages.train_config({"epochs": 1, "warp_speed": 9})
    with pytest.raises(PipelineError, match="unknown training preset 'fast'"):
        stages.train_config({}, None, "fast")


def test_confusion_matrix_rows_are_truth() -> None:
    categories, matrix = stages.confusion_matrix({"tp": 5, "fp": 1, "fn": 2, "tn": 3})
    assert categories == ["pedestrian", "no pedestrian"] and matrix == [[5, 2], [1, 3]]


def test_report_becomes_one_self_contained_file(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "pr_curve.png").write_bytes(png)
    (tmp_path / "r" / "index.html").write_text('<img src="pr_curve.png"><img src="https://x/y.png">')
    out = stages.self_contained_html(tmp_path / "r", tmp_path / "out" / "report.html")
    html = out.read_text()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    assert 'src="https://x/y.png"' in html  # remote links stay as they are


def test_lineage_from_dataset_metadata() -> None:
    lineage = stages.lineage_from(
        {
            "dataset_name": "synthetic",
            "dataset_version": "3",
            "dvc_hash": "ab.dir",
            "content_hash": "cd",
            "train_hash": "t",
            "test_hash": "s",
        },
        "run-1",
    )
    assert (lineage.dataset_name, lineage.dataset_version) == ("synthetic", 3)
    assert lineage.dataset_dvc_hash == "ab.dir"
    assert lineage.split_hashes == {"train": "t", "test": "s"} and lineage.pipeline_run_id == "run-1"


def test_cron_and_header_helpers() -> None:
    assert cron_for_kfp("0 3 * * *") == "0 0 3 * * *"
    assert cron_for_kfp("30 0 3 * * *") == "30 0 3 * * *"
    text = "# X\n#    d: dict [Default: {'b': 1.0, 'a': [{'z': 1, 'y': 2}]}]\nbody: {'b': 1}\n"
    expected = "# X\n#    d: dict [Default: {'a': [{'y': 2, 'z': 1}], 'b': 1.0}]\nbody: {'b': 1}\n"
    assert stable_header(text) == expected


def test_unreachable_basin_endpoint_is_named() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Exception, match=f"http://127.0.0.1:{port} is unreachable"):
        stages.require_reachable(f"http://127.0.0.1:{port}")
