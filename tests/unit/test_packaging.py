"""What `pip install` puts into an environment: everything under the modelopsx namespace, nothing else."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_installed_under_the_modelopsx_namespace() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert listed == set(find_packages(str(ROOT), include=["modelopsx*"])) | {
        "modelopsx.components",
        "modelopsx.pipelines",
    }  # a new subpackage must be listed, or it is silently left out of the wheel
    assert config["package-dir"] == {"modelopsx.components": "components", "modelopsx.pipelines": "pipelines"}
    assert all(name == "modelopsx" or name.startswith("modelopsx.") for name in listed)
