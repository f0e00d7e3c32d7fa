"""DVC remote config and layout helpers (the push/pull round trips with the real dvc CLI are integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelopsx.errors import UserError
from modelopsx.storage.dvc_remote import apply_remote_config, dvc_file, object_key, remote_config


def test_object_keys_follow_dvc3_remote_layout() -> None:
    assert object_key("3f2a" + "0" * 28) == "files/md5/3f/2a" + "0" * 28
    assert object_key("ab" * 16 + ".dir").endswith(".dir") and object_key("ab" * 16 + ".dir").startswith(
        "files/md5/ab/"
    )
    assert dvc_file("x.dir", "data") == {"outs": [{"md5": "x.dir", "path": "data", "hash": "md5"}]}


def test_config_with_and_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPSX_BASIN_ACCESS_KEY", raising=False)
    monkeypatch.delenv("MODELOPSX_BASIN_SECRET_KEY", raising=False)
    anonymous = remote_config("basin://0x0000000000000000000000000000000000000001.s/dvc", "http://h:1")
    assert anonymous["url"] == "s3://0x0000000000000000000000000000000000000001.s/dvc"
    assert anonymous["allow_anonymous_login"] == "true" and anonymous["local"] == {}
    monkeypatch.setenv("MODELOPSX_BASIN_ACCESS_KEY", "AK")
    monkeypatch.setenv("MODELOPSX_BASIN_SECRET_KEY", "very-secret")
    keyed = remote_config("basin://store.alias", "http://h:1")
    assert keyed["local"] == {"access_key_id": "AK", "secret_access_key": "very-secret"}
    assert not any("very-secret" in line for line in keyed["commands"])
    with pytest.raises(UserError):
        remote_config("/local/path", "http://h:1")


def test_apply_needs_a_dvc_repo(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a DVC repository"):
        apply_remote_config(tmp_path, remote_config("basin://s.alias/dvc", "http://h:1"))
