"""`modelopsx dataset publish|list`, `registry list|champion|rollback|repair`, `gate --champion`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelopsx.data.synth import generate_synthetic
from modelopsx.registry.champion import promote_model
from modelopsx.registry.log import Registry
from modelopsx.registry.models import register_model
from modelopsx.storage.stores import open_store
from tests.cli_runner import Ran, run_cli
from tests.integration.registry.helpers import fake_model_dir


def cli(*args: str) -> Ran:
    return run_cli(*args)


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fails(*args: str) -> str:
    result = cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_dataset_and_registry_commands(store_url: str, tmp_path: Path) -> None:
    data = generate_synthetic(tmp_path / "data", n_images=3, seed=0, size=(96, 64)).root
    assert "published street version 1" in ok("dataset", "publish", str(data), "--name", "street", "--quiet")
    assert "unchanged, still version 1" in ok("dataset", "publish", str(data), "--name", "street", "--quiet")
    assert ok("dataset", "list").split() == ["street"]
    versions = json_lines(ok("dataset", "list", "street", "--json"))
    assert [v["version"] for v in versions] == [1] and versions[0]["counts"]["images"] == 3
    table = ok("registry", "list", "datasets", "street")
    assert "content hash" in table and "DVC hash" in table
    row = next(line.split("│") for line in table.splitlines() if line.startswith("│ 1"))
    assert row[3].strip() == "3" and row[5].strip() == versions[0]["content_hash"][:12]
    assert row[6].strip() == versions[0]["dvc_hash"][:12]  # one look for every hash: 12 digits, no .dir

    registry = Registry(open_store(store_url))
    for seed, recall in ((1, 0.5), (2, 0.7)):
        register_model(
            registry,
            "det",
            fake_model_dir(tmp_path, seed),
            registry.store,
            {"accuracy": 0.8, "precision": 0.8, "recall": recall, "f1": 0.7},
            test_split_hash="t",
        )
    assert "no champion yet" in ok("registry", "champion", "det")
    serving = str(tmp_path / "serving")
    promote_model(registry, "det", 1, "first", serving_uri=serving)
    promote_model(registry, "det", 2, "better recall", serving_uri=serving)
    assert "model version 2 (promotion 2" in ok("registry", "champion", "det")

    candidate = tmp_path / "candidate.json"
    candidate.write_text(
        json.dumps({"metrics": {"accuracy": 0.8, "precision": 0.8, "recall": 0.6, "f1": 0.7}})
    )
    decision = json.loads(ok("gate", "--candidate", str(candidate), "--champion", "det", "--json"))
    assert decision["decision"] == "keep" and decision["champion"]["model_version"] == 2

    # A rollback that cannot finish changes nothing: the champion and serving stay as they were.
    before = json_lines(ok("registry", "list", "promotions", "det", "--json"))
    assert "already the champion" in fails("registry", "rollback", "det", "--to", "2", "--reason", "x")
    assert "unknown store URL 'ftp://nowhere'" in fails(
        "registry", "rollback", "det", "--to", "1", "--reason", "x", "--serving-uri", "ftp://nowhere"
    )
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert "cannot be created or written" in fails(
        "registry", "rollback", "det", "--to", "1", "--reason", "x", "--serving-uri", str(blocked / "serving")
    )
    assert json_lines(ok("registry", "list", "promotions", "det", "--json")) == before
    assert json.loads(ok("registry", "champion", "det", "--json"))["seq"] == 2

    out = ok(
        "registry", "rollback", "det", "--to", "1", "--reason", "bad in production", "--serving-uri", serving
    )
    assert "promotion 3" in out and f"{serving}/det/3" in out
    assert json.loads(ok("registry", "champion", "det", "--json"))["seq"] == 1
    promotions = json_lines(ok("registry", "list", "promotions", "det", "--json"))
    assert [(p["seq"], p["action"], p["model_version"]) for p in promotions] == [
        (1, "promote", 1),
        (2, "promote", 2),
        (3, "rollback", 1),
    ]
    assert "up to date" in ok("registry", "repair", "det", "--serving-uri", serving)
    assert "existing versions: 1, 2" in fails("registry", "rollback", "det", "--to", "9", "--reason", "x")


def test_bad_input_is_reported_without_traceback(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert "unknown registry kind 'widgets'" in fails("registry", "list", "widgets", "--store", store)
    assert "is not a directory" in fails(
        "dataset", "publish", str(tmp_path / "nope"), "--name", "x", "--store", store
    )
    (tmp_path / "empty").mkdir()
    assert "no annotations.json" in fails(
        "dataset", "publish", str(tmp_path / "empty"), "--name", "x", "--store", store
    )
    data = generate_synthetic(tmp_path / "data", n_images=2, seed=0, size=(96, 64)).root
    broken = generate_synthetic(tmp_path / "broken", n_images=2, seed=0, size=(96, 64)).root
    sorted((broken / "images").iterdir())[0].write_bytes(b"not an image")
    assert "failed validation" in fails("dataset", "publish", str(broken), "--name", "x", "--store", store)
    assert not Path(store).exists() or not any(Path(store).rglob("*.json"))  # nothing recorded
    assert "invalid registry name" in fails(
        "dataset", "publish", str(data), "--name", "a b", "--store", store
    )
    assert "never been promoted" in fails(
        "registry", "rollback", "det", "--to", "1", "--reason", "x", "--store", store
    )
    assert "no dataset named 'street'" not in fails(
        "registry", "list", "datasets", "street", "--store", store, "--bogus"
    )


@pytest.mark.parametrize("model_version", [None, "two"], ids=["missing", "two"])
def test_a_damaged_promotion_record_is_named_and_a_rollback_replaces_it(
    store_url: str, tmp_path: Path, model_version: object
) -> None:
    registry = Registry(open_store(store_url))
    for seed in (1, 2):
        register_model(registry, "det", fake_model_dir(tmp_path, seed), registry.store, {"recall": 0.5})
    promote_model(registry, "det", 1, "first")
    damaged = {"seq": 2, "kind": "promotions", "name": "det", "action": "promote", "reason": "edited"}
    if model_version is not None:
        damaged["model_version"] = model_version
    registry.store.put_if_absent("registry/promotions/det/00000002.json", json.dumps(damaged).encode())
    shown = "missing" if model_version is None else "'two'"
    message = f"promotion record registry/promotions/det/2 is damaged: model_version is {shown}"
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps({"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9}))
    for args in (
        ("registry", "champion", "det"),
        ("gate", "--candidate", str(candidate), "--champion", "det"),
    ):
        assert message in fails(*args)
    assert "rolled back det to model version 2 (promotion 3)" in ok(
        "registry", "rollback", "det", "--to", "2", "--reason", "replace the damaged record"
    )
    assert json.loads(ok("registry", "champion", "det", "--json"))["seq"] == 2


def test_model_and_evaluation_tables_show_f1_and_the_decision(store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelopsx.cli import app

    registry = Registry(open_store(store_url))
    metrics = {"accuracy": 0.8, "precision": 0.6, "recall": 0.5, "f1": 0.545}
    register_model(
        registry,
        "det",
        fake_model_dir(tmp_path, 1),
        registry.store,
        metrics,
        test_split_hash="8e0de4e0d309aa",
    )
    decision = {
        "decision": "keep",
        "champion": {"baseline": "hog"},
        "candidate": {"model_name": "det", "model_version": 1},
        "comparisons": [
            {"metric": "f1", "champion": 0.645, "candidate": 0.545, "delta": -0.1, "low": -0.2, "high": -0.05}
        ],
    }
    registry.append(
        "evaluations",
        "det",
        {
            "model_name": "det",
            "model_version": 1,
            "metrics": metrics,
            "test_split_hash": "8e0de4e0d309aa",
            "decision": decision,
        },
    )
    runner = CliRunner()
    models = runner.invoke(app, ["registry", "list", "models", "det"], env={"COLUMNS": "200"})
    assert models.exit_code == 0, models.output
    header, row = [line for line in models.output.splitlines() if line.startswith(("┃ version", "│ 1"))]
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "version",
        "created",
        "data",
        "f1",
        "precision",
        "recall",
        "decision",
        "test split hash",
    ]
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[3:] == ["0.545", "0.600", "0.500", "keep vs HOG baseline", "8e0de4e0d309"]
    evaluations = runner.invoke(app, ["registry", "list", "evaluations", "det"], env={"COLUMNS": "200"})
    row = next(line for line in evaluations.output.splitlines() if line.startswith("│ 1"))
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[2:] == ["v1", "0.545", "-0.100 (-0.200 .. -0.050)", "keep vs HOG baseline", "8e0de4e0d309"]
