"""`modelopsx registry list KIND NAME` pages (--limit, --since) and streams JSON lines, in process."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelopsx.cli import app
from modelopsx.errors import UserError
from modelopsx.registry.log import Registry, record_key
from modelopsx.storage.stores import open_store


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["registry", "list", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_pages_and_streams_json_lines(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    registry = Registry(store)
    for i in range(30):
        registry.append("promotions", "det", {"action": "promote", "model_version": i, "reason": f"r{i}"})
    url = str(tmp_path / "store")

    code, out, _ = run("promotions", "det", "--store", url, "--json")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == list(range(11, 31))  # the newest 20

    code, out, _ = run("promotions", "det", "--store", url, "--json", "--since", "3", "--limit", "4")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [4, 5, 6, 7]

    code, out, _ = run("promotions", "det", "--store", url, "--json", "--limit", "0")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == list(range(1, 31))

    code, out, _ = run("promotions", "det", "--store", url, "--limit", "5")
    assert code == 0 and "r29" in out and "r24" not in out and "versions 26-30 of 30" in out

    store.delete(record_key("promotions", "det", 28))
    code, out, err = run("promotions", "det", "--store", url, "--json", "--limit", "5")
    assert code == 0 and [json.loads(line)["seq"] for line in out.splitlines()] == [26, 27, 29, 30]
    assert "versions 28 are missing" in err


def test_bad_paging_options_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (("--limit", "-1"), ("--since", "-3")):
        result = CliRunner().invoke(
            app, ["registry", "list", "models", "det", "--store", str(tmp_path / "s"), *args]
        )
        assert isinstance(result.exception, UserError)  # the entry point prints it and exits 2
        assert "must be" in result.exception.message
